package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"netchat/internal/mcast"
	"netchat/internal/mcast/mcasttest"
)

func TestParseBeacon(t *testing.T) {
	t.Parallel()
	valid := `{"service":"netchat","id":"a1","name":"lab","port":8088,"tls_port":8443,"online":3,"version":"1.0"}`
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"valid", valid, true},
		{"unknown field from a newer version", `{"service":"netchat","id":"a","name":"","port":1,"online":0,"version":"","extra":[1,2]}`, true},
		{"foreign service", strings.Replace(valid, `"netchat"`, `"other"`, 1), false},
		{"garbage", "\x00\x01hello", false},
		{"empty", "", false},
		{"json array", `[1,2,3]`, false},
		{"trailing data", valid + `{}`, false},
		{"missing id", `{"service":"netchat","port":8088}`, false},
		{"port zero", strings.Replace(valid, `"port":8088`, `"port":0`, 1), false},
		{"port too big", strings.Replace(valid, `"port":8088`, `"port":65536`, 1), false},
		{"port as string", strings.Replace(valid, `"port":8088`, `"port":"8088"`, 1), false},
		{"negative online", strings.Replace(valid, `"online":3`, `"online":-1`, 1), false},
		{"escape sequence in name", strings.Replace(valid, `"lab"`, `"\u001b[2J"`, 1), false},
		{"bidi override in name", strings.Replace(valid, `"lab"`, `"\u202elab"`, 1), false},
		{"invalid utf-8 becomes U+FFFD in the decoder", strings.Replace(valid, `lab`, "l\xffb", 1), true},
		{"long name", strings.Replace(valid, `"lab"`, `"`+strings.Repeat("n", 65)+`"`, 1), false},
		{"oversized", strings.Replace(valid, `"version":"1.0"`, `"version":"1.0","pad":"`+strings.Repeat("x", MaxBeaconSize)+`"`, 1), false},
	}
	for _, tt := range tests {
		_, err := ParseBeacon([]byte(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestBeaconWireFormat(t *testing.T) {
	t.Parallel()
	p, err := Beacon{Service: Service, ID: "x", Name: "n", Port: 8088, Online: 2, Version: "v"}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// SPEC §5: tls_port is left out when there is no TLS listener.
	want := `{"service":"netchat","id":"x","name":"n","port":8088,"online":2,"version":"v"}`
	if string(p) != want {
		t.Fatalf("beacon %s, want %s", p, want)
	}
}

func TestAnnounceSetupErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  AnnouncerConfig
		want string
	}{
		{"not multicast", AnnouncerConfig{Group: "127.0.0.1:8089", Port: 8088}, "not a multicast address"},
		{"bad port", AnnouncerConfig{Iface: "lo", Port: 0}, "port 0"},
		{"no such interface", AnnouncerConfig{Iface: "no-such-if0", Port: 8088}, "no interface"},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := Announce(ctx, tt.cfg)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// startAnnouncer runs Announce until the test ends.
func startAnnouncer(t *testing.T, cfg AnnouncerConfig) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Announce(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Announce: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Announce did not return after cancel")
		}
	})
}

func TestAnnounceAndBrowseOnLoopback(t *testing.T) {
	t.Parallel()
	mcasttest.Loopback(t)
	group := mcasttest.GroupV4(t)
	var online atomic.Int64
	online.Store(3)

	want := []Server{
		{Beacon: Beacon{Service: Service, ID: "id-a", Name: "alpha", Port: 9002, Online: 0, Version: "1.2"}, Addr: "127.0.0.1:9002"},
		{Beacon: Beacon{Service: Service, ID: "id-b", Name: "bravo", Port: 9001, TLSPort: 9443, Online: 3, Version: "1.2"}, Addr: "127.0.0.1:9001"},
	}
	// same compares without the arrival times; a browse ends as soon as
	// it holds, and the bound on the browse only matters on failure.
	same := func(got []Server) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			g := got[i]
			g.Seen = time.Time{}
			if g != want[i] {
				return false
			}
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	browseUntil := func(onReady func()) {
		t.Helper()
		servers, err := browse(ctx, BrowseConfig{Group: group, Iface: "lo", Timeout: 10 * time.Second, stopWhen: same}, onReady)
		if err != nil {
			t.Fatal(err)
		}
		if !same(servers) {
			t.Fatalf("found %+v, want %+v", servers, want)
		}
		for i, s := range servers {
			if s.Seen.IsZero() {
				t.Errorf("server %d has no Seen time", i)
			}
		}
	}
	browseUntil(func() {
		// Noise that must be ignored (garbage, a foreign service, an
		// oversized beacon, an invalid one) goes out first: loopback
		// delivers in order, so by the time both real servers are heard
		// all of it has been read, and none of it may be in the result.
		s, err := mcast.NewSender(mcast.SenderConfig{Group: group, Iface: "lo", Loopback: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, p := range []string{
			"garbage\x00\xff",
			`{"service":"other","id":"x","name":"x","port":1,"online":0,"version":""}`,
			`{"service":"netchat","id":"big","name":"x","port":1,"online":0,"version":"","pad":"` + strings.Repeat("x", 2000) + `"}`,
			`{"service":"netchat","id":"neg","name":"x","port":1,"online":-5,"version":""}`,
		} {
			if err := s.Send([]byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		startAnnouncer(t, AnnouncerConfig{Group: group, Iface: "lo", Interval: 50 * time.Millisecond,
			ID: "id-b", Name: "bravo", Version: "1.2", Port: 9001, TLSPort: 9443, Online: func() int { return int(online.Load()) }})
		startAnnouncer(t, AnnouncerConfig{Group: group, Iface: "lo", Interval: 50 * time.Millisecond,
			ID: "id-a", Name: "alpha", Version: "1.2", Port: 9002})
	})

	// The online count is read for every beacon.
	online.Store(7)
	want[1].Online = 7
	browseUntil(nil)
}

func TestDiscoveryBrowseStopsWithContext(t *testing.T) {
	t.Parallel()
	mcasttest.Loopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := browse(ctx, BrowseConfig{Group: mcasttest.GroupV4(t), Iface: "lo", Timeout: time.Minute}, cancel)
		done <- err
	}()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Browse ignored the cancelled context")
	}
}

func TestWriteTableAndJSON(t *testing.T) {
	t.Parallel()
	servers := []Server{{Beacon: Beacon{Service: Service, ID: "i", Name: "lab", Port: 8088, TLSPort: 8443, Online: 3, Version: "0.1"}, Addr: "192.0.2.1:8088"}}
	var tb bytes.Buffer
	if err := WriteTable(&tb, servers); err != nil {
		t.Fatal(err)
	}
	wantTable := "NAME  ADDRESS         TLS   ONLINE  VERSION  ID\nlab   192.0.2.1:8088  8443  3       0.1      i\n"
	if tb.String() != wantTable {
		t.Errorf("table\n%s\nwant\n%s", tb.String(), wantTable)
	}
	var jb bytes.Buffer
	if err := WriteJSON(&jb, servers); err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(jb.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 1 || back[0]["addr"] != "192.0.2.1:8088" || back[0]["online"] != float64(3) || back[0]["tls_port"] != float64(8443) {
		t.Errorf("json %s", jb.String())
	}
}

func TestDialAddr(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, want string }{
		{"127.0.0.1", "127.0.0.1:8088"},
		{"::ffff:192.0.2.1", "192.0.2.1:8088"},
		{"fe80::1%eth0", "[fe80::1%eth0]:8088"},
		{"2001:db8::1", "[2001:db8::1]:8088"},
	}
	for _, tt := range tests {
		if got := dialAddr(netip.MustParseAddr(tt.src), 8088); got != tt.want {
			t.Errorf("dialAddr(%s) = %s, want %s", tt.src, got, tt.want)
		}
	}
}

// TestBrowseBoundsServers floods the group with valid beacons that each
// carry a fresh id: the table must stop growing at the bound (it used to
// keep every id for the whole timeout), while a server already heard is
// still updated.
func TestDiscoveryBrowseBoundsServers(t *testing.T) {
	t.Parallel()
	mcasttest.Loopback(t)
	group := mcasttest.GroupV4(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const limit = 5
	var sendErr error
	// The browse ends when the last beacon (id-00's update) is in, or
	// fails at the bound; the flood before it was queued in order.
	updated := func(got []Server) bool { return len(got) > 0 && got[0].ID == "id-00" && got[0].Online == 9 }
	servers, err := browse(ctx, BrowseConfig{Group: group, Iface: "lo", Timeout: 10 * time.Second, maxServers: limit, stopWhen: updated}, func() {
		s, err := mcast.NewSender(mcast.SenderConfig{Group: group, Iface: "lo", Loopback: true})
		if err != nil {
			sendErr = err
			return
		}
		defer s.Close()
		beacon := func(id string, online int) []byte {
			p, err := Beacon{Service: Service, ID: id, Name: id, Port: 9000, Online: online}.Marshal()
			if err != nil {
				t.Error(err)
			}
			return p
		}
		for i := range 3 * limit {
			if sendErr = s.Send(beacon(fmt.Sprintf("id-%02d", i), 0)); sendErr != nil {
				return
			}
		}
		sendErr = s.Send(beacon("id-00", 9))
	})
	if err != nil || sendErr != nil {
		t.Fatal(err, sendErr)
	}
	if len(servers) != limit {
		t.Fatalf("browse kept %d servers, want the bound %d", len(servers), limit)
	}
	if servers[0].ID != "id-00" || servers[0].Online != 9 {
		t.Errorf("first server %+v, want id-00 updated to 9 online", servers[0].Beacon)
	}
}
