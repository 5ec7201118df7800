package web

import (
	"net/netip"
	"strings"
	"testing"
)

// The addresses below are only parsed, as the text of X-Forwarded-For
// headers and peer addresses; no test here opens a socket or sends anything.
func TestClientAddr(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
		netip.MustParsePrefix("127.0.0.1/32"),
	}
	const (
		proxyPeer  = "10.1.2.3:40000"
		publicPeer = "198.51.100.7:50000"
	)
	tests := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"no proxies: the peer", publicPeer, nil, publicPeer},
		{"untrusted peer: header ignored", publicPeer, []string{"203.0.113.9"}, publicPeer},
		{"untrusted peer: spoofed chain ignored", publicPeer, []string{"203.0.113.9, 10.0.0.1"}, publicPeer},
		{"trusted peer without header", proxyPeer, nil, proxyPeer},
		{"trusted peer, empty header", proxyPeer, []string{""}, proxyPeer},
		{"trusted peer, one client", proxyPeer, []string{"203.0.113.9"}, "203.0.113.9:0"},
		{"client with port", proxyPeer, []string{"203.0.113.9:4711"}, "203.0.113.9:4711"},
		{"IPv6 client", proxyPeer, []string{"2001:db8::1"}, "[2001:db8::1]:0"},
		{"bracketed IPv6 client", proxyPeer, []string{"[2001:db8::1]"}, "[2001:db8::1]:0"},
		{"bracketed IPv6 client with port", proxyPeer, []string{"[2001:db8::1]:443"}, "[2001:db8::1]:443"},
		{"IPv4-mapped client is IPv4", proxyPeer, []string{"::ffff:203.0.113.9"}, "203.0.113.9:0"},
		{"zone dropped", proxyPeer, []string{"fe80::1%eth0"}, "[fe80::1]:0"},
		{"blanks and tabs around elements", proxyPeer, []string{" \t203.0.113.9 \t"}, "203.0.113.9:0"},
		{"right-most untrusted wins", proxyPeer, []string{"192.0.2.1, 203.0.113.9"}, "203.0.113.9:0"},
		{"trusted hops skipped", proxyPeer, []string{"192.0.2.1, 203.0.113.9, 10.9.9.9, fd00::5"}, "203.0.113.9:0"},
		{"several field lines are one list", proxyPeer, []string{"192.0.2.1, 203.0.113.9", "10.9.9.9"}, "203.0.113.9:0"},
		{"right-most line read first", proxyPeer, []string{"192.0.2.1", "203.0.113.9"}, "203.0.113.9:0"},
		{"all trusted: the left-most", proxyPeer, []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1:0"},
		{"spoofed left part never reached", proxyPeer, []string{"garbage, 203.0.113.9"}, "203.0.113.9:0"},
		{"IPv4-mapped peer is trusted", "[::ffff:10.1.2.3]:40000", []string{"203.0.113.9"}, "203.0.113.9:0"},
		{"loopback proxy", "127.0.0.1:5555", []string{"203.0.113.9"}, "203.0.113.9:0"},
		{"other loopback address is not trusted", "127.0.0.2:5555", []string{"203.0.113.9"}, "127.0.0.2:5555"},

		// Malformed where it is read: the peer, never an error.
		{"garbage", proxyPeer, []string{"garbage"}, proxyPeer},
		{"unknown", proxyPeer, []string{"unknown"}, proxyPeer},
		{"empty element at the right", proxyPeer, []string{"203.0.113.9, "}, proxyPeer},
		{"empty element in the middle", proxyPeer, []string{"192.0.2.1, , 10.0.0.1"}, proxyPeer},
		{"only commas", proxyPeer, []string{",,,"}, proxyPeer},
		{"garbage behind a trusted hop", proxyPeer, []string{"garbage, 10.0.0.1"}, proxyPeer},
		{"host name", proxyPeer, []string{"example.com"}, proxyPeer},
		{"port out of range", proxyPeer, []string{"203.0.113.9:70000"}, proxyPeer},
		{"bracketed IPv4", proxyPeer, []string{"[203.0.113.9]"}, proxyPeer},
		{"unclosed bracket", proxyPeer, []string{"[2001:db8::1"}, proxyPeer},
		{"stray closing bracket", proxyPeer, []string{"2001:db8::1]"}, proxyPeer},
		{"CIDR instead of address", proxyPeer, []string{"203.0.113.0/24"}, proxyPeer},
		{"quoted", proxyPeer, []string{`"203.0.113.9"`}, proxyPeer},
		{"Forwarded syntax", proxyPeer, []string{"for=203.0.113.9"}, proxyPeer},
		{"control character", proxyPeer, []string{"203.0.113.9\x00"}, proxyPeer},
		{"invalid UTF-8", proxyPeer, []string{"\xff\xfe"}, proxyPeer},
		{"very long element", proxyPeer, []string{strings.Repeat("1", 10000)}, proxyPeer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			peer := normalize(netip.MustParseAddrPort(tt.peer))
			got := clientAddr(peer, tt.xff, proxies)
			if got.String() != tt.want {
				t.Errorf("clientAddr(%s, %q) = %s, want %s", tt.peer, tt.xff, got, tt.want)
			}
		})
	}
}

// TestClientAddrInvalidPeer: a request whose peer cannot be parsed (it
// cannot come from a TCP listener) gives the zero address, never a header
// value.
func TestClientAddrInvalidPeer(t *testing.T) {
	t.Parallel()
	got := clientAddr(netip.AddrPort{}, []string{"203.0.113.9"}, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")})
	if got.IsValid() {
		t.Errorf("got %s, want the invalid zero address", got)
	}
}

// FuzzClientAddr feeds X-Forwarded-For values as a client behind a trusted
// proxy could send them: the result is always the peer or an address that
// is in the header, never a panic.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{
		"203.0.113.9",
		"192.0.2.1, 203.0.113.9, 10.0.0.1",
		"[2001:db8::1]:443",
		"garbage, 10.0.0.1",
		"\n10.0.0.1\n",
		",,",
	} {
		f.Add(s)
	}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	peer := netip.MustParseAddrPort("10.1.2.3:40000")
	f.Fuzz(func(t *testing.T, header string) {
		// A newline separates field lines, as if the header came several times.
		xff := strings.Split(header, "\n")
		got := clientAddr(peer, xff, proxies)
		if !got.IsValid() {
			t.Fatalf("invalid result %v for %q", got, header)
		}
		if got != peer {
			found := false
			for _, line := range xff {
				for _, e := range strings.Split(line, ",") {
					if ap, ok := parseForwarded(strings.Trim(e, " \t")); ok && ap == got {
						found = true
					}
				}
			}
			if !found {
				t.Fatalf("result %v is neither the peer nor in the header %q", got, header)
			}
		}
		if got2 := clientAddr(netip.MustParseAddrPort("198.51.100.7:1"), xff, proxies); got2.String() != "198.51.100.7:1" {
			t.Fatalf("untrusted peer: got %v", got2)
		}
	})
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      []string
		want    string // prefixes joined by a blank
		wantErr string
	}{
		{in: nil, want: ""},
		{in: []string{""}, want: ""},
		{in: []string{"10.0.0.0/8"}, want: "10.0.0.0/8"},
		{in: []string{"10.0.0.0/8,fd00::/8"}, want: "10.0.0.0/8 fd00::/8"},
		{in: []string{"10.0.0.0/8", " 192.168.1.0/24 , "}, want: "10.0.0.0/8 192.168.1.0/24"},
		{in: []string{"10.1.2.3/8"}, want: "10.0.0.0/8"},
		{in: []string{"127.0.0.1"}, want: "127.0.0.1/32"},
		{in: []string{"::1"}, want: "::1/128"},
		{in: []string{"::ffff:10.0.0.0/104"}, want: "10.0.0.0/8"},
		{in: []string{"::ffff:10.0.0.1"}, want: "10.0.0.1/32"},
		{in: []string{"10.0.0.0/33"}, wantErr: `trusted proxy "10.0.0.0/33" is not an address or CIDR prefix`},
		{in: []string{"proxy.example"}, wantErr: `trusted proxy "proxy.example" is not an address or CIDR prefix`},
		{in: []string{"10.0.0.0/8;"}, wantErr: `trusted proxy "10.0.0.0/8;"`},
		{in: []string{"fe80::1%eth0"}, wantErr: "zone"},
		{in: []string{"::ffff:0.0.0.0/90"}, wantErr: "at least /96"},
	}
	for _, tt := range tests {
		got, err := ParsePrefixes(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePrefixes(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePrefixes(%q): %v", tt.in, err)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, " ") != tt.want {
			t.Errorf("ParsePrefixes(%q) = %v, want %s", tt.in, s, tt.want)
		}
	}
}

func TestParseOrigins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      []string
		want    string
		wantErr string
	}{
		{in: nil, want: ""},
		{in: []string{"https://chat.example.org"}, want: "https://chat.example.org"},
		{in: []string{"https://Chat.Example.org/"}, want: "https://chat.example.org"},
		{in: []string{"chat.example.org:8443,*.example.net"}, want: "chat.example.org:8443 *.example.net"},
		{in: []string{"http://localhost:8080", " "}, want: "http://localhost:8080"},
		{in: []string{"ftp://chat.example.org"}, wantErr: "scheme must be http or https"},
		{in: []string{"https://"}, wantErr: "has no host"},
		{in: []string{"https://chat.example.org/path"}, wantErr: "without path"},
		{in: []string{"https://user@chat.example.org"}, wantErr: "without path, query or user"},
		{in: []string{"chat[.example.org"}, wantErr: "not a valid pattern"},
	}
	for _, tt := range tests {
		got, err := ParseOrigins(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseOrigins(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseOrigins(%q): %v", tt.in, err)
			continue
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("ParseOrigins(%q) = %q, want %s", tt.in, got, tt.want)
		}
	}
}
