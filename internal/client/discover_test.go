package client

import (
	"context"
	"strings"
	"testing"
	"time"

	"netchat/internal/discovery"
	"netchat/internal/mcast/mcasttest"
)

func TestChoose(t *testing.T) {
	t.Parallel()
	two := []found{{"alpha", "192.0.2.1:8088", "1 online"}, {"beta\x1b[2J", "192.0.2.2:8088", "2 online"}}
	for _, tc := range []struct {
		name    string
		servers []found
		in      string
		ask     bool
		want    string
		wantErr string
		wantOut []string
	}{
		{name: "none", wantErr: "no netchat server announced itself on the LAN"},
		{name: "one", servers: two[:1], want: "192.0.2.1:8088"},
		{name: "asked", servers: two, in: "\nx\n7\n 2 \nleft for the chat", ask: true, want: "192.0.2.2:8088",
			wantOut: []string{"2 netchat servers on the LAN:\n  1) alpha  192.0.2.1:8088  (1 online)\n", "Join which one? [1-2] ", `"x" is not a number from 1 to 2.`, `"7" is not`}},
		{name: "last line without newline", servers: two, in: "1", ask: true, want: "192.0.2.1:8088"},
		{name: "EOF", servers: two, in: "", ask: true, wantErr: "no server chosen"},
		{name: "not a terminal", servers: two, wantErr: "2 servers found and standard input is not a terminal",
			wantOut: []string{"  2) beta\x1b[2J  192.0.2.2:8088  (2 online)"}},
	} {
		var out strings.Builder
		in := strings.NewReader(tc.in)
		got, err := choose(tc.servers, in, &out, tc.ask)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
		for _, w := range tc.wantOut {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, out.String())
			}
		}
		if tc.name == "asked" && in.Len() != len("left for the chat") {
			t.Errorf("choosing consumed input meant for the chat: %d bytes left", in.Len())
		}
	}
}

func TestFoundServerNeutralizes(t *testing.T) {
	t.Parallel()
	f := foundServer(discovery.Server{Beacon: discovery.Beacon{Name: "evil\x1b]0;x\x07", Online: 3, Version: "1\x9b"}}, "a:1")
	if f.name != "evil^[]0;x^G" || f.detail != "3 online, version 1\ufffd" {
		t.Errorf("got %+v", f)
	}
}

// TestDiscover hears real beacons on loopback (its own group, so parallel
// tests elsewhere do not interfere) and picks the TLS port with useTLS.
func TestDiscover(t *testing.T) {
	t.Parallel()
	mcasttest.Loopback(t)
	group := mcasttest.GroupV4(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	announced := make(chan error, 1)
	go func() {
		announced <- discovery.Announce(ctx, discovery.AnnouncerConfig{
			Group: group, Iface: "lo", Interval: 30 * time.Millisecond,
			ID: "one", Name: "one", Version: "t", Port: 9188, TLSPort: 9443,
		})
	}()
	cfg := discovery.BrowseConfig{Group: group, Iface: "lo", Timeout: 300 * time.Millisecond}
	addr, err := Discover(t.Context(), cfg, false, strings.NewReader(""), &strings.Builder{})
	if err != nil || addr != "127.0.0.1:9188" {
		t.Fatalf("Discover = %q, %v", addr, err)
	}
	addr, err = Discover(t.Context(), cfg, true, strings.NewReader(""), &strings.Builder{})
	if err != nil || addr != "127.0.0.1:9443" {
		t.Fatalf("Discover with TLS = %q, %v", addr, err)
	}
	cancel()
	if err := <-announced; err != nil {
		t.Fatal(err)
	}
	quiet := discovery.BrowseConfig{Group: mcasttest.GroupV4(t), Iface: "lo", Timeout: 100 * time.Millisecond}
	if _, err := Discover(t.Context(), quiet, false, strings.NewReader(""), &strings.Builder{}); err == nil ||
		!strings.Contains(err.Error(), "no netchat server announced itself") {
		t.Fatalf("nobody announcing: %v", err)
	}
}
