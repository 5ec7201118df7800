package server

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"netchat/internal/chat"
	"netchat/internal/testcert"
)

// BenchmarkFanout100 sends b.N chat lines from one user into a room of 100
// over loopback TCP and waits until all 99 listeners have every line. It
// measures the whole server path (poller, telnet filter, splitter,
// hygiene, room, output queues, writes) plus the listeners' reads, which
// share the CPU, so compare it only with itself.
func BenchmarkFanout100(b *testing.B) { benchFanout(b, false) }

// BenchmarkFanout100TLS is BenchmarkFanout100 with the 99 listeners on TLS.
func BenchmarkFanout100TLS(b *testing.B) { benchFanout(b, true) }

func benchFanout(b *testing.B, listenTLS bool) {
	const n = 100
	s := startServer(b, func(rc *chat.Config, sc *Config) {
		rc.History = 0
		rc.NoticeBatchAbove = -1
	})
	join := func(nick string) (net.Conn, *bufio.Reader) {
		c := s.join(b, nick)
		return c.c, c.r
	}
	if listenTLS {
		certFile, keyFile := testcert.New(b).Files(b)
		cfg, err := LoadTLSConfig(certFile, keyFile)
		if err != nil {
			b.Fatal(err)
		}
		ln, err := s.Listen(b.Context(), "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = s.Serve(tls.NewListener(ln, cfg)) }()
		join = func(nick string) (net.Conn, *bufio.Reader) {
			nc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { nc.Close() })
			c := &client{t: b, c: nc, r: bufio.NewReader(nc)}
			c.expectPrefix("Welcome to netchat (")
			c.send(nick)
			c.expectPrefix("* Welcome, " + nick + "! ")
			return nc, c.r
		}
	}
	var got atomic.Int64
	var wg sync.WaitGroup
	conns := make([]net.Conn, n)
	for i := range conns {
		if i == 0 {
			conns[i] = s.join(b, "u0").c
			continue
		}
		nc, r := join("u" + strconv.Itoa(i))
		conns[i] = nc
		wg.Add(1)
		go func(r *bufio.Reader) {
			defer wg.Done()
			for {
				// Line by line: a record or a read may end inside a line.
				l, err := r.ReadSlice('\n')
				if bytes.HasPrefix(l, []byte("u0: x")) {
					got.Add(1)
				}
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
			}
		}(r)
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
