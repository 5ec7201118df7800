package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"netchat/internal/chat"
	"netchat/internal/testcert"
)

// loopbackPair returns both ends of a loopback TCP connection: the
// server's and the client's.
func loopbackPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.DialTimeout("tcp", ln.Addr().String(), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(waitTimeout))
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// readAllLines reads CR LF lines until EOF or reset, bounded by waitTimeout.
func readAllLines(t *testing.T, c net.Conn) []string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	r := bufio.NewReader(c)
	var lines []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			if !errors.Is(err, io.EOF) && !isReset(err) {
				t.Fatalf("reading: %v (after %d lines)", err, len(lines))
			}
			return lines
		}
		lines = append(lines, strings.TrimSuffix(l, "\r\n"))
	}
}

func tlsConfig(t *testing.T) *tls.Config {
	t.Helper()
	certFile, keyFile := testcert.New(t).Files(t)
	cfg, err := LoadTLSConfig(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTLSRejectWithoutHandshake: a client refused on a TLS listener that
// never starts the handshake must not hold its refusal (and a slot of the
// 256 refusals in flight) forever.
func TestTLSRejectWithoutHandshake(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(_ *chat.Config, sc *Config) { sc.MaxConns = 1 })
	ln, err := s.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(tls.NewListener(ln, tlsConfig(t))) }()
	s.join(t, "alice") // the only slot

	c, err := net.DialTimeout("tcp", ln.Addr().String(), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
		t.Fatalf("the refused connection was not closed: %v", err)
	}
	waitFor(t, "the refusal to end", func() bool { return s.rejecting.Load() == 0 })
}

// TestDeliverLastIsLast: a line delivered concurrently with deliverLast
// never arrives after the last line.
func TestDeliverLastIsLast(t *testing.T) {
	t.Parallel()
	srv := New(chat.NewRoom(chat.Config{}), Config{})
	for i := range 50 {
		snc, cnc := loopbackPair(t)
		_, c := admitConn(t, srv, snc)
		var sent atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				// Bounded, so that the queue never overflows and cuts
				// the client off as a slow consumer on a busy machine.
				for range 3000 {
					select {
					case <-stop:
						return
					default:
					}
					c.Deliver([]byte("x"))
					sent.Add(1)
				}
			})
		}
		got := make(chan []string, 1)
		go func() { got <- readAllLines(t, cnc) }()
		waitFor(t, "some lines", func() bool { return sent.Load() > 20 })
		c.deliverLast([]byte("* server shutting down"))
		close(stop)
		wg.Wait()
		go c.finish("test")
		lines := <-got
		cnc.Close()
		if len(lines) == 0 || lines[len(lines)-1] != "* server shutting down" {
			tail := lines[max(0, len(lines)-3):]
			t.Fatalf("round %d: the last lines are %q, want the notice last", i, tail)
		}
	}
}

// blockingHandler blocks the first "slow consumer disconnected" record
// until released, and counts them all.
type blockingHandler struct {
	slog.Handler
	n       atomic.Int32
	inLog   chan struct{}
	release chan struct{}
}

func (h *blockingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *blockingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "slow consumer disconnected" && h.n.Add(1) == 1 {
		close(h.inLog)
		<-h.release
	}
	return nil
}

// TestSlowConsumerCountedOnce: several senders overflowing one client's
// queue at the same time cut it off once: one log line, one count.
func TestSlowConsumerCountedOnce(t *testing.T) {
	t.Parallel()
	h := &blockingHandler{Handler: slog.DiscardHandler, inLog: make(chan struct{}), release: make(chan struct{})}
	m := NewMetrics(prometheus.NewRegistry(), func() int { return 0 })
	srv := New(chat.NewRoom(chat.Config{}), Config{SendQueue: 64, Logger: slog.New(h), Metrics: m})
	snc, _ := loopbackPair(t)
	_, c := admitConn(t, srv, snc)
	big := []byte(strings.Repeat("y", 100))
	first := make(chan struct{})
	go func() { c.Deliver(big); close(first) }()
	select {
	case <-h.inLog:
	case <-time.After(waitTimeout):
		t.Fatal("no slow consumer")
	}
	c.Deliver(big) // a second sender, while the first is still cutting it off
	close(h.release)
	<-first
	if n := h.n.Load(); n != 1 {
		t.Errorf("%d slow consumer log lines, want 1", n)
	}
	if n := testutil.ToFloat64(m.slowConsumers); n != 1 {
		t.Errorf("slow consumer disconnects = %v, want 1", n)
	}
}

// TestTLSQuitDrainsInput: after /quit the server drains what a TLS client
// still sends while it closes (so no reset destroys the last lines), even
// when the sweeper runs in the meantime.
func TestTLSQuitDrainsInput(t *testing.T) {
	t.Parallel()
	const nick = 300 * time.Millisecond
	s := startServer(t, func(_ *chat.Config, sc *Config) { sc.NickTimeout = nick })
	ln, err := s.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(tls.NewListener(ln, tlsConfig(t))) }()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
	connected := time.Now()
	nc, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	cl := &client{t: t, name: "alice", c: nc, r: bufio.NewReader(nc)}
	cl.expectPrefix("Welcome to netchat (")
	cl.send("alice")
	cl.expectPrefix("* Welcome, alice! ")
	// A session older than the nickname timeout, so the sweeper would
	// consider it once it is no longer joined.
	time.Sleep(time.Until(connected.Add(nick + 100*time.Millisecond)))
	cl.send("/quit")
	if lines := cl.expectClosed(); len(lines) != 1 || lines[0] != "* bye" {
		t.Fatalf("got %q, want [* bye]", lines)
	}
	// The server is draining: what we send now must not be refused. (A
	// few writes right after the close, well inside the server's drain
	// period even on a busy machine.)
	_ = nc.SetWriteDeadline(time.Now().Add(waitTimeout))
	for range 10 {
		if _, err := nc.Write([]byte("more\r\n")); err != nil {
			t.Fatalf("the server stopped draining: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestServeAfterShutdownClosesListener: Serve called after Shutdown
// returns ErrServerClosed and does not leave the listener open, with
// clients queueing on it unserved.
func TestServeAfterShutdownClosesListener(t *testing.T) {
	t.Parallel()
	srv := New(chat.NewRoom(chat.Config{}), Defaults())
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v, want ErrServerClosed", err)
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(quiet))
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("the listener is still open (Accept: %v)", err)
	}
}

// TestShutdownBeforeStart: a connection admitted just before Shutdown whose
// session starts after Shutdown ended it gets only the shutdown notice, and
// stays registered with no poller.
func TestShutdownBeforeStart(t *testing.T) {
	t.Parallel()
	srv := New(chat.NewRoom(chat.Config{}), Defaults())
	snc, cnc := loopbackPair(t)
	// What accept does, up to starting the session.
	c, sess := admitConn(t, srv, snc)

	errc := make(chan error, 1)
	go func() { errc <- srv.Shutdown(t.Context()) }()
	waitFor(t, "the session to end", func() bool {
		sess.inMu.Lock()
		defer sess.inMu.Unlock()
		return sess.ended
	})
	c.start()
	if lines := readAllLines(t, cnc); strings.Join(lines, "|") != "* server shutting down" {
		t.Errorf("got %q, want only the shutdown notice", lines)
	}
	cnc.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if c.poll != nil {
		c.poll.mu.Lock()
		n := len(c.poll.conns)
		c.poll.mu.Unlock()
		if n != 0 {
			t.Errorf("%d connections still registered with the poller", n)
		}
	}
}

// TestConcurrentShutdowns: two Shutdowns at once both return when the
// connections are gone, not when their contexts expire.
func TestConcurrentShutdowns(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	cl := s.join(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- s.Shutdown(ctx) }()
	}
	cl.expectClosed()
	cl.c.Close()
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("a Shutdown did not return after the connections were gone")
		}
	}
}

// TestAdmitWiresBeforeRegistering: a session is wired to its connection
// before Shutdown can see it. Registered first, a Shutdown in between
// would write its last line to an output with no connection (a panic in
// the writer), or a WebSocket client would get an unframed line.
func TestAdmitWiresBeforeRegistering(t *testing.T) {
	t.Parallel()
	srv := New(chat.NewRoom(chat.Config{}), Defaults())
	defer srv.Close()
	snc, _ := loopbackPair(t)
	c := newTCPConn(srv, snc)
	var registered, wired bool
	sess, _, msg := srv.admit(c, addrIP(snc.RemoteAddr()), snc.RemoteAddr().String(), func(sess *session) {
		srv.mu.Lock()
		_, registered = srv.conns[sess]
		srv.mu.Unlock()
		srv.prepareTCP(c, sess)
		wired = sess.out.w != nil
	})
	if sess == nil {
		t.Fatalf("refused: %s", msg)
	}
	if registered || !wired {
		t.Errorf("prepared after registering: %v, wired: %v", registered, wired)
	}
	srv.mu.Lock()
	_, ok := srv.conns[sess]
	srv.mu.Unlock()
	if !ok {
		t.Error("the admitted session is not registered")
	}
}
