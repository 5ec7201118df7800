package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

const (
	// bufSize is large enough that a typical batch goes out in one write(2).
	bufSize = 256 << 10
	// maxBatch caps the events taken from the queue at once, so an fsync
	// due under sustained load is not postponed indefinitely.
	maxBatch = 1024
	// rotateRetry spaces out attempts after a failed rotation, which would
	// otherwise be retried for every line.
	rotateRetry = time.Second
	// errorLogEvery rate-limits write error logging: a failing disk at
	// 100k events/s must not also flood the log.
	errorLogEvery = time.Second
)

// writer is owned by the writer goroutine once Open returns.
type writer struct {
	t        *Transcript
	dir      string
	interval time.Duration
	maxSize  int64

	f   *os.File
	cw  fileWriter
	bw  *bufio.Writer
	buf bytes.Buffer // one encoded line
	enc *json.Encoder

	dirty         bool // written since the last fsync
	lastSync      time.Time
	noRotateUntil time.Time
	lastErrLog    time.Time
	errsSinceLog  int

	closeErr error
}

// fileWriter sits under the bufio.Writer to learn what actually reached the
// file: its size, for rotation, and whether it ends mid-line after a short
// write, so the next line starts on a fresh one.
type fileWriter struct {
	f       *os.File
	size    int64
	midLine bool
}

func (fw *fileWriter) Write(p []byte) (int, error) {
	n, err := fw.f.Write(p)
	if n > 0 {
		fw.size += int64(n)
		fw.midLine = p[n-1] != '\n'
	}
	return n, err
}

// openWriter opens the current file, loads the recent events from it and
// the rotated files before it, and prepares the writer.
func openWriter(t *Transcript, opts Options) (*writer, []Event, error) {
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("history: %w", err)
	}
	path := filepath.Join(opts.Dir, CurrentName)
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	// O_RDWR so the same descriptor serves the read-back; O_APPEND so every
	// write lands at the end whatever the read-back did.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("history: %w", err)
	}
	if created {
		if err := syncDir(opts.Dir); err != nil {
			t.log.Warn("fsync of data directory failed", "dir", opts.Dir, "err", err)
		}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("history: %w", err)
	}
	recent, midLine, err := load(opts.Dir, f, st.Size(), opts.Recent, opts.Hygiene, t.log)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	w := &writer{
		t:        t,
		dir:      opts.Dir,
		interval: opts.FsyncInterval,
		maxSize:  opts.MaxSize,
		f:        f,
		cw:       fileWriter{f: f, size: st.Size(), midLine: midLine},
		lastSync: time.Now(),
	}
	w.bw = bufio.NewWriterSize(&w.cw, bufSize)
	w.enc = json.NewEncoder(&w.buf)
	// Message text is shown to people, not embedded in HTML; keep it legible.
	w.enc.SetEscapeHTML(false)
	return w, recent, nil
}

// run is the writer goroutine.
func (t *Transcript) run(h hooks) {
	defer close(t.done)
	w := t.w
	syncTimer := time.NewTimer(time.Hour)
	syncTimer.Stop()
	armed := false
	batch := make([]Event, 0, maxBatch)

	for {
		select {
		case ev := <-t.queue:
			batch = drain(append(batch[:0], ev), t.queue)
			if h.beforeBatch != nil {
				h.beforeBatch()
			}
			w.writeBatch(batch)
			clear(batch) // let the GC have the strings
			if w.interval == 0 {
				w.sync()
			} else if w.dirty && !armed {
				if wait := time.Until(w.lastSync.Add(w.interval)); wait <= 0 {
					w.sync()
				} else {
					syncTimer.Reset(wait)
					armed = true
				}
			}
		case <-syncTimer.C:
			armed = false
			w.sync()
		case <-t.quit:
			syncTimer.Stop()
			// Close holds Record off, so the queue only shrinks now.
			for len(t.queue) > 0 {
				batch = drain(batch[:0], t.queue)
				w.writeBatch(batch)
				clear(batch)
			}
			w.close()
			return
		}
	}
}

// drain appends what is waiting in q, up to maxBatch events, without
// blocking.
func drain(batch []Event, q <-chan Event) []Event {
	for len(batch) < maxBatch {
		select {
		case ev := <-q:
			batch = append(batch, ev)
		default:
			return batch
		}
	}
	return batch
}

// writeBatch writes whole lines only: a line never straddles two write(2)
// calls, so a crash can tear at most the line being written.
func (w *writer) writeBatch(evs []Event) {
	var now time.Time
	for i := range evs {
		ev := &evs[i]
		if ev.Time.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			ev.Time = now
		}
		w.buf.Reset()
		if err := w.enc.Encode(ev); err != nil {
			w.fail("cannot encode transcript event", err)
			continue
		}
		n := int64(w.buf.Len())
		if pending := w.cw.size + int64(w.bw.Buffered()); pending > 0 && pending+n > w.maxSize {
			w.flush()
			w.rotate()
		}
		if w.cw.midLine && w.bw.Buffered() == 0 {
			// Close off the torn fragment so it stays a line of its own.
			_ = w.bw.WriteByte('\n')
		}
		if w.bw.Buffered() > 0 && w.bw.Available() < w.buf.Len() {
			w.flush()
		}
		// When the line is larger than the free buffer bufio writes it
		// straight through, still in one call.
		_, _ = w.bw.Write(w.buf.Bytes())
	}
	w.flush()
}

// flush writes out the buffer; on failure the buffered lines are lost and
// the error logged, since the room has long moved on and cannot retry.
func (w *writer) flush() {
	if w.bw.Buffered() == 0 {
		return
	}
	w.dirty = true
	if err := w.bw.Flush(); err != nil {
		// bufio.Writer keeps its error forever; start over.
		w.bw.Reset(&w.cw)
		w.fail("transcript write failed", err)
	}
}

func (w *writer) sync() {
	if !w.dirty {
		return
	}
	w.lastSync = time.Now()
	if err := w.f.Sync(); err != nil {
		w.fail("transcript fsync failed", err)
		return
	}
	w.dirty = false
	w.t.syncs.Add(1)
}

// rotate renames the current file aside and starts a new one. On failure it
// keeps appending to the file it has: an oversized file beats lost events.
func (w *writer) rotate() {
	now := time.Now()
	if now.Before(w.noRotateUntil) {
		return
	}
	w.noRotateUntil = now.Add(rotateRetry)
	// The rotated file is never written again; make it durable now.
	if err := w.f.Sync(); err != nil {
		w.fail("transcript fsync before rotation failed", err)
	} else {
		w.t.syncs.Add(1)
	}
	cur := filepath.Join(w.dir, CurrentName)
	old, err := rotatedName(w.dir, now)
	if err == nil {
		err = os.Rename(cur, old)
	}
	if err != nil {
		w.fail("transcript rotation failed", err)
		return
	}
	f, err := os.OpenFile(cur, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		w.fail("cannot start new transcript file", err)
		if err := os.Rename(old, cur); err != nil {
			w.fail("cannot restore transcript after failed rotation", err)
		}
		return
	}
	if err := w.f.Close(); err != nil {
		w.fail("closing rotated transcript failed", err)
	}
	w.f = f
	w.cw = fileWriter{f: f}
	w.bw.Reset(&w.cw)
	w.dirty = false
	if err := syncDir(w.dir); err != nil {
		w.fail("fsync of data directory failed", err)
	}
	w.t.log.Info("transcript rotated", "file", filepath.Base(old))
	w.noRotateUntil = time.Time{}
}

func (w *writer) close() {
	w.flush()
	var errs []error
	if w.dirty {
		if err := w.f.Sync(); err != nil {
			errs = append(errs, err)
		} else {
			w.t.syncs.Add(1)
		}
	}
	if err := w.f.Close(); err != nil {
		errs = append(errs, err)
	}
	w.flushErrLog()
	if err := errors.Join(errs...); err != nil {
		w.closeErr = fmt.Errorf("history: %w", err)
	}
}

// fail counts and logs an I/O error, at most one log line per errorLogEvery.
func (w *writer) fail(msg string, err error) {
	w.t.writeErrors.Add(1)
	w.errsSinceLog++
	if now := time.Now(); now.Sub(w.lastErrLog) >= errorLogEvery {
		w.t.log.Error(msg, "err", err, "errors_since_last_log", w.errsSinceLog, "errors_total", w.t.writeErrors.Load())
		w.lastErrLog = now
		w.errsSinceLog = 0
	}
}

func (w *writer) flushErrLog() {
	if w.errsSinceLog > 0 {
		w.t.log.Error("transcript errors not yet reported", "errors", w.errsSinceLog, "errors_total", w.t.writeErrors.Load())
		w.errsSinceLog = 0
	}
}

// rotatedName picks an unused name for a file rotated at t.
func rotatedName(dir string, t time.Time) (string, error) {
	stamp := t.UTC().Format(stampLayout)
	for i := 0; i < 10000; i++ {
		name := "transcript-" + stamp + ".jsonl"
		if i > 0 {
			name = fmt.Sprintf("transcript-%s-%d.jsonl", stamp, i)
		}
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return p, nil
		} else if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("no free rotation name for %s in %s", stamp, dir)
}

// syncDir makes a create or rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
