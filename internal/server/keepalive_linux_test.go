package server

import (
	"net"
	"syscall"
	"testing"
	"time"

	"netchat/internal/chat"
)

// serverSocket returns the server's side of the only connection.
func (s *testServer) serverSocket(t *testing.T) net.Conn {
	t.Helper()
	var nc net.Conn
	waitFor(t, "the connection to be registered", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for c := range s.conns {
			nc = c.out.w
		}
		return nc != nil
	})
	return nc
}

func sockopts(t *testing.T, nc net.Conn) (on, idle, intvl, cnt int) {
	t.Helper()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var gerr error
	err = rc.Control(func(fd uintptr) {
		get := func(level, opt int) int {
			v, err := syscall.GetsockoptInt(int(fd), level, opt)
			if err != nil && gerr == nil {
				gerr = err
			}
			return v
		}
		on = get(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		idle = get(syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		intvl = get(syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		cnt = get(syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
	})
	if err == nil {
		err = gerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return
}

// TestKeepAlive checks the socket options --keepalive sets on accepted
// connections: probes after the period of silence, a dead peer dropped
// after a few unanswered probes.
func TestKeepAlive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                 string
		keepalive            time.Duration
		on, idle, intvl, cnt int
	}{
		{"default 60s", Defaults().KeepAlive, 1, 60, 15, 4},
		{"20s", 20 * time.Second, 1, 20, 5, 4},
		{"2s, interval at least 1s", 2 * time.Second, 1, 2, 1, 4},
		{"disabled", -1, 0, -1, -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, func(_ *chat.Config, sc *Config) { sc.KeepAlive = tc.keepalive })
			s.dial(t)
			on, idle, intvl, cnt := sockopts(t, s.serverSocket(t))
			if on != tc.on || tc.on == 1 && (idle != tc.idle || intvl != tc.intvl || cnt != tc.cnt) {
				t.Fatalf("SO_KEEPALIVE %d, TCP_KEEPIDLE %d, TCP_KEEPINTVL %d, TCP_KEEPCNT %d; want %d %d %d %d",
					on, idle, intvl, cnt, tc.on, tc.idle, tc.intvl, tc.cnt)
			}
		})
	}
}
