package udp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// startEcho runs an echo server on addr for the duration of the test.
func startEcho(t testing.TB, cfg EchoConfig) *EchoServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := ListenEcho(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("ListenEcho: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return s
}

// roundTrip sends p from c to dst and returns the reply, or an error if
// none arrives within wait.
func roundTrip(c *net.UDPConn, dst netip.AddrPort, p []byte, wait time.Duration) ([]byte, error) {
	if _, err := c.WriteToUDPAddrPort(p, dst); err != nil {
		return nil, err
	}
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return nil, err
	}
	buf := make([]byte, maxDatagram)
	n, _, err := c.ReadFromUDPAddrPort(buf)
	return buf[:n], err
}

func TestEchoIdenticalPayloads(t *testing.T) {
	t.Parallel()
	families := []struct {
		name, listen, client string
		max                  int
	}{
		{"IPv4", "127.0.0.1:0", "127.0.0.1:0", 65507},
		{"IPv6", "[::1]:0", "[::1]:0", 65527},
	}
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			s := startEchoOrSkip(t, EchoConfig{Addr: fam.listen, Rate: 0})
			c := listenClient(t, fam.client)
			payload := make([]byte, fam.max)
			for i := range payload {
				payload[i] = byte(i * 7)
			}
			for _, size := range []int{0, 1, 2, 255, 1472, 9000, fam.max} {
				got, err := roundTrip(c, s.Addrs()[0], payload[:size], 5*time.Second)
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				if !bytes.Equal(got, payload[:size]) {
					t.Fatalf("size %d: got %d bytes back, not the identical payload", size, len(got))
				}
			}
		})
	}
}

func startEchoOrSkip(t *testing.T, cfg EchoConfig) *EchoServer {
	t.Helper()
	if strings.HasPrefix(cfg.Addr, "[") {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
		if err != nil {
			t.Skipf("IPv6 loopback unavailable: %v", err)
		}
		c.Close()
	}
	return startEcho(t, cfg)
}

func listenClient(t testing.TB, addr string) *net.UDPConn {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEchoDualStackDefault(t *testing.T) {
	t.Parallel()
	// An empty host means both families on one port.
	s := startEcho(t, EchoConfig{Addr: ":0"})
	addrs := s.Addrs()
	port := addrs[0].Port()
	for _, a := range addrs {
		if a.Port() != port {
			t.Fatalf("sockets on different ports: %v", addrs)
		}
	}
	targets := []string{"127.0.0.1"}
	if len(addrs) == 2 {
		targets = append(targets, "::1")
	}
	for _, host := range targets {
		dst := netip.AddrPortFrom(netip.MustParseAddr(host), port)
		c := listenClient(t, net.JoinHostPort(host, "0"))
		got, err := roundTrip(c, dst, []byte("hello"), 5*time.Second)
		if err != nil || string(got) != "hello" {
			t.Fatalf("echo via %v: %q, %v", dst, got, err)
		}
	}
}

func TestEchoIgnoresLowSourcePort(t *testing.T) {
	t.Parallel()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 999})
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EADDRINUSE) {
		t.Skipf("cannot bind source port 999 (%v); TestEchoLoopFilters covers the rule", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := startEcho(t, EchoConfig{Addr: "127.0.0.1:0", AllowLowPorts: true})
	if got, err := roundTrip(c, s.Addrs()[0], []byte("loop?"), 5*time.Second); err != nil || string(got) != "loop?" {
		t.Fatalf("allowed: reply %q, %v", got, err)
	}

	s = startEcho(t, EchoConfig{Addr: "127.0.0.1:0"})
	if _, err := c.WriteToUDPAddrPort([]byte("loop?"), s.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	// The counters say when the server has processed the datagram; a
	// reply would then be queued on c before a marker sent after it.
	// Received is counted before the datagram's fate: wait for both.
	settled := func(st EchoStats) bool {
		return st.Received != 0 && st.LowPort+st.Echoed+st.RateLimited+st.WriteErrors >= st.Received
	}
	deadline := time.Now().Add(5 * time.Second)
	for !settled(s.Stats()) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := s.Stats(); st.LowPort != 1 || st.Echoed != 0 {
		t.Errorf("stats %+v, want 1 low-port drop and no echo", st)
	}
	marker := listenClient(t, "127.0.0.1:0")
	if _, err := marker.WriteToUDP([]byte("marker"), c.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if n, from, err := c.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "marker" {
		t.Errorf("port 999 read %q from %v (%v) before the marker: the server answered a low source port", buf[:n], from, err)
	}
}

func TestEchoRateLimitOverLoopback(t *testing.T) {
	t.Parallel()
	const burst = 5
	s := startEcho(t, EchoConfig{Addr: "127.0.0.1:0", Rate: 1, Burst: burst})
	c := listenClient(t, "127.0.0.1:0")
	const sent = 50
	start := time.Now()
	for range sent {
		if _, err := c.WriteToUDPAddrPort([]byte("x"), s.Addrs()[0]); err != nil {
			t.Fatal(err)
		}
	}
	// Received counts a datagram as it is read, Echoed once its reply
	// went out (replies go in batches, after the reads): wait until every
	// datagram is settled one way or the other.
	settled := func(st EchoStats) bool {
		return st.Received >= sent && st.Echoed+st.RateLimited+st.LowPort+st.WriteErrors >= st.Received
	}
	deadline := time.Now().Add(5 * time.Second)
	for !settled(s.Stats()) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st := s.Stats()
	// The bucket refills at 1/s while the test runs, however slowly a
	// busy machine runs it: allow exactly that refill.
	refill := uint64(time.Since(start).Seconds()) + 1
	if st.Received != sent || st.Echoed < burst || st.Echoed > burst+refill || st.Echoed+st.RateLimited != sent {
		t.Fatalf("stats %+v: want %d received, %d to %d echoed, the rest rate limited", st, sent, burst, burst+refill)
	}
}

// fakeBatch feeds prepared datagrams to an echoLoop and records replies.
type fakeBatch struct {
	in      []ipv4.Message
	out     []ipv4.Message
	failFor netip.AddrPort // WriteBatch fails on a message to this address
}

func (f *fakeBatch) ReadBatch(ms []ipv4.Message, _ int) (int, error) {
	n := 0
	for n < len(ms) && len(f.in) > 0 {
		ms[n].N = copy(ms[n].Buffers[0], f.in[0].Buffers[0])
		ms[n].Addr = f.in[0].Addr
		f.in = f.in[1:]
		n++
	}
	return n, nil
}

func (f *fakeBatch) WriteBatch(ms []ipv4.Message, _ int) (int, error) {
	for i, m := range ms {
		if ap, _ := addrPortOf(m.Addr); ap == f.failFor {
			return i, errors.New("refused")
		}
		f.out = append(f.out, ipv4.Message{Buffers: [][]byte{bytes.Clone(m.Buffers[0])}, Addr: m.Addr})
	}
	return len(ms), nil
}

func msg(payload, from string) ipv4.Message {
	return ipv4.Message{Buffers: [][]byte{[]byte(payload)}, Addr: net.UDPAddrFromAddrPort(netip.MustParseAddrPort(from))}
}

func TestEchoLoopFilters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   EchoConfig
		in    []ipv4.Message
		fail  string
		want  []string // "payload@addr"
		stats EchoStats
	}{
		{
			name:  "low ports dropped",
			cfg:   EchoConfig{},
			in:    []ipv4.Message{msg("a", "127.0.0.1:999"), msg("b", "127.0.0.1:1024"), msg("c", "127.0.0.1:7"), msg("d", "[::1]:0")},
			want:  []string{"b@127.0.0.1:1024"},
			stats: EchoStats{Received: 4, Echoed: 1, LowPort: 3},
		},
		{
			name:  "low ports allowed",
			cfg:   EchoConfig{AllowLowPorts: true},
			in:    []ipv4.Message{msg("a", "127.0.0.1:999")},
			want:  []string{"a@127.0.0.1:999"},
			stats: EchoStats{Received: 1, Echoed: 1},
		},
		{
			name: "rate limit per source address, not per port",
			cfg:  EchoConfig{Rate: 0.001, Burst: 2},
			in: []ipv4.Message{
				msg("1", "127.0.0.1:5000"), msg("2", "127.0.0.1:5001"), msg("3", "127.0.0.1:5002"),
				msg("4", "127.0.0.2:5000"), msg("5", "[::ffff:127.0.0.1]:5003"),
			},
			want:  []string{"1@127.0.0.1:5000", "2@127.0.0.1:5001", "4@127.0.0.2:5000"},
			stats: EchoStats{Received: 5, Echoed: 3, RateLimited: 2},
		},
		{
			name:  "a refused reply does not stop the others",
			cfg:   EchoConfig{},
			in:    []ipv4.Message{msg("1", "127.0.0.1:5000"), msg("2", "127.0.0.1:5001"), msg("3", "127.0.0.1:5002")},
			fail:  "127.0.0.1:5001",
			want:  []string{"1@127.0.0.1:5000", "3@127.0.0.1:5002"},
			stats: EchoStats{Received: 3, Echoed: 2, WriteErrors: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.BatchSize = 8
			tt.cfg.MaxSources = 16
			l := newTestLoop(tt.cfg)
			f := &fakeBatch{in: tt.in}
			if tt.fail != "" {
				f.failFor = netip.MustParseAddrPort(tt.fail)
			}
			l.conn = f
			n, _ := f.ReadBatch(l.rms, 0)
			if err := l.echo(n); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range f.out {
				ap, _ := addrPortOf(m.Addr)
				got = append(got, string(m.Buffers[0])+"@"+ap.String())
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("replies %q, want %q", got, tt.want)
			}
			if st := l.stats(); st != tt.stats {
				t.Errorf("stats %+v, want %+v", st, tt.stats)
			}
		})
	}
}

func newTestLoop(cfg EchoConfig) *echoLoop {
	c, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer c.Close() // only the loop's buffers are used
	if cfg.Logger == nil {
		cfg = withDefaults(cfg)
	}
	return newEchoLoop(c, cfg)
}

func TestSourceLimiter(t *testing.T) {
	t.Parallel()
	a := netip.MustParseAddr("127.0.0.1")
	b := netip.MustParseAddr("127.0.0.2")
	c := netip.MustParseAddr("127.0.0.3")
	type step struct {
		addr netip.Addr
		at   time.Duration
		want bool
	}
	tests := []struct {
		name       string
		rate       float64
		burst, max int
		steps      []step
	}{
		{"burst then refill", 10, 2, 8, []step{
			{a, 0, true}, {a, 0, true}, {a, 0, false},
			{a, 50 * time.Millisecond, false}, {a, 100 * time.Millisecond, true}, {a, 100 * time.Millisecond, false},
		}},
		{"sources are independent", 1, 1, 8, []step{
			{a, 0, true}, {a, 0, false}, {b, 0, true}, {b, 0, false},
		}},
		{"full table refuses new sources until entries idle out", 1, 1, 2, []step{
			{a, 0, true}, {b, 0, true}, {c, 0, false},
			{c, 2 * time.Second, true},
		}},
		{"default burst is one second of rate", 3, 0, 8, []step{
			{a, 0, true}, {a, 0, true}, {a, 0, true}, {a, 0, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newSourceLimiter(tt.rate, tt.burst, tt.max)
			for i, s := range tt.steps {
				if got := l.allow(s.addr, int64(s.at)); got != s.want {
					t.Fatalf("step %d (%v at %v): allow=%v, want %v", i, s.addr, s.at, got, s.want)
				}
			}
		})
	}
}

// TestSourceLimiterFloodOfNewSources: with the table full of busy
// sources, every datagram from a new address used to sweep the whole
// table, so a flood from fresh addresses cost O(table) per datagram.
func TestSourceLimiterFloodOfNewSources(t *testing.T) {
	t.Parallel()
	const size = 1024
	l := newSourceLimiter(1, 1, size)
	base := netip.MustParseAddr("2001:db8::").As16()
	addr := func(i int) netip.Addr {
		a := base
		a[12], a[13], a[14], a[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		return netip.AddrFrom16(a)
	}
	for i := range size {
		if !l.allow(addr(i), 0) {
			t.Fatalf("source %d refused before the table was full", i)
		}
	}
	start := l.sweeps
	for i := size; i < 100*size; i++ {
		if l.allow(addr(i), int64(i)) { // 1ns apart: nobody refills
			t.Fatalf("new source %d allowed into a full table of busy sources", i)
		}
	}
	if n := l.sweeps - start; n > 1 {
		t.Fatalf("%d sweeps of the full table for %d datagrams within 100µs, want at most 1", n, 99*size)
	}
	// Once entries idle out, new sources get in again.
	if !l.allow(addr(0xffffff), 2e9) {
		t.Fatal("new source refused after the table's entries refilled")
	}
}

func TestServeReturnsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := ListenEcho(ctx, EchoConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(s.Addrs()[0])); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkEchoLoop measures the user-space cost of one batch of 64 echoes
// (filtering, rate limit, reply bookkeeping), without system calls.
func BenchmarkEchoLoop(b *testing.B) {
	l := newTestLoop(EchoConfig{Rate: 1e12, BatchSize: 64})
	var in []ipv4.Message
	for i := range 64 {
		in = append(in, msg("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(2000+i%4)).String()))
	}
	n, _ := (&fakeBatch{in: in}).ReadBatch(l.rms, 0)
	l.conn = discardBatch{}
	b.ReportAllocs()
	b.SetBytes(64 * 64)
	for b.Loop() {
		if err := l.echo(n); err != nil {
			b.Fatal(err)
		}
	}
}

type discardBatch struct{}

func (discardBatch) ReadBatch(ms []ipv4.Message, _ int) (int, error)  { return 0, nil }
func (discardBatch) WriteBatch(ms []ipv4.Message, _ int) (int, error) { return len(ms), nil }

// BenchmarkEchoLoopback measures full round trips through the kernel with
// 16 datagrams in flight from one client socket.
func BenchmarkEchoLoopback(b *testing.B) {
	s := startEcho(b, EchoConfig{Addr: "127.0.0.1:0", Rate: 0})
	c := listenClient(b, "127.0.0.1:0")
	dst := s.Addrs()[0]
	p := make([]byte, 64)
	buf := make([]byte, 2048)
	const window = 16
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	inflight := 0
	for b.Loop() {
		for inflight < window {
			if _, err := c.WriteToUDPAddrPort(p, dst); err != nil {
				b.Fatal(err)
			}
			inflight++
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
		inflight--
	}
}
