package udp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"netchat/internal/syncbuf"
)

func TestFormatDatagram(t *testing.T) {
	t.Parallel()
	v4 := netip.MustParseAddrPort("127.0.0.1:41234")
	tests := []struct {
		from    netip.AddrPort
		payload string
		hex     bool
		want    string
	}{
		{v4, "hello", false, "from 127.0.0.1:41234 (IPv4, 5 bytes): hello\n"},
		{netip.MustParseAddrPort("[::1]:53"), "hi", false, "from [::1]:53 (IPv6, 2 bytes): hi\n"},
		{netip.MustParseAddrPort("[fe80::1%lo]:9"), "x", false, "from [fe80::1%lo]:9 (IPv6, 1 bytes): x\n"},
		{netip.MustParseAddrPort("[::ffff:127.0.0.1]:7000"), "x", false, "from 127.0.0.1:7000 (IPv4, 1 bytes): x\n"},
		{v4, "", false, "from 127.0.0.1:41234 (IPv4, 0 bytes): \n"},
		{v4, "\x00\xff\x10", true, "from 127.0.0.1:41234 (IPv4, 3 bytes): 00ff10\n"},
		{v4, "a\nb\r\x1b[31m\tz", false, `from 127.0.0.1:41234 (IPv4, 11 bytes): a\nb\r\x1b[31m\tz` + "\n"},
		{v4, "caf\xc3\xa9 \xff\\", false, `from 127.0.0.1:41234 (IPv4, 8 bytes): café \xff\\` + "\n"},
		{v4, "\u202e\u0085", false, `from 127.0.0.1:41234 (IPv4, 5 bytes): \u202e\u0085` + "\n"},
	}
	for _, tt := range tests {
		if got := FormatDatagram(tt.from, []byte(tt.payload), tt.hex); got != tt.want {
			t.Errorf("FormatDatagram(%v, %q, %v)\n got %q\nwant %q", tt.from, tt.payload, tt.hex, got, tt.want)
		}
	}
}

func TestSendToEcho(t *testing.T) {
	t.Parallel()
	echo := startEcho(t, EchoConfig{Addr: "127.0.0.1:0"})
	port := echo.Addrs()[0].Port()
	tests := []struct {
		name        string
		cfg         SendConfig
		wantReplies []string
	}{
		{"messages", SendConfig{Messages: []string{"hello", "world"}}, []string{"5 bytes): hello", "5 bytes): world"}},
		{"count repeats each", SendConfig{Messages: []string{"a"}, Count: 3, Interval: time.Millisecond}, []string{"1 bytes): a", "1 bytes): a", "1 bytes): a"}},
		{"stdin lines", SendConfig{Stdin: strings.NewReader("one\r\ntwo\n")}, []string{"3 bytes): one", "3 bytes): two"}},
		{"hex both ways", SendConfig{Messages: []string{"00ff 10"}, Hex: true}, []string{"3 bytes): 00ff10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out syncbuf.Buffer
			cfg := tt.cfg
			cfg.Addr = fmt.Sprintf("127.0.0.1:%d", port)
			cfg.Out = &out
			cfg.Wait = 10 * time.Second // ends early once every datagram got its reply
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := Send(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if res.Sent != len(tt.wantReplies) || res.Replies != len(tt.wantReplies) || len(lines) != len(tt.wantReplies) {
				t.Fatalf("result %+v, output %q; want %d replies", res, out.String(), len(tt.wantReplies))
			}
			for i, l := range lines {
				want := fmt.Sprintf("from 127.0.0.1:%d (IPv4, %s", port, tt.wantReplies[i])
				if l != want {
					t.Errorf("line %d = %q, want %q", i, l, want)
				}
			}
		})
	}
}

func TestSendErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  SendConfig
		want string
	}{
		{"bad hex", SendConfig{Addr: "127.0.0.1:9", Messages: []string{"zz"}, Hex: true}, "not hex"},
		{"broadcast without flag", SendConfig{Addr: "127.255.255.255:9", Messages: []string{"x"}}, "--broadcast"},
		{"bad port", SendConfig{Addr: "127.0.0.1:http0", Messages: []string{"x"}}, "bad port"},
		{"ttl range", SendConfig{Addr: "127.0.0.1:9", Messages: []string{"x"}, TTL: 300}, "out of range"},
		{"no input", SendConfig{Addr: "127.0.0.1:9"}, "no message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := Send(ctx, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestBroadcastReachesListener(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Only a wildcard-bound socket receives broadcasts.
	l, err := NewListener(ctx, "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addrs()[0].Port()
	var out syncbuf.Buffer
	printed := make(chan error, 1)
	go func() { printed <- l.Print(ctx, &out, false, 1) }()

	from := listenClient(t, "127.0.0.1:0") // to know the source port
	fromPort := from.LocalAddr().(*net.UDPAddr).Port
	from.Close()
	res, err := Send(ctx, SendConfig{
		Addr:      fmt.Sprintf("127.255.255.255:%d", port),
		Bind:      fmt.Sprintf("127.0.0.1:%d", fromPort),
		Messages:  []string{"hello"},
		Broadcast: true,
	})
	if err != nil || res.Sent != 1 {
		t.Fatalf("Send: %+v, %v", res, err)
	}
	if err := <-printed; err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("from 127.0.0.1:%d (IPv4, 5 bytes): hello\n", fromPort)
	if out.String() != want {
		t.Fatalf("listener printed %q, want %q", out.String(), want)
	}
}

func TestListenerPrintsBothFamilies(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := NewListener(ctx, ":0")
	if err != nil {
		t.Fatal(err)
	}
	addrs := l.Addrs()
	var out syncbuf.Buffer
	printed := make(chan error, 1)
	go func() { printed <- l.Print(ctx, &out, true, len(addrs)) }()
	var want []string
	for _, a := range addrs {
		host := "127.0.0.1"
		if a.Addr().Is6() {
			host = "::1"
		}
		c := listenClient(t, net.JoinHostPort(host, "0"))
		dst := netip.AddrPortFrom(netip.MustParseAddr(host), a.Port())
		if _, err := c.WriteToUDPAddrPort([]byte{1, 2}, dst); err != nil {
			t.Fatal(err)
		}
		want = append(want, FormatDatagram(c.LocalAddr().(*net.UDPAddr).AddrPort(), []byte{1, 2}, true))
	}
	if err := <-printed; err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output %q lacks %q", out.String(), w)
		}
	}
}

func TestSendOptionsReadBack(t *testing.T) {
	t.Parallel()
	c := listenClient(t, "127.0.0.1:0")
	if err := applySendOptions(c, netip.MustParseAddr("127.255.255.255"), 7, true); err != nil {
		t.Fatal(err)
	}
	if ttl, err := ipv4.NewConn(c).TTL(); err != nil || ttl != 7 {
		t.Errorf("TTL = %d, %v; want 7", ttl, err)
	}
	if ttl, err := ipv4.NewPacketConn(c).MulticastTTL(); err != nil || ttl != 7 {
		t.Errorf("multicast TTL = %d, %v; want 7", ttl, err)
	}
}

func TestParseBind(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1:0"},
		{"127.0.0.1:5000", "127.0.0.1:5000"},
		{"[::1]:5000", "[::1]:5000"},
		{"::1", "[::1]:0"},
		{":5000", "invalid AddrPort:5000"},
		{"host:1", "error"},
		{"1.2.3.4:x", "error"},
	}
	for _, tt := range tests {
		got, err := parseBind(tt.in)
		s := got.String()
		if err != nil {
			s = "error"
		} else if !got.Addr().IsValid() {
			s = fmt.Sprintf("invalid AddrPort:%d", got.Port())
		}
		if s != tt.want {
			t.Errorf("parseBind(%q) = %q, want %q", tt.in, s, tt.want)
		}
	}
}

// TestSendClosedPort: the ICMP port unreachable of a closed port ends Send
// with "connection refused", whether it surfaces while waiting for a reply
// or on the next datagram.
func TestSendClosedPort(t *testing.T) {
	t.Parallel()
	// Port 1: nothing listens there, and no other test's socket is
	// given it (a port just closed could be).
	addr := "127.0.0.1:1"
	for _, cfg := range []SendConfig{
		{Addr: addr, Messages: []string{"x"}, Wait: 10 * time.Second},
		{Addr: addr, Messages: []string{"x"}, Count: 50, Interval: 20 * time.Millisecond, Wait: 10 * time.Second},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := Send(ctx, cfg)
		cancel()
		if err == nil || !strings.Contains(err.Error(), addr+": connection refused") || res.Replies != 0 {
			t.Errorf("count %d: %+v, %v; want connection refused", cfg.Count, res, err)
		}
		if cfg.Count > 1 && res.Sent == cfg.Count {
			t.Errorf("all %d datagrams sent to a closed port", res.Sent)
		}
	}
}
