// Package history keeps the durable transcript of the chat room's public
// events (messages, /me, joins, leaves, renames) as JSON lines on disk, and
// reads the most recent messages back after a restart.
//
// # Contract
//
// Only public events may be given to Record. Private messages (/msg, c:)
// must never reach this package: the transcript is plain text on disk,
// readable by whoever operates the server, and it is kept forever.
//
// Record is called from the room's hot path, so it never blocks and never
// does I/O: events go through a bounded queue to a single writer goroutine.
// When the queue is full the event is dropped and counted (Dropped), because
// a slow disk must not stall the chat.
//
// # Files
//
// DIR/transcript.jsonl is the file being appended to. When it would grow past
// Options.MaxSize it is renamed to DIR/transcript-YYYYMMDDTHHMMSS.jsonl (UTC
// time of the rotation, "-N" appended when that name is taken) and a new
// transcript.jsonl is started. Rotated files are never deleted by netchat:
// operators prune them (for example with a cron job or logrotate's maxage),
// since only they know how much history they are obliged or allowed to keep.
//
// One data directory belongs to one process; two servers appending to the
// same transcript would interleave batches.
//
// # Durability
//
// Every batch of events is written with one write(2) of whole lines as soon
// as the writer picks it up, so a process crash (kill -9) loses only what was
// still queued: the page cache outlives the process. fsync, which is what
// protects against power loss and kernel crashes, runs at most once per
// Options.FsyncInterval, or after every batch when it is 0. A write cut short
// leaves a torn last line; it is detected, reported and skipped at the next
// Open, and the next append starts on a new line so the fragment never fuses
// with a good record.
package history

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults applied by Open to zero-valued options (FsyncInterval excepted,
// see Options).
const (
	DefaultFsyncInterval = time.Second
	DefaultMaxSize       = 64 << 20
	DefaultQueueLen      = 8192
	DefaultRecent        = 20
)

// CurrentName is the file the transcript is appended to, inside Options.Dir.
const CurrentName = "transcript.jsonl"

// Event kinds.
const (
	KindMsg   = "msg"
	KindMe    = "me"
	KindJoin  = "join"
	KindLeave = "leave"
	KindNick  = "nick"
)

// Event is one public room event, stored as one JSON line.
type Event struct {
	Time time.Time `json:"time"` // RFC3339Nano; the writer stamps a zero Time with its own clock
	Kind string    `json:"kind"` // KindMsg, KindMe, KindJoin, KindLeave or KindNick
	Nick string    `json:"nick"`
	Text string    `json:"text"` // message text; for "nick" the new nickname; for "leave" the reason, if any
	Node string    `json:"node"`
}

// Options configures Open.
type Options struct {
	// Dir holds the transcript files; it is created if needed.
	Dir string
	// FsyncInterval bounds how often the file is fsynced. Unlike the other
	// options its zero value is meaningful: 0 ("always") fsyncs after every
	// write, so each event is synced before the writer takes the next batch.
	// Syncing a batch of events together gives the same guarantee as one
	// fsync per event, because Record is asynchronous either way. Callers
	// that want the default pass DefaultFsyncInterval.
	FsyncInterval time.Duration
	// MaxSize rotates the current file when the next line would make it
	// larger; 0 means DefaultMaxSize. A single line larger than MaxSize is
	// still written, alone in its file.
	MaxSize int64
	// QueueLen bounds the events waiting for the writer; 0 means
	// DefaultQueueLen.
	QueueLen int
	// Recent is how many "msg"/"me" events Open loads for Recent; 0 means
	// DefaultRecent, a negative value loads none.
	Recent int
	// Hygiene, if set, holds the events Open loads for Recent to the
	// rules of live input; the ones it refuses do not count toward
	// Recent, so a poisoned file does not shorten the history.
	Hygiene *Hygiene
	// Logger receives warnings (torn lines, drops, I/O errors); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Transcript appends events to the transcript files. Its methods are safe
// for concurrent use.
type Transcript struct {
	log    *slog.Logger
	queue  chan Event
	recent []Event // oldest first, as loaded at Open; never modified after

	// mu makes Close a barrier for Record: once Close holds it, no Record is
	// between its closed check and its send, so the writer's final drain
	// sees every accepted event.
	mu     sync.RWMutex
	closed bool

	dropped     atomic.Uint64
	unreported  atomic.Uint64 // drops not yet logged
	dropSignal  chan struct{}
	writeErrors atomic.Uint64
	syncs       atomic.Uint64 // observed by tests

	w         *writer
	quit      chan struct{}
	done      chan struct{} // writer goroutine finished
	reportEnd chan struct{} // drop reporter finished

	closeOnce sync.Once
	closeErr  error
}

// hooks lets tests stall or observe the writer goroutine.
type hooks struct {
	beforeBatch func() // called by the writer before it writes each batch
}

// Open creates opts.Dir if needed, reads back the newest transcript files as
// far as needed for Recent, and starts the writer goroutine.
func Open(opts Options) (*Transcript, error) {
	return open(opts, hooks{})
}

func open(opts Options, h hooks) (*Transcript, error) {
	if opts.Dir == "" {
		return nil, errors.New("history: no data directory")
	}
	if opts.FsyncInterval < 0 {
		return nil, fmt.Errorf("history: negative fsync interval %v", opts.FsyncInterval)
	}
	if opts.MaxSize < 0 {
		return nil, fmt.Errorf("history: negative max size %d", opts.MaxSize)
	}
	if opts.QueueLen < 0 {
		return nil, fmt.Errorf("history: negative queue length %d", opts.QueueLen)
	}
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.QueueLen == 0 {
		opts.QueueLen = DefaultQueueLen
	}
	switch {
	case opts.Recent == 0:
		opts.Recent = DefaultRecent
	case opts.Recent < 0:
		opts.Recent = 0
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "history")

	t := &Transcript{
		log:        log,
		queue:      make(chan Event, opts.QueueLen),
		dropSignal: make(chan struct{}, 1),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		reportEnd:  make(chan struct{}),
	}
	w, recent, err := openWriter(t, opts)
	if err != nil {
		return nil, err
	}
	t.w = w
	t.recent = recent
	go t.run(h)
	go t.reportDrops()
	return t, nil
}

// Record enqueues ev for writing. It never blocks: when the queue is full,
// or the transcript is closed, ev is dropped and counted by Dropped.
func (t *Transcript) Record(ev Event) {
	t.mu.RLock()
	if !t.closed {
		select {
		case t.queue <- ev:
			t.mu.RUnlock()
			return
		default:
		}
	}
	t.mu.RUnlock()
	t.dropped.Add(1)
	t.unreported.Add(1)
	// Logging here could block on a stuck stderr, so hand the log line to
	// the reporter goroutine.
	select {
	case t.dropSignal <- struct{}{}:
	default:
	}
}

// Recent returns up to n of the newest "msg" and "me" events, oldest first,
// as they were on disk at Open. It returns at most Options.Recent events.
func (t *Transcript) Recent(n int) []Event {
	if n <= 0 {
		return nil
	}
	n = min(n, len(t.recent))
	return append([]Event(nil), t.recent[len(t.recent)-n:]...)
}

// Dropped reports how many events Record discarded because the queue was
// full or the transcript was closed.
func (t *Transcript) Dropped() uint64 { return t.dropped.Load() }

// WriteErrors reports how many write, fsync or rotation attempts failed. The
// events of a failed write are lost; the writer carries on with the next
// batch.
func (t *Transcript) WriteErrors() uint64 { return t.writeErrors.Load() }

// Close writes everything queued, fsyncs and closes the file. Later calls
// return the first call's result.
func (t *Transcript) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		close(t.quit)
		<-t.done
		<-t.reportEnd
		t.closeErr = t.w.closeErr
	})
	return t.closeErr
}

// reportDrops logs queue-full drops, at most one line per second.
func (t *Transcript) reportDrops() {
	defer close(t.reportEnd)
	pause := time.NewTimer(time.Second)
	pause.Stop()
	for {
		select {
		case <-t.dropSignal:
		case <-t.quit:
			t.logDrops()
			return
		}
		t.logDrops()
		pause.Reset(time.Second)
		select {
		case <-pause.C:
		case <-t.quit:
			t.logDrops()
			return
		}
	}
}

func (t *Transcript) logDrops() {
	if n := t.unreported.Swap(0); n > 0 {
		t.log.Warn("transcript queue full, events dropped", "dropped", n, "dropped_total", t.dropped.Load())
	}
}

// ParseFsyncInterval parses the --fsync-interval flag: a positive Go
// duration ("1s", "200ms") or "always", which returns 0.
func ParseFsyncInterval(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "always") {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid fsync interval %q: want a duration such as 1s or 200ms, or \"always\"", s)
	}
	// "0" would read as "never" to some and "always" to others; make the
	// operator say which.
	if d <= 0 {
		return 0, fmt.Errorf("invalid fsync interval %q: must be positive (use \"always\" to fsync every event)", s)
	}
	return d, nil
}
