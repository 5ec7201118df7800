package server

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"netchat/internal/chat"
)

// BenchmarkFanout100 sends b.N chat lines from one user into a room of 100
// over loopback TCP and waits until all 99 listeners have every line. It
// measures the whole server path (poller, telnet filter, splitter,
// hygiene, room, output queues, writes) plus the listeners' reads, which
// share the CPU, so compare it only with itself.
func BenchmarkFanout100(b *testing.B) {
	const n = 100
	s := startServer(b, func(rc *chat.Config, sc *Config) {
		rc.History = 0
		rc.NoticeBatchAbove = -1
	})
	var got atomic.Int64
	var wg sync.WaitGroup
	conns := make([]net.Conn, n)
	for i := range conns {
		c := s.join(b, "u"+strconv.Itoa(i))
		conns[i] = c.c
		if i == 0 {
			continue
		}
		wg.Add(1)
		go func(r io.Reader) {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				m, err := r.Read(buf)
				got.Add(int64(bytes.Count(buf[:m], []byte("u0: x"))))
				if err != nil {
					return
				}
			}
		}(c.r)
	}
	waitFor(b, "everybody joined", func() bool { return s.Room().Online() == n })
	line := []byte("x" + string(bytes.Repeat([]byte("y"), 58)) + "\r\n")
	batch := bytes.Repeat(line, 64)
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		k := min(64, b.N-sent)
		if _, err := conns[0].Write(batch[:k*len(line)]); err != nil {
			b.Fatal(err)
		}
		sent += k
		// Stay within the send queues: wait when too far ahead.
		for int64(sent*(n-1))-got.Load() > 64*(n-1)*4 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	want := int64(b.N * (n - 1))
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	if got.Load() != want {
		b.Fatalf("delivered %d of %d", got.Load(), want)
	}
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
}
