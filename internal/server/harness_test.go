package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"netchat/internal/chat"
)

// waitTimeout bounds every wait for something that should happen; tests
// never sleep for a fixed time when a condition can be awaited instead.
const waitTimeout = 5 * time.Second

// quiet is how long a test listens to conclude that nothing arrives.
const quiet = 200 * time.Millisecond

// testServer is a server on a loopback port with its room.
type testServer struct {
	*Server
	addr string
}

// startServer runs a server on 127.0.0.1 with an ephemeral port. mod may
// change the room and server configuration; it is stopped at the end of
// the test.
func startServer(t testing.TB, mod func(*chat.Config, *Config)) *testServer {
	t.Helper()
	rc := chat.Config{Name: "test", History: 20, NoticeBatchAbove: 500}
	sc := Defaults()
	sc.MaxConnsPerIP = 0
	if testing.Verbose() {
		sc.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mod != nil {
		mod(&rc, &sc)
	}
	srv := New(chat.NewRoom(rc), sc)
	ln, err := srv.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Error("Serve did not return after Close")
		}
	})
	return &testServer{Server: srv, addr: ln.Addr().String()}
}

// admitConn does what accept does with the server side of a connection,
// up to starting the session.
func admitConn(t testing.TB, srv *Server, nc net.Conn) (*tcpConn, *session) {
	t.Helper()
	c := newTCPConn(srv, nc)
	sess, _, msg := srv.admit(c, addrIP(nc.RemoteAddr()), nc.RemoteAddr().String(), func(sess *session) { srv.prepareTCP(c, sess) })
	if sess == nil {
		t.Fatalf("connection refused: %s", msg)
	}
	t.Cleanup(func() { srv.Close() })
	return c, sess
}

// client is a raw TCP chat client for tests.
type client struct {
	t    testing.TB
	name string
	c    net.Conn
	r    *bufio.Reader
}

// dial connects and reads the greeting.
func (s *testServer) dial(t testing.TB) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	cl.expectPrefix("Welcome to netchat (")
	return cl
}

// join connects as nick and consumes the welcome line (and history).
func (s *testServer) join(t testing.TB, nick string) *client {
	t.Helper()
	cl := s.dial(t)
	cl.name = nick
	cl.send(nick)
	cl.expectPrefix("* Welcome, " + nick + "! ")
	return cl
}

// joinAll joins the users in order; each earlier one consumes the join
// notices of those after it, so all start with nothing pending.
func (s *testServer) joinAll(t testing.TB, nicks ...string) []*client {
	t.Helper()
	cs := make([]*client, len(nicks))
	for i, nick := range nicks {
		cs[i] = s.join(t, nick)
		for _, earlier := range cs[:i] {
			earlier.expect("* " + nick + " joined (" + strconv.Itoa(i+1) + " online)")
		}
	}
	return cs
}

func (c *client) send(lines ...string) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	for _, l := range lines {
		if _, err := io.WriteString(c.c, l+"\r\n"); err != nil {
			c.t.Fatalf("%s: send %q: %v", c.name, l, err)
		}
	}
}

func (c *client) write(b []byte) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// readLine returns the next line without its CR LF, failing the test after
// waitTimeout. Every server line must end in CR LF.
func (c *client) readLine() string {
	c.t.Helper()
	l, err := c.tryReadLine(waitTimeout)
	if err != nil {
		c.t.Fatalf("%s: reading a line: %v", c.name, err)
	}
	return l
}

func (c *client) tryReadLine(d time.Duration) (string, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	l, err := c.r.ReadString('\n')
	if err != nil {
		if l != "" {
			return l, errors.New("unterminated line " + quote(l) + ": " + err.Error())
		}
		return "", err
	}
	if !strings.HasSuffix(l, "\r\n") {
		return "", errors.New("line not terminated by CR LF: " + quote(l))
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

func quote(s string) string { return "\"" + s + "\"" }

// expect reads the next line and requires it to be exactly want.
func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.readLine(); got != want {
		c.t.Fatalf("%s: got %q, want %q", c.name, got, want)
	}
}

func (c *client) expectPrefix(prefix string) string {
	c.t.Helper()
	got := c.readLine()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("%s: got %q, want a line starting with %q", c.name, got, prefix)
	}
	return got
}

// expectEventually skips lines until one equals want.
func (c *client) expectEventually(want string) {
	c.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		got, err := c.tryReadLine(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("%s: waiting for %q: %v", c.name, want, err)
		}
		if got == want {
			return
		}
	}
	c.t.Fatalf("%s: %q did not arrive", c.name, want)
}

// expectNothing requires that nothing is pending for the client: it sends
// a line whose reply the server queues after everything the client's
// earlier input caused, and requires that reply to be the next line. (So
// no test waits for a quiet period, which a busy machine can stretch.)
// For a line caused by another client, sync that client first.
func (c *client) expectNothing() {
	c.t.Helper()
	if c.name == "" {
		// Not joined: a nickname attempt is the probe.
		c.send("/")
		c.expectPrefix("! invalid nickname")
		return
	}
	c.send("/whoami")
	c.expectPrefix("* you are " + c.name + ", connected from ")
}

// expectClosed requires the server to close the connection (after any
// lines, which are returned).
func (c *client) expectClosed() []string {
	c.t.Helper()
	var lines []string
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		l, err := c.tryReadLine(time.Until(deadline))
		if err == nil {
			lines = append(lines, l)
			continue
		}
		if errors.Is(err, io.EOF) || isReset(err) {
			return lines
		}
		c.t.Fatalf("%s: waiting for the server to close: %v (lines %q)", c.name, err, lines)
	}
	c.t.Fatalf("%s: connection still open", c.name)
	return nil
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// waitFor polls cond until it holds or the wait times out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
