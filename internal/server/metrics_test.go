package server

import (
	"bufio"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"netchat/internal/chat"
)

// TestMetricsNilRecordsNothing: every recording method is safe on a nil
// *Metrics, which is what a server without --metrics has.
func TestMetricsNilRecordsNothing(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.connAccepted()
	m.connOpened()
	m.connClosed()
	m.rejected("per_ip_limit")
	m.lineIn(5)
	m.wrote(1, time.Now())
	m.wroteBytes(7)
	m.sweep(time.Millisecond)
	m.stall()
	m.slowConsumer()
	m.flood()
}

// countingConn counts every byte read from the connection, whatever the
// bufio.Reader above it has consumed yet.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// metricsServer starts a server whose metrics are registered with a fresh
// registry; users_online reads the server's own room.
func metricsServer(t *testing.T, mod func(*chat.Config, *Config)) (*testServer, *Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	var room atomic.Pointer[chat.Room]
	m := NewMetrics(reg, func() int {
		if r := room.Load(); r != nil {
			return r.Online()
		}
		return 0
	})
	s := startServer(t, func(rc *chat.Config, sc *Config) {
		sc.Metrics = m
		if mod != nil {
			mod(rc, sc)
		}
	})
	room.Store(s.Room())
	return s, m, reg
}

// countedJoin joins like testServer.join, but counts the bytes the client
// receives from the first one on.
func (s *testServer) countedJoin(t *testing.T, nick string, received *atomic.Int64) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, name: nick, c: c, r: bufio.NewReader(countingConn{c, received})}
	cl.expectPrefix("Welcome to netchat (")
	cl.send(nick)
	cl.expectPrefix("* Welcome, " + nick + "! ")
	return cl
}

// gaugeValue is the value of an unlabelled gauge (or gauge func) in reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

func histogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no histogram %s", name)
	return nil
}

// TestMetricsAccounting: the traffic counters agree exactly with what the
// clients sent and received: lines and bytes in (terminators excluded),
// lines and bytes out (CR LF included), and the gauges follow users as they
// come and go.
func TestMetricsAccounting(t *testing.T) {
	t.Parallel()
	s, m, reg := metricsServer(t, nil)
	var recvA, recvB atomic.Int64
	alice := s.countedJoin(t, "alice", &recvA)
	bob := s.countedJoin(t, "bob", &recvB)
	alice.expect("* bob joined (2 online)")
	linesOut := 2 + 3 // greeting, welcome; and alice's join notice

	sent := []string{"hello bob", "/me waves", "é ü ✓"}
	for _, l := range sent {
		alice.send(l)
	}
	bob.expect("alice: hello bob")
	bob.expect("* alice waves")
	bob.expect("alice: é ü ✓")
	linesOut += 3
	bob.send("/who")
	bob.expect("* 2 online: alice, bob")
	linesOut++

	linesIn, bytesIn := 2+len(sent)+1, len("alice")+len("bob")+len("/who")
	for _, l := range sent {
		bytesIn += len(l)
	}
	if got := testutil.ToFloat64(m.linesIn); got != float64(linesIn) {
		t.Errorf("lines in = %v, want %d", got, linesIn)
	}
	if got := testutil.ToFloat64(m.bytesIn); got != float64(bytesIn) {
		t.Errorf("bytes in = %v, want %d", got, bytesIn)
	}
	// The write is counted right after it returns, so a client may read
	// the line a moment before the counter moves.
	waitFor(t, "deliveries to match the lines received", func() bool {
		return testutil.ToFloat64(m.deliveries) == float64(linesOut) &&
			testutil.ToFloat64(m.bytesOut) == float64(recvA.Load()+recvB.Load())
	})
	if h := histogram(t, reg, "netchat_delivery_latency_seconds"); h.GetSampleCount() == 0 || h.GetSampleCount() > uint64(linesOut) {
		t.Errorf("latency histogram has %d samples for %d lines", h.GetSampleCount(), linesOut)
	}
	if got := testutil.ToFloat64(m.connsTotal); got != 2 {
		t.Errorf("connections total = %v, want 2", got)
	}
	if got := gaugeValue(t, reg, "netchat_connections"); got != 2 {
		t.Errorf("connections = %v, want 2", got)
	}
	if got := gaugeValue(t, reg, "netchat_users_online"); got != 2 {
		t.Errorf("users online = %v, want 2", got)
	}

	anon := s.dial(t) // connected, no nickname yet
	waitFor(t, "the anonymous connection to count", func() bool {
		return gaugeValue(t, reg, "netchat_connections") == 3
	})
	if got := gaugeValue(t, reg, "netchat_users_online"); got != 2 {
		t.Errorf("users online with an anonymous connection = %v, want 2", got)
	}
	bob.send("/quit")
	bob.expect("* bye")
	bob.expectClosed()
	bob.c.Close()
	anon.c.Close()
	waitFor(t, "bob and the anonymous connection to be gone", func() bool {
		return gaugeValue(t, reg, "netchat_connections") == 1 && gaugeValue(t, reg, "netchat_users_online") == 1
	})
	if got := testutil.ToFloat64(m.connsTotal); got != 3 {
		t.Errorf("connections total = %v, want 3", got)
	}
	for name, c := range map[string]prometheus.Collector{"slow consumers": m.slowConsumers, "floods": m.floods} {
		if got := testutil.ToFloat64(c); got != 0 {
			t.Errorf("%s = %v, want 0", name, got)
		}
	}
}

// TestMetricsBytesOutWithPartialWrites: a client that stops reading makes
// the server's non-blocking writes come up short; the bytes those short
// writes sent are counted too, so bytes out still equals what the client
// finally receives.
func TestMetricsBytesOutWithPartialWrites(t *testing.T) {
	t.Parallel()
	s, m, _ := metricsServer(t, func(rc *chat.Config, sc *Config) {
		rc.History = 0
		sc.SendQueue = 64 << 20 // never a slow consumer here
	})
	var recvA, recvS atomic.Int64
	alice := s.countedJoin(t, "alice", &recvA)
	slow := s.countedJoin(t, "slow", &recvS)
	alice.expect("* slow joined (2 online)")

	// More than the kernel buffers on both sides hold (loopback autotuning
	// allows a few MiB each), so that writes to slow come up short while it
	// is not reading. (Shrinking the client's SO_RCVBUF instead would make
	// the kernel drop segments and back off for seconds.)
	const n, size = 2500, 3000
	text := strings.Repeat("x", size)
	w := bufio.NewWriter(alice.c)
	_ = alice.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	for range n {
		_, _ = w.WriteString(text + "\n")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	alice.send("/who")
	alice.expect("* 2 online: alice, slow")

	// Now read everything.
	want := "alice: " + text
	_ = slow.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := range n {
		l, err := slow.r.ReadString('\n')
		if err != nil {
			t.Fatalf("slow: line %d: %v", i, err)
		}
		if strings.TrimSuffix(l, "\r\n") != want {
			t.Fatalf("slow: line %d is %.40q…", i, l)
		}
	}
	deadline := time.Now().Add(waitTimeout)
	for testutil.ToFloat64(m.bytesOut) != float64(recvA.Load()+recvS.Load()) {
		if time.Now().After(deadline) {
			t.Fatalf("bytes out = %v, clients received %d", testutil.ToFloat64(m.bytesOut), recvA.Load()+recvS.Load())
		}
		time.Sleep(2 * time.Millisecond)
	}
	// greeting, welcome each; alice's join notice and /who; n to slow.
	if got, want := testutil.ToFloat64(m.deliveries), float64(2+2+1+1+n); got != want {
		t.Errorf("deliveries = %v, want %v", got, want)
	}
}

// TestMetricsRejections: refused connections are counted by reason and in
// the connection total, never in the open connections.
func TestMetricsRejections(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		reason, notice string
		mod            func(*Config)
	}{
		{"server_full", "! server full, try again later", func(sc *Config) { sc.MaxConns = 1 }},
		{"per_ip_limit", "! too many connections from your address", func(sc *Config) { sc.MaxConnsPerIP = 1 }},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			t.Parallel()
			s, m, reg := metricsServer(t, func(_ *chat.Config, sc *Config) { tc.mod(sc) })
			s.join(t, "alice")
			for i := range 2 {
				c, err := net.DialTimeout("tcp", s.addr, waitTimeout)
				if err != nil {
					t.Fatal(err)
				}
				cl := &client{t: t, name: "refused", c: c, r: bufio.NewReader(c)}
				cl.expect(tc.notice)
				cl.expectClosed()
				c.Close()
				if got := testutil.ToFloat64(m.rejections.WithLabelValues(tc.reason)); got != float64(i+1) {
					t.Errorf("rejections{reason=%q} = %v, want %d", tc.reason, got, i+1)
				}
			}
			if got := testutil.ToFloat64(m.connsTotal); got != 3 {
				t.Errorf("connections total = %v, want 3", got)
			}
			if got := gaugeValue(t, reg, "netchat_connections"); got != 1 {
				t.Errorf("connections = %v, want 1", got)
			}
			// Every reason is exported from the start, at 0 until it happens.
			if got := testutil.CollectAndCount(m.rejections, "netchat_rejections_total"); got != 3 {
				t.Errorf("%d rejection reasons exported, want 3", got)
			}
		})
	}
}
