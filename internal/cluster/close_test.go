package cluster_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"netchat/internal/chat"
	"netchat/internal/cluster"
	"netchat/internal/cluster/natstest"
)

// stallProxy forwards TCP to a NATS server until it is told to stall:
// then it keeps the connections open and forwards nothing (a NATS server
// that hangs without a disconnect).
type stallProxy struct {
	ln    net.Listener
	stall atomic.Bool
	mu    sync.Mutex
	conns []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go p.pipe(u, c)
			go p.pipe(c, u)
		}
	}()
	return p
}

func (p *stallProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 && !p.stall.Load() {
			if _, err := dst.Write(buf[:k]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestCloseWithinItsDeadline: a node whose NATS server hangs (connection up,
// no answers) while it gives claims back still closes by its context's
// deadline; it waited for every release to time out (5 s per 16), and for
// a flush of 5 s.
func TestCloseWithinItsDeadline(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	p := newStallProxy(t, ns.URL()[len("nats://"):])
	n, err := cluster.Connect(context.Background(), cluster.Options{URLs: "nats://" + p.ln.Addr().String(), Name: "h", Logger: logger("h")})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background(), chat.NewClusterRoom(chat.Config{Name: "test"}, n)); err != nil {
		t.Fatal(err)
	}
	p.stall.Store(true)
	for i := range 48 {
		n.Release("ghost"+strconv.Itoa(i), uint64(1000+i))
	}
	waitFor(t, "the release worker to take the releases", func() bool { return n.ReleasesQueued() == 0 })
	n.Release("late", 999) // queued behind the stuck run
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_ = n.Close(ctx)
	// The deadline is 1 s, and the rest of Close takes milliseconds; the
	// bound leaves room for a slow machine. Before, Close took 10 s here
	// (30 s with users), a 5 s flush included.
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("Close with a 1 s deadline took %v", d)
	}
}
