// Package logthrottle is a slog.Handler that rate-limits log records per
// message, so that a flood of events (a connection storm logs a line per
// connect, disconnect and rejection) cannot fill a disk, while what was
// left out is still counted and reported.
//
// Per record.Message, at most Limit records pass per Interval; the rest are
// counted, and one summary record at their level,
//
//	level=INFO msg="log lines suppressed" message=connect suppressed=1234 interval=1s
//
// is emitted with the first record of the message after the interval, or
// by a timer at the end of the interval if the flood has stopped, so
// nothing is dropped silently. Records at slog.LevelError and above always
// pass.
package logthrottle

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults for Options.
const (
	DefaultLimit    = 20
	DefaultInterval = time.Second
)

// SummaryMessage is the message of the summary records.
const SummaryMessage = "log lines suppressed"

// Options configures New. The zero value is usable.
type Options struct {
	// Limit is how many records of one message pass per Interval;
	// 0 means DefaultLimit.
	Limit int
	// Interval is the window, starting with the first record of a message
	// after the previous window ended; 0 means DefaultInterval.
	Interval time.Duration
	// Applies selects the records that may be suppressed (others always
	// pass); nil means all below slog.LevelError. It is never consulted
	// for levels of slog.LevelError and above.
	Applies func(level slog.Level, msg string) bool
	// Now and AfterFunc are the clock; tests replace them. AfterFunc
	// returns a function that cancels the call if it has not run.
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

// maxIdleMessages bounds the bookkeeping for messages not seen for a
// while, should a caller put variable text in messages.
const maxIdleMessages = 1024

// Handler is the rate-limiting slog.Handler. It is safe for concurrent
// use; handlers derived with WithAttrs and WithGroup share its counts (a
// logger per connection must not get a budget per connection).
type Handler struct {
	next slog.Handler
	s    *state
}

// state is shared by a Handler and all handlers derived from it.
type state struct {
	opt  Options
	base slog.Handler // where summaries go: without derived attrs or groups

	mu      sync.Mutex
	buckets map[string]*bucket
}

// bucket counts one message in its current window.
type bucket struct {
	start      time.Time
	passed     int
	suppressed int
	level      slog.Level // the highest level among the suppressed
	stopTimer  func() bool
}

// New wraps next.
func New(next slog.Handler, opt Options) *Handler {
	if opt.Limit <= 0 {
		opt.Limit = DefaultLimit
	}
	if opt.Interval <= 0 {
		opt.Interval = DefaultInterval
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.AfterFunc == nil {
		opt.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	return &Handler{next: next, s: &state{opt: opt, base: next, buckets: make(map[string]*bucket)}}
}

// Enabled reports whether the wrapped handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// WithAttrs returns a handler whose records carry attrs, sharing h's
// counts.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs), s: h.s}
}

// WithGroup returns a handler that puts later attributes in group name,
// sharing h's counts.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), s: h.s}
}

// Handle passes r on, or counts it if its message is over the limit.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	s := h.s
	if r.Level >= slog.LevelError || (s.opt.Applies != nil && !s.opt.Applies(r.Level, r.Message)) {
		return h.next.Handle(ctx, r)
	}
	now := s.opt.Now()
	s.mu.Lock()
	b := s.buckets[r.Message]
	if b == nil {
		if len(s.buckets) >= maxIdleMessages {
			s.sweepLocked(now)
		}
		b = &bucket{start: now}
		s.buckets[r.Message] = b
	}
	var sum summary
	if now.Sub(b.start) >= s.opt.Interval {
		sum = s.rollLocked(r.Message, b, now)
	}
	pass := b.passed < s.opt.Limit
	if pass {
		b.passed++
	} else {
		if b.suppressed == 0 || r.Level > b.level {
			b.level = r.Level
		}
		b.suppressed++
		if b.stopTimer == nil {
			// Report at the end of the window even if no record of this
			// message comes after it.
			msg := r.Message
			b.stopTimer = s.opt.AfterFunc(b.start.Add(s.opt.Interval).Sub(now), func() { s.expire(msg, b) })
		}
	}
	s.mu.Unlock()

	var err error
	if sum.n > 0 {
		err = s.emit(ctx, sum)
	}
	if pass {
		if herr := h.next.Handle(ctx, r); herr != nil {
			err = herr
		}
	}
	return err
}

// summary is a count of suppressed records to report.
type summary struct {
	msg   string
	n     int
	level slog.Level
	at    time.Time
}

// rollLocked ends b's window at now and returns what it suppressed; s.mu
// is held.
func (s *state) rollLocked(msg string, b *bucket, now time.Time) summary {
	sum := summary{msg: msg, n: b.suppressed, level: b.level, at: now}
	if b.stopTimer != nil {
		b.stopTimer()
		b.stopTimer = nil
	}
	b.start, b.passed, b.suppressed = now, 0, 0
	return sum
}

// expire is the timer at the end of a window in which b suppressed
// records.
func (s *state) expire(msg string, b *bucket) {
	now := s.opt.Now()
	s.mu.Lock()
	var sum summary
	if s.buckets[msg] == b && b.suppressed > 0 {
		sum = s.rollLocked(msg, b, now)
	}
	s.mu.Unlock()
	if sum.n > 0 {
		_ = s.emit(context.Background(), sum)
	}
}

// sweepLocked forgets messages whose window has ended with nothing
// suppressed; s.mu is held.
func (s *state) sweepLocked(now time.Time) {
	for msg, b := range s.buckets {
		if b.suppressed == 0 && now.Sub(b.start) >= s.opt.Interval {
			delete(s.buckets, msg)
		}
	}
}

func (s *state) emit(ctx context.Context, sum summary) error {
	if !s.base.Enabled(ctx, sum.level) {
		return nil
	}
	r := slog.NewRecord(sum.at, sum.level, SummaryMessage, 0)
	r.AddAttrs(
		slog.String("message", sum.msg),
		slog.Int("suppressed", sum.n),
		// A string, so JSON logs say "1s" as text logs do, not 1e9.
		slog.String("interval", s.opt.Interval.String()),
	)
	return s.base.Handle(ctx, r)
}

// Flush reports every pending count at once, e.g. before the process
// exits, so the last second of a flood is not lost.
func (h *Handler) Flush() {
	s := h.s
	now := s.opt.Now()
	s.mu.Lock()
	var sums []summary
	for msg, b := range s.buckets {
		if b.suppressed > 0 {
			sums = append(sums, s.rollLocked(msg, b, now))
		}
	}
	s.mu.Unlock()
	for _, sum := range sums {
		_ = s.emit(context.Background(), sum)
	}
}
