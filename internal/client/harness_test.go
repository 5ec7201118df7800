package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"netchat/internal/chat"
	"netchat/internal/server"
)

// waitTimeout bounds every wait for something that should happen.
const waitTimeout = 5 * time.Second

// testServer is a real chat server on loopback, optionally also on TLS.
type testServer struct {
	srv     *server.Server
	addr    string // plain TCP
	tlsAddr string // "" unless startTLS was called
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	cfg := server.Defaults()
	cfg.MaxConnsPerIP = 0
	srv := server.New(chat.NewRoom(chat.Config{Name: "test", History: 20, NoticeBatchAbove: 500}), cfg)
	ln, err := srv.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return &testServer{srv: srv, addr: ln.Addr().String()}
}

// startTLS adds a TLS listener serving the same room.
func (s *testServer) startTLS(t *testing.T, cfg *tls.Config) {
	t.Helper()
	ln, err := s.srv.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.srv.Serve(tls.NewListener(ln, cfg)) }()
	s.tlsAddr = ln.Addr().String()
}

// user is a raw TCP chat user, the way nc would talk.
type user struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (s *testServer) join(t *testing.T, nick string) *user {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	u := &user{t: t, c: c, br: bufio.NewReader(c)}
	u.send(nick)
	u.waitFor("* Welcome, " + nick + "!")
	return u
}

func (u *user) send(line string) {
	u.t.Helper()
	if _, err := u.c.Write([]byte(line + "\n")); err != nil {
		u.t.Fatal(err)
	}
}

// waitFor reads lines until one starts with prefix.
func (u *user) waitFor(prefix string) string {
	u.t.Helper()
	if err := u.c.SetReadDeadline(time.Now().Add(waitTimeout)); err != nil {
		u.t.Fatal(err)
	}
	var seen []string
	for {
		l, err := u.br.ReadString('\n')
		if err != nil {
			u.t.Fatalf("waiting for %q: %v (saw %q)", prefix, err, seen)
		}
		l = strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(l, prefix) {
			return l
		}
		seen = append(seen, l)
	}
}

// syncBuffer is an output sink that tests can poll while a client writes.
type syncBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitContains waits until the output contains want.
func (s *syncBuffer) waitContains(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for !strings.Contains(s.String(), want) {
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatalf("output never contained %q; got:\n%s", want, s.String())
		}
	}
}

// runAsync runs f on a goroutine and returns a function that waits for its
// result, failing the test if it takes too long.
func runAsync(t *testing.T, f func() error) func() error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	return func() error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(waitTimeout):
			t.Fatal("client did not return")
			return nil
		}
	}
}

// fakeServer accepts one connection on loopback and hands it to serve.
func fakeServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	}()
	return ln.Addr().String()
}
