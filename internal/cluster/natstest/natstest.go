// Package natstest runs a NATS server with JetStream for tests: in-process
// (github.com/nats-io/nats-server/v2/server) by default, so tests need
// nothing installed, or the nats-server binary named by the environment
// variable NETCHAT_TEST_NATS_SERVER (CI runs the cluster tests a second time
// against Debian's nats-server 2.9 that way). Always on 127.0.0.1.
package natstest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EnvServer names a nats-server binary to use instead of the in-process
// server.
const EnvServer = "NETCHAT_TEST_NATS_SERVER"

// Server is a running NATS server; Stop and Start restart it on the same
// port with the same storage.
type Server struct {
	t    testing.TB
	dir  string
	port int

	mod func(*server.Options)

	mu  sync.Mutex
	ns  *server.Server
	cmd *exec.Cmd
}

// Start starts a server for the test; it is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, nil)
}

// StartWith starts an in-process server whose options mod changes (for
// authentication or TLS); the test is skipped when an external server is
// asked for.
func StartWith(t testing.TB, mod func(*server.Options)) *Server {
	t.Helper()
	if mod != nil && External() {
		t.Skip("needs the in-process NATS server to configure it")
	}
	s := &Server{t: t, dir: t.TempDir(), mod: mod}
	if err := s.start(); err != nil {
		t.Fatalf("nats server: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// External reports whether the servers are an external binary.
func External() bool { return os.Getenv(EnvServer) != "" }

// URL is the server's client URL.
func (s *Server) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Restart starts the server again after Stop, on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for range 50 { // the port may take a moment to be free again
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("nats server restart: %v", err)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bin := os.Getenv(EnvServer); bin != "" {
		return s.startExternal(bin)
	}
	port := s.port
	if port == 0 {
		port = -1 // random
	}
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  s.dir,
		NoLog:     true,
		NoSigs:    true,
	}
	if s.mod != nil {
		s.mod(opts)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return errors.New("not ready within 10s")
	}
	s.ns = ns
	s.port = ns.Addr().(*net.TCPAddr).Port
	return nil
}

func (s *Server) startExternal(bin string) error {
	if s.port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s.port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	cmd := exec.Command(bin, "-js", "-sd", s.dir, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port))
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited: %v", bin, err)
		default:
		}
		if ready(s.URL()[len("nats://"):]) {
			s.cmd = cmd
			go func() { <-exited }()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return fmt.Errorf("%s not ready within 10s", bin)
}

// Stop stops the server (idempotent).
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.ns = nil
	}
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		// Reaped by the goroutine started with it; wait until the port
		// is released.
		for range 100 {
			c, err := net.DialTimeout("tcp", s.URL()[len("nats://"):], 100*time.Millisecond)
			if err != nil {
				break
			}
			c.Close()
			time.Sleep(20 * time.Millisecond)
		}
		s.cmd = nil
	}
}

// ready reports whether a NATS server answers at addr: it sends its INFO
// line first.
func ready(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 5)
	n, _ := io.ReadFull(c, buf)
	return n == 5 && string(buf) == "INFO "
}
