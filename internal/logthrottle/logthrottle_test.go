package logthrottle

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"netchat/internal/syncbuf"
)

// fakeClock is a clock the test moves, with timers it fires.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 6, 7, 15, 4, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// advance moves the clock and runs the timers that came due, as the
// runtime would.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t.f)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

// setup returns a logger through a Handler with a fake clock, and a
// function that returns the JSON records written so far (and forgets them).
func setup(t *testing.T, opt Options) (*slog.Logger, *Handler, *fakeClock, func() []map[string]any) {
	t.Helper()
	clock := newFakeClock()
	opt.Now, opt.AfterFunc = clock.Now, clock.AfterFunc
	var buf syncbuf.Buffer
	h := New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}), opt)
	seen := 0
	records := func() []map[string]any {
		t.Helper()
		var out []map[string]any
		sc := bufio.NewScanner(strings.NewReader(buf.String()))
		i := 0
		for sc.Scan() {
			i++
			if i <= seen {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("log line %q: %v", sc.Text(), err)
			}
			out = append(out, m)
		}
		seen = i
		return out
	}
	return slog.New(h), h, clock, records
}

func count(recs []map[string]any, msg string) int {
	n := 0
	for _, r := range recs {
		if r["msg"] == msg {
			n++
		}
	}
	return n
}

func summaries(recs []map[string]any) []map[string]any {
	var out []map[string]any
	for _, r := range recs {
		if r["msg"] == SummaryMessage {
			out = append(out, r)
		}
	}
	return out
}

func checkSummary(t *testing.T, r map[string]any, level, msg string, n int, interval string) {
	t.Helper()
	if r["level"] != level || r["message"] != msg || r["suppressed"] != float64(n) || r["interval"] != interval {
		t.Errorf("summary %v, want level=%s message=%s suppressed=%d interval=%s", r, level, msg, n, interval)
	}
}

// TestLimitThenSummaryWithNextRecord: over the limit records are counted;
// the first record after the interval brings the summary, then passes.
func TestLimitThenSummaryWithNextRecord(t *testing.T) {
	t.Parallel()
	log, _, clock, records := setup(t, Options{Limit: 3, Interval: time.Second})
	for i := range 10 {
		log.Info("connect", "i", i)
	}
	recs := records()
	if count(recs, "connect") != 3 || len(summaries(recs)) != 0 {
		t.Fatalf("first window: %v", recs)
	}
	clock.advance(999 * time.Millisecond)
	log.Info("connect", "i", 10) // still the first window
	if recs := records(); len(recs) != 0 {
		t.Fatalf("still over the limit: %v", recs)
	}
	clock.advance(time.Millisecond)
	log.Info("connect", "i", 11)
	recs = records()
	if len(recs) != 2 {
		t.Fatalf("after the interval: %v", recs)
	}
	checkSummary(t, recs[0], "INFO", "connect", 8, "1s")
	if recs[1]["msg"] != "connect" || recs[1]["i"] != float64(11) {
		t.Errorf("the record after the summary: %v", recs[1])
	}
}

// TestSummaryByTimer: a flood that stops is still summarised, at the end
// of its window, once.
func TestSummaryByTimer(t *testing.T) {
	t.Parallel()
	log, _, clock, records := setup(t, Options{Limit: 2, Interval: 500 * time.Millisecond})
	for range 7 {
		log.Warn("rejected", "reason", "server_full")
	}
	if recs := records(); count(recs, "rejected") != 2 {
		t.Fatalf("passed: %v", recs)
	}
	if clock.pending() != 1 {
		t.Fatalf("%d timers pending, want 1", clock.pending())
	}
	clock.advance(499 * time.Millisecond)
	if recs := records(); len(recs) != 0 {
		t.Fatalf("summary before the window ended: %v", recs)
	}
	clock.advance(time.Millisecond)
	recs := records()
	if len(recs) != 1 {
		t.Fatalf("at the end of the window: %v", recs)
	}
	checkSummary(t, recs[0], "WARN", "rejected", 5, "500ms")
	clock.advance(10 * time.Second)
	if recs := records(); len(recs) != 0 || clock.pending() != 0 {
		t.Errorf("after the summary: %v, %d timers", recs, clock.pending())
	}
	// A new window starts with a full budget.
	log.Warn("rejected")
	log.Warn("rejected")
	if recs := records(); count(recs, "rejected") != 2 {
		t.Errorf("new window: %v", recs)
	}
}

// TestRecordAfterIntervalCancelsTimer: when the next record brings the
// summary, the timer does not report it a second time.
func TestRecordAfterIntervalCancelsTimer(t *testing.T) {
	t.Parallel()
	log, _, clock, records := setup(t, Options{Limit: 1, Interval: time.Second})
	log.Info("disconnect")
	log.Info("disconnect")
	clock.mu.Lock()
	clock.now = clock.now.Add(2 * time.Second) // the timer has not run yet
	clock.mu.Unlock()
	log.Info("disconnect")
	clock.advance(0)
	recs := records()
	if len(summaries(recs)) != 1 || count(recs, "disconnect") != 2 {
		t.Errorf("records %v, want one summary and two passed", recs)
	}
}

// TestErrorsNeverSuppressed: ERROR and above pass however many.
func TestErrorsNeverSuppressed(t *testing.T) {
	t.Parallel()
	log, _, clock, records := setup(t, Options{Limit: 1, Interval: time.Second})
	for range 50 {
		log.Error("accept failed")
	}
	log.Log(t.Context(), slog.LevelError+4, "accept failed")
	clock.advance(2 * time.Second)
	recs := records()
	if count(recs, "accept failed") != 51 || len(summaries(recs)) != 0 {
		t.Errorf("%d passed, %d summaries; want 51 and 0", count(recs, "accept failed"), len(summaries(recs)))
	}
}

// TestPerMessageBudgets: each message has its own budget and its own
// summary, at the highest level suppressed.
func TestPerMessageBudgets(t *testing.T) {
	t.Parallel()
	log, _, clock, records := setup(t, Options{Limit: 2, Interval: time.Second})
	for range 5 {
		log.Info("connect")
		log.Debug("line")
	}
	log.Warn("connect")
	recs := records()
	if count(recs, "connect") != 2 || count(recs, "line") != 2 {
		t.Fatalf("passed: %v", recs)
	}
	clock.advance(time.Second)
	sums := summaries(records())
	if len(sums) != 2 {
		t.Fatalf("summaries %v", sums)
	}
	for _, s := range sums {
		switch s["message"] {
		case "connect":
			checkSummary(t, s, "WARN", "connect", 4, "1s")
		case "line":
			checkSummary(t, s, "DEBUG", "line", 3, "1s")
		default:
			t.Errorf("summary %v", s)
		}
	}
}

// TestApplies: records the filter leaves out always pass.
func TestApplies(t *testing.T) {
	t.Parallel()
	log, _, _, records := setup(t, Options{Limit: 1, Applies: func(_ slog.Level, msg string) bool { return msg == "connect" }})
	for range 5 {
		log.Info("connect")
		log.Info("chat server listening")
	}
	recs := records()
	if count(recs, "connect") != 1 || count(recs, "chat server listening") != 5 {
		t.Errorf("records %v", recs)
	}
}

// TestDerivedHandlersShareCounts: a logger per connection (With) draws
// on the message's one budget; passed records keep their attributes and
// groups, and the summary has none of them.
func TestDerivedHandlersShareCounts(t *testing.T) {
	t.Parallel()
	log, _, clock, records := setup(t, Options{Limit: 2, Interval: time.Second})
	for i := range 6 {
		log.With("conn", i).WithGroup("g").Info("connect", "k", "v")
	}
	recs := records()
	if count(recs, "connect") != 2 {
		t.Fatalf("passed: %v", recs)
	}
	g, _ := recs[1]["g"].(map[string]any)
	if recs[1]["conn"] != float64(1) || g["k"] != "v" {
		t.Errorf("attributes of a passed record: %v", recs[1])
	}
	clock.advance(time.Second)
	sums := summaries(records())
	if len(sums) != 1 {
		t.Fatalf("summaries: %v", sums)
	}
	checkSummary(t, sums[0], "INFO", "connect", 4, "1s")
	if _, ok := sums[0]["conn"]; ok {
		t.Errorf("the summary carries a connection's attributes: %v", sums[0])
	}
	if _, ok := sums[0]["g"]; ok {
		t.Errorf("the summary is in a group: %v", sums[0])
	}
}

// TestConcurrentCountsAddUp: from many goroutines, what passed plus what
// the summaries count is exactly what was logged.
func TestConcurrentCountsAddUp(t *testing.T) {
	t.Parallel()
	log, h, clock, records := setup(t, Options{Limit: 20, Interval: time.Second})
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.With("worker", w)
			for i := range each {
				l.Info("connect")
				if i%100 == 0 {
					clock.advance(300 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	h.Flush()
	recs := records()
	total := count(recs, "connect")
	for _, s := range summaries(recs) {
		total += int(s["suppressed"].(float64))
	}
	if total != workers*each {
		t.Errorf("passed + suppressed = %d, want %d", total, workers*each)
	}
	if n := count(recs, "connect"); n >= workers*each/2 {
		t.Errorf("%d of %d passed: not limited", n, workers*each)
	}
}

// TestFlush reports pending counts at once.
func TestFlush(t *testing.T) {
	t.Parallel()
	log, h, _, records := setup(t, Options{Limit: 1})
	log.Info("connect")
	log.Info("connect")
	log.Info("connect")
	h.Flush()
	recs := records()
	if sums := summaries(recs); len(sums) != 1 {
		t.Fatalf("records %v", recs)
	} else {
		checkSummary(t, sums[0], "INFO", "connect", 2, "1s")
	}
	h.Flush()
	if recs := records(); len(recs) != 0 {
		t.Errorf("second Flush: %v", recs)
	}
}

// TestManyMessagesBounded: variable messages do not grow the bookkeeping
// without bound once their windows are over.
func TestManyMessagesBounded(t *testing.T) {
	t.Parallel()
	log, h, clock, _ := setup(t, Options{Limit: 1, Interval: time.Second})
	for i := range 5 * maxIdleMessages {
		log.Info("message " + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String())
		if i%100 == 0 {
			clock.advance(2 * time.Second)
		}
	}
	h.s.mu.Lock()
	n := len(h.s.buckets)
	h.s.mu.Unlock()
	if n > maxIdleMessages+100 {
		t.Errorf("%d messages tracked", n)
	}
}

func BenchmarkHandle(b *testing.B) {
	h := New(slog.DiscardHandler, Options{})
	log := slog.New(h)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			log.Info("connect", "remote", "127.0.0.1:1234")
		}
	})
}
