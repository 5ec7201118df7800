package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"netchat/internal/chat"
	"netchat/internal/syncbuf"
)

// pasteLines writes n lines of size bytes from c as fast as the server
// takes them, on its own goroutine; the result is the write error.
func pasteLines(c *client, n, size int) <-chan error {
	done := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(c.c, 64<<10)
		body := strings.Repeat("p", size)
		_ = c.c.SetWriteDeadline(time.Now().Add(60 * time.Second))
		for i := range n {
			if _, err := w.WriteString(strconv.Itoa(i) + " " + body + "\n"); err != nil {
				done <- err
				return
			}
		}
		done <- w.Flush()
	}()
	return done
}

// TestPacingKeepsReaderConnected is issue 13's first case: a client that
// reads continuously but slower than a burst arrives must not be cut off
// as a slow consumer by one paste, while a client that reads nothing is
// still dropped, and the sender is held back only within the stall
// bounds. The send queue is small (64 KiB), the paste large (5,000 lines
// of 3 KB).
func TestPacingKeepsReaderConnected(t *testing.T) {
	t.Parallel()
	const lines, size = 5000, 3000
	// Generous for a test that must pass on a machine whose cores are
	// busy with other work (with the race detector on, 10ms failed 6 of
	// 15 runs next to two busy loops, 30ms none): the bound, not its
	// value, is under test here.
	const stallMax = 50 * time.Millisecond
	var mu sync.Mutex
	var worst time.Duration
	var logs *syncbuf.Buffer
	s := startServer(t, func(rc *chat.Config, sc *Config) {
		rc.History = 0
		sc.SendQueue = 64 << 10
		sc.StallMax = stallMax
		sc.Metrics = newTestMetrics()
		logs = captureLogs(sc)
		sc.testHookStall = func(ttl, spent time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			worst = max(worst, spent+ttl)
		}
	})
	alice := s.join(t, "alice")
	reader := s.join(t, "reader")
	stuck := s.join(t, "stuck")
	alice.expect("* reader joined (2 online)")
	alice.expect("* stuck joined (3 online)")
	reader.expect("* stuck joined (3 online)")
	_ = stuck.c.(*net.TCPConn).SetReadBuffer(4096)

	got := make(chan int, 1)
	go func() {
		// The reader: a plain loop over reads, checking every line.
		_ = reader.c.SetReadDeadline(time.Now().Add(60 * time.Second))
		next := 0
		for next < lines {
			l, err := reader.r.ReadString('\n')
			if err != nil {
				break
			}
			l = strings.TrimSuffix(l, "\r\n")
			if l == "* stuck left (2 online)" {
				continue
			}
			if !strings.HasPrefix(l, "alice: "+strconv.Itoa(next)+" ") {
				break
			}
			next++
		}
		got <- next
	}()
	sent := pasteLines(alice, lines, size)
	if n := <-got; n != lines {
		t.Fatalf("the reader got %d of %d lines in order; log:\n%s", n, lines, logs.String())
	}
	if err := <-sent; err != nil {
		t.Fatalf("pasting: %v", err)
	}
	alice.expectEventually("* stuck left (2 online)")
	if n := counterValue(t, s.cfg.Metrics.slowConsumers); n != 1 {
		t.Fatalf("slow consumers = %v, want 1 (stuck only)", n)
	}
	if n := counterValue(t, s.cfg.Metrics.stalls); n == 0 {
		t.Fatal("no stall was counted")
	}
	mu.Lock()
	defer mu.Unlock()
	if worst > s.cfg.StallMax {
		t.Fatalf("a read of the sender was held back for up to %v, bound %v", worst, s.cfg.StallMax)
	}
	t.Logf("stalls %v, longest total per read %v", counterValue(t, s.cfg.Metrics.stalls), worst)
}

// TestWriteTimeoutDropsNonReader: a client that reads nothing is dropped
// once its socket has taken nothing for the write timeout, although its
// queue is far below the send queue limit; it gets exactly one leave
// notice and is counted and logged as a slow consumer.
func TestWriteTimeoutDropsNonReader(t *testing.T) {
	t.Parallel()
	var logs *syncbuf.Buffer
	s := startServer(t, func(rc *chat.Config, sc *Config) {
		rc.History = 0
		sc.SendQueue = 256 << 20 // never by size here
		sc.WriteTimeout = 300 * time.Millisecond
		sc.Metrics = newTestMetrics()
		logs = captureLogs(sc)
	})
	alice := s.join(t, "alice")
	stuck := s.join(t, "stuck")
	alice.expect("* stuck joined (2 online)")
	_ = stuck.c.(*net.TCPConn).SetReadBuffer(4096)
	// More than the kernel buffers on both sides hold, so that the
	// server's socket fills up; then nothing moves.
	if err := <-pasteLines(alice, 3000, 4000); err != nil {
		t.Fatal(err)
	}
	alice.expectEventually("* stuck left (1 online)")
	alice.expectNothing()
	if n := counterValue(t, s.cfg.Metrics.slowConsumers); n != 1 {
		t.Fatalf("slow consumers = %v, want 1", n)
	}
	if !strings.Contains(logs.String(), `msg="slow consumer disconnected"`) ||
		!strings.Contains(logs.String(), `cause="write timeout"`) {
		t.Fatalf("no write-timeout warning logged:\n%s", logs.String())
	}
}

// TestJoinReplayNeverTripsSendQueue: a recent history larger than the
// send queue (long lines) reaches every newcomer that reads, instead of
// cutting it off as a slow consumer.
func TestJoinReplayNeverTripsSendQueue(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(rc *chat.Config, sc *Config) {
		rc.History = 20
		sc.MaxLine = 16 << 10
		sc.SendQueue = 64 << 10
	})
	alice := s.join(t, "alice")
	long := strings.Repeat("h", 15<<10)
	for i := range 20 {
		alice.send(strconv.Itoa(i) + " " + long)
	}
	alice.expectNothing() // all 20 kept: 300 KiB of history
	for i := range 5 {
		nick := "new" + strconv.Itoa(i)
		c := s.dial(t)
		c.name = nick
		c.send(nick)
		c.expectPrefix("* Welcome, " + nick + "! ")
		c.expect("* --- recent messages ---")
		for j := range 20 {
			if l := c.readLine(); !strings.HasSuffix(l, "alice: "+strconv.Itoa(j)+" "+long) {
				t.Fatalf("%s: history line %d is %.40q…", nick, j, l)
			}
		}
		c.expect("* --- end of recent messages ---")
		c.expectNothing()
		alice.expect("* " + nick + " joined (" + strconv.Itoa(i+2) + " online)")
	}
}

// nopTransport is a transport that goes nowhere, for tests of admission.
type nopTransport struct{}

func (nopTransport) pauseInput()    {}
func (nopTransport) resumeInput()   {}
func (nopTransport) stopInput()     {}
func (nopTransport) closeGraceful() {}
func (nopTransport) closeHard(bool) {}

// TestPerIPLimitCountsIPv6Networks: one IPv6 host usually has a whole /64,
// so the per-IP limit counts IPv6 clients per network of IPv6PrefixLen
// bits (SPEC §2.4's --max-conns-per-ip); IPv4 addresses count one by one.
func TestPerIPLimitCountsIPv6Networks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		prefix int
		addrs  []string
		admit  []bool
	}{
		{64, []string{"2001:db8::1", "2001:db8::2", "2001:db8::ffff:3", "2001:db8:0:1::1", "::ffff:192.0.2.1"},
			[]bool{true, true, false, true, true}},
		{128, []string{"2001:db8::1", "2001:db8::2", "2001:db8::ffff:3", "2001:db8::1", "2001:db8::1"},
			[]bool{true, true, true, true, false}},
		{48, []string{"2001:db8:0:1::1", "2001:db8:0:2::1", "2001:db8:0:3::1", "2001:db8:1::1"},
			[]bool{true, true, false, true}},
		{64, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1", "192.0.2.1"},
			[]bool{true, true, true, true, false}},
	} {
		srv := New(chat.NewRoom(chat.Config{}), Config{MaxConnsPerIP: 2, IPv6PrefixLen: tc.prefix})
		for i, a := range tc.addrs {
			ip := netip.MustParseAddr(a).Unmap()
			sess, _, msg := srv.admit(nopTransport{}, ip, a, nil)
			if got := sess != nil; got != tc.admit[i] {
				t.Fatalf("/%d: %s (connection %d): admitted %v, want %v (%s)", tc.prefix, a, i, got, tc.admit[i], msg)
			}
			if sess == nil && msg != "! too many connections from your address" {
				t.Fatalf("refused with %q", msg)
			}
		}
		srv.Close()
	}
}

// TestPerIPLimitOverIPv6Loopback: the limit applies to real IPv6
// connections too.
func TestPerIPLimitOverIPv6Loopback(t *testing.T) {
	t.Parallel()
	srv := New(chat.NewRoom(chat.Config{}), Config{MaxConnsPerIP: 2})
	ln, err := srv.Listen(t.Context(), "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	s := &testServer{Server: srv, addr: ln.Addr().String()}
	s.dial(t)
	s.dial(t)
	c, err := net.DialTimeout("tcp", s.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	cl.expect("! too many connections from your address")
	cl.expectClosed()
}

// TestTLSHandshakeFailureLogged: a client on the TLS port that does not
// speak TLS is closed, and the log says the handshake failed.
func TestTLSHandshakeFailureLogged(t *testing.T) {
	t.Parallel()
	var logs *syncbuf.Buffer
	s := startServer(t, func(_ *chat.Config, sc *Config) { logs = captureLogs(sc) })
	ln, err := s.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(tls.NewListener(ln, tlsConfig(t))) }()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("alice\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, _ = io.Copy(io.Discard, c) // until the server hangs up
	waitFor(t, "the disconnect log", func() bool {
		return strings.Contains(logs.String(), `reason="TLS handshake failed: `)
	})
	waitFor(t, "the connection to be forgotten", func() bool { return s.Conns() == 0 })
}
