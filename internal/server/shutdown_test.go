package server

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"netchat/internal/chat"
)

// shutdown runs s.Shutdown with a timeout on its own goroutine.
func (s *testServer) shutdown(timeout time.Duration) <-chan error {
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		errc <- s.Shutdown(ctx)
	}()
	return errc
}

func waitErr(t *testing.T, what string, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(2 * waitTimeout):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

// TestShutdown: every client, joined or not, gets "* server shutting down"
// as its last line and then EOF; nobody sees the others leave; the
// listener is closed and Serve returns ErrServerClosed.
func TestShutdown(t *testing.T) {
	t.Parallel()
	srv := New(chat.NewRoom(chat.Config{Name: "test", NoticeBatchAbove: 500}), Defaults())
	ln, err := srv.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	s := &testServer{Server: srv, addr: ln.Addr().String()}

	var clients []*client
	for i := range 6 {
		c := s.join(t, "u"+strconv.Itoa(i))
		clients = append(clients, c)
	}
	for i, c := range clients {
		for j := i + 1; j < len(clients); j++ {
			c.expect("* u" + strconv.Itoa(j) + " joined (" + strconv.Itoa(j+1) + " online)")
		}
	}
	anon := s.dial(t)
	anon.name = "anon"
	clients = append(clients, anon)

	errc := s.shutdown(waitTimeout)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			if lines := c.expectClosed(); strings.Join(lines, "|") != "* server shutting down" {
				t.Errorf("%s got %q, want only [* server shutting down]", c.name, lines)
			}
		})
	}
	wg.Wait()
	if err := waitErr(t, "Shutdown", errc); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := waitErr(t, "Serve", served); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	if n := s.Conns(); n != 0 {
		t.Fatalf("%d connections left", n)
	}
	// The listener is closed. (Not checked by dialing its port: another
	// test may listen there by now, or the dial connect to itself.)
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Fatal("the listener still accepts connections")
	} else if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Shutdown: %v, want net.ErrClosed", err)
	}
	// Serving again is refused, and a second Shutdown is harmless.
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

// TestShutdownFlushesQueuedOutput: output queued for a client before the
// shutdown reaches it in full, in order, before the notice.
func TestShutdownFlushesQueuedOutput(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(rc *chat.Config, _ *Config) { rc.History = 0 })
	alice, bob := s.pair(t)
	const n = 2000
	var b strings.Builder
	for i := range n {
		b.WriteString("line " + strconv.Itoa(i) + " " + strings.Repeat("y", 200) + "\r\n")
	}
	b.WriteString("/msg bob sync\r\n")
	bob.write([]byte(b.String()))
	// Once bob's round trip is back, everything is queued for alice (who
	// has not read any of it yet).
	bob.expect("[private] bob: sync")
	bob.expect("[private to bob] sync")
	errc := s.shutdown(waitTimeout)
	lines := alice.expectClosed()
	if len(lines) != n+1 || lines[n] != "* server shutting down" {
		t.Fatalf("alice got %d lines, the last %q; want %d and the notice", len(lines), lines[len(lines)-1], n+1)
	}
	for i := range n {
		if want := "bob: line " + strconv.Itoa(i) + " " + strings.Repeat("y", 200); lines[i] != want {
			t.Fatalf("line %d: %.30q", i, lines[i])
		}
	}
	if lines := bob.expectClosed(); strings.Join(lines, "|") != "* server shutting down" {
		t.Fatalf("bob got %q", lines)
	}
	if err := waitErr(t, "Shutdown", errc); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownTimeout: a client that never reads cannot hold the server
// up past the shutdown timeout; the others still get the notice and EOF.
func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(rc *chat.Config, sc *Config) {
		rc.History = 0
		sc.SendQueue = 256 << 20 // never a slow consumer here
	})
	alice := s.join(t, "alice")
	stuck := s.join(t, "stuck")
	alice.expect("* stuck joined (2 online)")
	_ = stuck.c.(*net.TCPConn).SetReadBuffer(4096)
	// Far more than the kernel buffers hold: the stuck client's writer
	// is blocked when the shutdown starts.
	chunk := strings.Repeat(strings.Repeat("z", 1000)+"\r\n", 1000)
	for range 12 {
		alice.write([]byte(chunk))
	}
	alice.send("/msg alice sync")
	alice.expect("[private] alice: sync")
	alice.expect("[private to alice] sync")

	errc := s.shutdown(300 * time.Millisecond)
	if lines := alice.expectClosed(); strings.Join(lines, "|") != "* server shutting down" {
		t.Fatalf("alice got %q", lines)
	}
	if err := waitErr(t, "Shutdown", errc); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown returned %v, want context.DeadlineExceeded", err)
	}
	waitFor(t, "every connection to close", func() bool { return s.Conns() == 0 })
}

// TestShutdownDuringNickname: a client that is typing its nickname, or
// connects while the server shuts down, is told and closed.
func TestShutdownIdleServer(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	if err := waitErr(t, "Shutdown", s.shutdown(waitTimeout)); err != nil {
		t.Fatalf("Shutdown without connections: %v", err)
	}
}
