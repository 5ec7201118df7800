package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"netchat/internal/chat"
	"netchat/internal/syncbuf"
)

// lineCollector reads every line a client receives on its own goroutine,
// at full speed, so that the client is never a slow consumer itself.
type lineCollector struct {
	mu    sync.Mutex
	lines []string
	err   error
	done  chan struct{}
}

func collect(c *client) *lineCollector {
	lc := &lineCollector{done: make(chan struct{})}
	_ = c.c.SetReadDeadline(time.Time{})
	go func() {
		defer close(lc.done)
		for {
			l, err := c.r.ReadString('\n')
			if err != nil {
				lc.mu.Lock()
				lc.err = err
				lc.mu.Unlock()
				return
			}
			lc.mu.Lock()
			lc.lines = append(lc.lines, strings.TrimSuffix(l, "\r\n"))
			lc.mu.Unlock()
		}
	}()
	return lc
}

func (lc *lineCollector) snapshot() []string {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return slices.Clone(lc.lines)
}

func (lc *lineCollector) has(line string) bool {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return slices.Contains(lc.lines, line)
}

// TestSlowConsumer: one client stops reading while alice sends at full
// speed to it and two fast readers. The slow client is cut off with one
// leave notice and a log line; the fast readers get every message in order;
// and alice never waits for the slow client: she completes a round trip
// through the server after every batch although the slow client reads
// nothing at all, which would deadlock if any send waited for it.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	const sendQueue = 64 << 10
	var logs *syncbuf.Buffer
	s := startServer(t, func(rc *chat.Config, sc *Config) {
		rc.History = 0
		sc.SendQueue = sendQueue
		sc.Metrics = newTestMetrics()
		logs = captureLogs(sc)
	})
	alice := s.join(t, "alice")
	bob := s.join(t, "bob")
	carol := s.join(t, "carol")
	slow := s.join(t, "slow")
	for _, c := range []*client{alice, bob, carol} {
		c.expectEventually("* slow joined (4 online)")
	}
	// A small receive window makes the kernel buffers fill quickly; from
	// here on the slow client reads nothing until the end.
	_ = slow.c.(*net.TCPConn).SetReadBuffer(4096)

	fast := []*lineCollector{collect(bob), collect(carol)}
	body := strings.Repeat("x", 1000)
	msg := func(i int) string { return "m" + strconv.Itoa(i) + " " + body }
	const batch = 16
	const leave = "* slow left (3 online)"
	sent, batches, afterLeave := 0, 0, -1
	var rtts []time.Duration
	aliceSawLeave := 0
	for afterLeave < 4 {
		if sent > 20<<20/len(body) {
			t.Fatalf("slow consumer still connected after %d messages", sent)
		}
		var b strings.Builder
		for range batch {
			b.WriteString(msg(sent))
			b.WriteString("\r\n")
			sent++
		}
		ping := "ping" + strconv.Itoa(batches)
		b.WriteString("/msg alice " + ping + "\r\n")
		start := time.Now()
		alice.write([]byte(b.String()))
		// The round trip: alice's own private message comes back.
		for {
			l := alice.readLine()
			if l == leave {
				aliceSawLeave++
				continue
			}
			if l != "[private] alice: "+ping {
				t.Fatalf("alice: got %q while waiting for %s", l, ping)
			}
			alice.expect("[private to alice] " + ping)
			break
		}
		rtts = append(rtts, time.Since(start))
		batches++
		// The fast readers keep up (they must not become slow consumers
		// themselves); alice waits for them, never for the slow one.
		for i, lc := range fast {
			waitFor(t, "fast reader "+strconv.Itoa(i)+" to get batch "+strconv.Itoa(batches), func() bool {
				return lc.has("alice: " + msg(sent-1))
			})
		}
		if afterLeave >= 0 {
			afterLeave++
		} else if s.Room().Online() == 3 {
			afterLeave = 0
		}
	}
	// Every message reaches both fast readers, in order, with exactly one
	// leave notice somewhere in between.
	for i, lc := range fast {
		deadline := time.Now().Add(waitTimeout)
		for {
			l := lc.snapshot()
			if len(l) > 0 && l[len(l)-1] == "alice: "+msg(sent-1) {
				break
			}
			if time.Now().After(deadline) {
				lc.mu.Lock()
				err := lc.err
				lc.mu.Unlock()
				t.Fatalf("fast reader %d: %d lines, the last %.60q; err %v", i, len(l), l[len(l)-1], err)
			}
			time.Sleep(time.Millisecond)
		}
		next, leaves := 0, 0
		for _, l := range lc.snapshot() {
			switch {
			case l == leave:
				leaves++
			case l == "alice: "+msg(next):
				next++
			default:
				t.Fatalf("fast reader %d: got %.40q, want message %d", i, l, next)
			}
		}
		if next != sent || leaves != 1 {
			t.Fatalf("fast reader %d: %d of %d messages, %d leave notices", i, next, sent, leaves)
		}
	}
	if aliceSawLeave != 1 {
		t.Fatalf("alice saw %d leave notices, want 1", aliceSawLeave)
	}

	// The slow client got a prefix of the messages. (It may not see the
	// end of the stream soon: with its tiny receive window the kernel
	// only probes it now and then, so stop after a quiet period.)
	waitFor(t, "the slow connection to end", func() bool { return s.Conns() == 3 })
	got := 0
	r := bufio.NewReader(slow.r)
	for {
		_ = slow.c.SetReadDeadline(time.Now().Add(quiet))
		l, err := r.ReadString('\n')
		if err != nil {
			var ne net.Error
			if !errors.Is(err, io.EOF) && !isReset(err) && !(errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("slow: after %d lines: %v", got, err)
			}
			break
		}
		if want := "alice: " + msg(got) + "\r\n"; l != want {
			t.Fatalf("slow: line %d is %.40q", got, l)
		}
		got++
	}
	if got >= sent {
		t.Fatalf("slow client got all %d messages", sent)
	}
	if n := counterValue(t, s.cfg.Metrics.slowConsumers); n != 1 {
		t.Fatalf("slow consumer disconnects = %v, want 1", n)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"slow consumer disconnected\"") {
		t.Fatalf("no warning logged:\n%s", logs.String())
	}
	slices.Sort(rtts)
	t.Logf("sent %d messages of %d bytes in %d batches; slow client cut off after reading %d (send queue %d bytes); "+
		"alice's round trip per batch: median %v, max %v",
		sent, len(msg(0))+9, batches, got, sendQueue, rtts[len(rtts)/2], rtts[len(rtts)-1])
}

// TestSlowConsumerOwnReplies: a client that asks for output without ever
// reading it is cut off too, and nobody else notices anything but the leave.
func TestSlowConsumerOwnReplies(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(rc *chat.Config, sc *Config) { rc.History = 0; sc.SendQueue = 32 << 10 })
	bob := s.join(t, "bob")
	m := s.join(t, "mallory")
	bob.expect("* mallory joined (2 online)")
	_ = m.c.(*net.TCPConn).SetReadBuffer(4096)
	cmds := []byte(strings.Repeat("/help\r\n", 1000))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = m.c.SetWriteDeadline(time.Now().Add(waitTimeout))
			if _, err := m.c.Write(cmds); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	bob.expect("* mallory left (1 online)")
	bob.send("/who")
	bob.expect("* 1 online: bob")
}

// TestEndlessLine streams 20 MB without a newline while alice and bob chat.
// The server's heap must not grow with the stream, the sender gets one
// "line too long", and the chat goes on meanwhile. Not parallel: it
// measures the whole process's heap.
func TestEndlessLine(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 20 MB")
	}
	s := startServer(t, func(rc *chat.Config, _ *Config) { rc.History = 0 })
	alice, bob := s.pair(t)
	m := s.join(t, "mallory")
	alice.expect("* mallory joined (3 online)")
	bob.expect("* mallory joined (3 online)")

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	const total = 20 << 20
	var streamed, peak uint64
	var peakMu sync.Mutex
	// sample records the heap in use after a collection: what the server
	// retains, not the garbage the GC has not collected yet.
	samples := 0
	sample := func() {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peakMu.Lock()
		peak = max(peak, ms.HeapInuse)
		samples++
		peakMu.Unlock()
	}
	streamDone := make(chan error, 1)
	go func() {
		chunk := []byte(strings.Repeat("A", 64<<10))
		for streamed < total {
			_ = m.c.SetWriteDeadline(time.Now().Add(waitTimeout))
			if _, err := m.c.Write(chunk); err != nil {
				streamDone <- err
				return
			}
			streamed += uint64(len(chunk))
			if streamed%(2<<20) == 0 {
				sample()
			}
		}
		streamDone <- nil
	}()

	// Alice and bob chat in lockstep while the stream flows.
	rounds := 0
	for ; ; rounds++ {
		select {
		case err := <-streamDone:
			if err != nil {
				t.Fatalf("streaming: %v", err)
			}
			if rounds < 3 {
				t.Fatalf("only %d chat rounds during the stream", rounds)
			}
			goto streamed
		default:
		}
		alice.send("ping " + strconv.Itoa(rounds))
		bob.expect("alice: ping " + strconv.Itoa(rounds))
		bob.send("pong " + strconv.Itoa(rounds))
		alice.expect("bob: pong " + strconv.Itoa(rounds))
	}
streamed:
	// The long line is reported once, the stream user's session is intact.
	m.send("", "done")
	alice.expect("mallory: done")
	bob.expect("mallory: done")
	sample()
	// mallory got the chat too, and one "line too long", all before the
	// reply to a probe she sends now.
	m.send("/whoami")
	tooLong := 0
	for {
		l := m.readLine()
		if strings.HasPrefix(l, "* you are mallory") {
			break
		}
		if l == "! line too long (max 4096 bytes)" {
			tooLong++
		}
	}
	if tooLong != 1 {
		t.Fatalf("mallory got %d line-too-long errors, want 1", tooLong)
	}

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	const bound = 2 << 20
	growth := int64(peak) - int64(before.HeapInuse)
	t.Logf("streamed %d MiB; %d chat round trips meanwhile; heap in use after GC: before %d KiB, "+
		"peak of %d samples during the stream %d KiB (%+d KiB), after %d KiB; total allocated during the test %d KiB",
		total>>20, rounds, before.HeapInuse>>10, samples, peak>>10, growth>>10, after.HeapInuse>>10,
		(after.TotalAlloc-before.TotalAlloc)>>10)
	if growth > bound {
		t.Fatalf("heap grew by %d bytes while streaming %d bytes (bound %d)", growth, total, bound)
	}
}
