package mcast

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"netchat/internal/mcast/mcasttest"
	"netchat/internal/syncbuf"
)

func TestParseGroup(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, err string }{
		{"239.255.80.88:8089", "239.255.80.88:8089", ""},
		{"224.0.0.251:5353", "224.0.0.251:5353", ""},
		{"[ff02::1234%lo]:5000", "[ff02::1234%lo]:5000", ""},
		{"[ff05::1]:5000", "[ff05::1]:5000", ""},
		{"[::ffff:239.1.2.3]:5000", "239.1.2.3:5000", ""},
		{"127.0.0.1:5000", "", "not a multicast address"},
		{"[::1]:5000", "", "not a multicast address"},
		{"255.255.255.255:5000", "", "not a multicast address"},
		{"239.1.2.3", "", "want GROUP:PORT"},
		{"239.1.2.3:0", "", "bad port"},
		{"239.1.2.3:70000", "", "bad port"},
		{"example.com:5000", "", "not an IP address"},
	}
	for _, tt := range tests {
		got, err := ParseGroup(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseGroup(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseGroup(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestLinkLocalGroupNeedsInterface(t *testing.T) {
	t.Parallel()
	_, err := NewSender(SenderConfig{Group: "[ff02::1234]:5000"})
	if err == nil || !strings.Contains(err.Error(), "name an interface") {
		t.Fatalf("err = %v, want a request for an interface", err)
	}
}

func TestLookupInterface(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"lo", "127.0.0.1"} {
		ifi, err := LookupInterface(in)
		if err != nil || ifi.Name != "lo" {
			t.Errorf("LookupInterface(%q) = %v, %v; want lo", in, ifi, err)
		}
	}
	if _, err := LookupInterface("no-such-if0"); err == nil {
		t.Error("LookupInterface(no-such-if0) succeeded")
	}
}

func TestMulticastSendListenOnLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		group func(testing.TB) string
		lo    func(testing.TB) any
		ttl   int
	}{
		{"IPv4", mcasttest.GroupV4, func(t testing.TB) any { return mcasttest.Loopback(t) }, 3},
		{"IPv6", mcasttest.GroupV6, func(t testing.TB) any { return loopbackIPv6OrRefusal(t) }, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.lo(t)
			group := tt.group(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			l, err := Listen(ctx, ListenerConfig{Group: group, Iface: "lo"})
			if err != nil {
				t.Fatal(err)
			}
			if !mcasttest.Joined(t, "lo", l.Group().Addr()) {
				t.Errorf("%v not joined on lo after Listen", l.Group())
			}
			s, err := NewSender(SenderConfig{Group: group, Iface: "lo", TTL: tt.ttl, Loopback: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			opts, err := s.Options()
			if err != nil {
				t.Fatal(err)
			}
			if want := (Options{TTL: tt.ttl, Loopback: true}); opts != want {
				t.Errorf("socket options %+v, want %+v", opts, want)
			}

			const count = 3
			var out syncbuf.Buffer
			printed := make(chan error, 1)
			go func() { printed <- l.Print(ctx, &out, false, count) }()
			seq := 0
			n, err := s.SendEvery(ctx, time.Millisecond, count, func() []byte {
				seq++
				return fmt.Appendf(nil, "tick %d", seq)
			}, nil)
			if err != nil || n != count {
				t.Fatalf("SendEvery = %d, %v", n, err)
			}
			if err := <-printed; err != nil {
				t.Fatal(err)
			}
			src := s.LocalAddr()
			var want strings.Builder
			for i := 1; i <= count; i++ {
				fmt.Fprintf(&want, "(IPv%c, 6 bytes): tick %d\n", tt.name[3], i)
			}
			got := out.String()
			lines := strings.SplitAfter(got, "\n")
			wantLines := strings.SplitAfter(want.String(), "\n")
			if len(lines) != len(wantLines) {
				t.Fatalf("printed %q, want %d lines", got, count)
			}
			for i := range count {
				if !strings.HasSuffix(lines[i], wantLines[i]) || !strings.Contains(lines[i], fmt.Sprintf("]:%d ", src.Port())) && !strings.Contains(lines[i], fmt.Sprintf(":%d ", src.Port())) {
					t.Errorf("line %d = %q, want source port %d and suffix %q", i, lines[i], src.Port(), wantLines[i])
				}
			}
			// Print left the group on its way out.
			if mcasttest.Joined(t, "lo", l.Group().Addr()) {
				t.Errorf("%v still joined on lo after the listener closed", l.Group())
			}
		})
	}
}

// firstReceived sends "skip" through a sender that the listener must not
// hear, then "hear" through one it must; the first datagram the listener
// gets must be "hear". Ordering proves the filter without a fixed wait.
func firstReceived(t *testing.T, l *Listener, skip, hear *Sender) string {
	t.Helper()
	if err := skip.Send([]byte("skip")); err != nil {
		t.Fatal(err)
	}
	if err := hear.Send([]byte("hear")); err != nil {
		t.Fatal(err)
	}
	_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _, err := l.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestMulticastSourceSpecificJoin(t *testing.T) {
	t.Parallel()
	mcasttest.Loopback(t)
	group := mcasttest.GroupV4(t)
	l, err := Listen(context.Background(), ListenerConfig{Group: group, Iface: "lo", Source: "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other, err := NewSender(SenderConfig{Group: group, Iface: "lo", Loopback: true, Bind: "127.0.0.3:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	wanted, err := NewSender(SenderConfig{Group: group, Iface: "lo", Loopback: true, Bind: "127.0.0.2:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer wanted.Close()
	if got := firstReceived(t, l, other, wanted); got != "hear" {
		t.Fatalf("first datagram %q, want the one from the joined source", got)
	}
}

// On lo every multicast datagram comes back in through the interface
// itself, whatever IP_MULTICAST_LOOP says, so the option can only be
// checked by reading it back.
func TestMulticastSenderOptions(t *testing.T) {
	t.Parallel()
	mcasttest.Loopback(t)
	tests := []struct {
		cfg  SenderConfig
		want Options
	}{
		{SenderConfig{}, Options{TTL: 1, Loopback: false}},
		{SenderConfig{TTL: 1, Loopback: true}, Options{TTL: 1, Loopback: true}},
		{SenderConfig{TTL: 32, Loopback: false}, Options{TTL: 32, Loopback: false}},
		{SenderConfig{TTL: 255, Loopback: true, Iface: "127.0.0.1"}, Options{TTL: 255, Loopback: true}},
	}
	for _, tt := range tests {
		tt.cfg.Group = mcasttest.GroupV4(t)
		if tt.cfg.Iface == "" {
			tt.cfg.Iface = "lo"
		}
		s, err := NewSender(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Options()
		s.Close()
		if err != nil || got != tt.want {
			t.Errorf("%+v: options %+v, %v; want %+v", tt.cfg, got, err, tt.want)
		}
	}
	if _, err := NewSender(SenderConfig{Group: mcasttest.GroupV4(t), TTL: 256}); err == nil {
		t.Error("TTL 256 accepted")
	}
}

// loopbackIPv6OrRefusal returns lo where the kernel carries IPv6
// multicast on it. Where it refuses, the commands' own path must report
// that refusal clearly (naming lo and the kernel's reason) before the
// test skips.
func loopbackIPv6OrRefusal(t testing.TB) *net.Interface {
	t.Helper()
	ifi, refused := mcasttest.LoopbackIPv6Refused(t)
	if refused == nil {
		return ifi
	}
	group := mcasttest.GroupV6(t)
	err := func() error {
		l, err := Listen(context.Background(), ListenerConfig{Group: group, Iface: "lo"})
		if err != nil {
			return err
		}
		defer l.Close()
		s, err := NewSender(SenderConfig{Group: group, Iface: "lo", Loopback: true})
		if err != nil {
			return err
		}
		defer s.Close()
		return s.Send([]byte("x"))
	}()
	var errno syscall.Errno
	if err == nil {
		t.Fatalf("the kernel refused IPv6 multicast on lo (%v), but netchat's listener and sender did not", refused)
	}
	if !errors.As(err, &errno) || !strings.Contains(err.Error(), "on interface lo: the kernel refused: "+errno.Error()) {
		t.Errorf("error %q does not name lo and the kernel's reason", err)
	}
	t.Skipf("the kernel refuses IPv6 multicast on lo: %v (netchat reports: %v)", refused, err)
	return nil
}

// TestMulticastKernelRefusal: where the kernel refuses an operation, the
// error names the interface and the kernel's reason. An interface index
// that does not exist is refused on every system, and nothing is sent.
func TestMulticastKernelRefusal(t *testing.T) {
	t.Parallel()
	ghost := &net.Interface{Index: 1 << 30, Name: "ghost0"}
	for _, g := range []string{"239.255.1.2:5000", "[ff05::7e57:1]:5000"} {
		group := netip.MustParseAddrPort(g)
		_, err := newSender(SenderConfig{Group: g, Loopback: true}, group, ghost)
		var errno syscall.Errno
		if err == nil || !errors.As(err, &errno) || !strings.Contains(err.Error(), "IP_MULTICAST_IF") && !strings.Contains(err.Error(), "IPV6_MULTICAST_IF") ||
			!strings.Contains(err.Error(), "on interface ghost0: the kernel refused: "+errno.Error()) {
			t.Errorf("sender on %s: error %v, want the interface and the kernel's reason", g, err)
		}
		l, err := listen(context.Background(), ListenerConfig{Group: g}, group, ghost)
		if err == nil {
			l.Close()
			t.Errorf("join of %s on a missing interface succeeded", g)
			continue
		}
		if !errors.As(err, &errno) || !strings.Contains(err.Error(), "joining "+group.Addr().String()+" on interface ghost0: the kernel refused: "+errno.Error()) {
			t.Errorf("listener on %s: error %v, want the interface and the kernel's reason", g, err)
		}
	}
}
