package server

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"netchat/internal/sysio"
)

// The output path.
//
// Every line for a client is appended to its output queue; nothing ever
// waits for the client. Who writes the queue to the socket depends on the
// connection:
//
//   - Plain TCP (also WebSocket over plain TCP): a flusher. Flushers (one
//     per two CPUs) sweep the connections that have output, writing each one's
//     whole queue with one non-blocking vector write. A line queued while
//     a sweep runs waits for the next sweep, so the time a sweep takes is
//     the batching window: in a busy room a write carries many lines, and
//     the number of writes grows with users × sweeps, not users × messages.
//     Under heavy load a flusher also paces its sweeps (see flusher.run),
//     so that writes carry several lines exactly when the machine is busy,
//     while an idle server writes a line the moment it exists.
//   - A socket whose buffer is full (the client reads slower than it is
//     sent to) leaves the flusher: a goroutine of its own waits until the
//     socket takes bytes again and writes until the queue is empty. If the
//     socket takes nothing for Config.WriteTimeout, the client is a slow
//     consumer.
//   - TLS: a writer goroutine per burst, writing through crypto/tls.
//
// A queue past Config.SendQueue bytes cuts the client off as a slow
// consumer. Above three quarters of it the queue hands producers a backlog
// channel, closed when it is below again, which the room passes to the
// session whose line was being delivered, so that session can briefly
// stop reading its sender (producer pacing; see session.stall).

// Output states.
const (
	outIdle     uint8 = iota // nothing queued
	outDirty                 // queued, waiting in a flusher's list
	outFlushing              // a flusher is writing it right now
	outWriting               // a writer goroutine owns it
)

// maxWrite bounds one write, so that one client with a long queue cannot
// hold a flusher for long.
const maxWrite = 256 << 10

// maxIov bounds the vectors of one write.
const maxIov = sysio.MaxIov

// output is the sending half of a session.
type output struct {
	srv *Server
	s   *session
	rc  syscall.RawConn // non-blocking raw writes by flushers; nil: w.Write
	w   net.Conn
	fl  *flusher
	// ws frames each line as a WebSocket text frame (a header before
	// it) instead of ending it with CR LF.
	ws bool

	mu        sync.Mutex
	q         queue
	state     uint8
	dead      bool // closed: output is dropped
	last      bool // the final line is queued; later output is dropped
	allowance int  // bytes above SendQueue allowed while the join replay is written
	backlog   chan struct{}
	drained   chan struct{}
	lines     int       // lines queued and not yet counted as delivered
	oldest    time.Time // when the oldest unwritten line was queued (metrics only)
	why       string    // first reason the connection ended, for the log
}

var crlf = []byte("\r\n")

// deliver queues one line; final makes it the last line the client gets,
// in the same critical section, so nothing can slip in after it. It
// returns the backlog channel while the queue is above its high-water mark.
func (o *output) deliver(line []byte, final bool) <-chan struct{} {
	var hdr [10]byte
	var prefix, suffix []byte
	if o.ws {
		prefix = wsTextHeader(hdr[:0], len(line))
	} else {
		suffix = crlf
	}
	n := len(prefix) + len(line) + len(suffix)
	o.mu.Lock()
	if o.dead || o.last {
		o.mu.Unlock()
		return nil
	}
	limit := o.srv.cfg.SendQueue + o.allowance
	if o.q.n+n > limit {
		queued := o.q.n
		o.mu.Unlock()
		o.slowConsumer("queue full", queued)
		return nil
	}
	o.q.appendLine(prefix, line, suffix)
	o.lines++
	if final {
		o.last = true
	}
	if o.srv.m != nil && o.oldest.IsZero() {
		o.oldest = time.Now()
	}
	if o.srv.stallMax > 0 && o.backlog == nil && o.q.n > limit/4*3 {
		o.backlog = make(chan struct{})
	}
	backlog := o.backlog
	o.kick()
	o.mu.Unlock()
	return backlog
}

// writeRaw queues bytes that are already framed (a WebSocket library's
// control frames). They are not lines and do not count as deliveries.
func (o *output) writeRaw(b []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dead {
		return false
	}
	o.q.write(b)
	o.kick()
	return true
}

// kick makes sure somebody writes the queue; o.mu is held.
func (o *output) kick() {
	if o.state != outIdle {
		return
	}
	if o.rc != nil {
		o.state = outDirty
		o.fl.add(o)
		return
	}
	o.state = outWriting
	go o.writeLoop()
}

// wrote accounts for n bytes written; o.mu is held.
func (o *output) wrote(n int) {
	if n <= 0 {
		return
	}
	o.q.consume(n)
	if o.allowance > 0 {
		o.allowance = max(o.allowance-n, 0)
	}
	if o.q.n == 0 {
		o.srv.m.wrote(o.lines, o.oldest)
		o.lines, o.oldest = 0, time.Time{}
	}
	o.srv.m.wroteBytes(n)
	if o.backlog != nil && o.q.n <= (o.srv.cfg.SendQueue+o.allowance)/4*3 {
		close(o.backlog)
		o.backlog = nil
	}
}

// settle ends a writing turn: the queue is empty or the client is gone;
// o.mu is held.
func (o *output) settle() {
	o.state = outIdle
	if o.dead {
		o.q.reset()
	}
	if o.drained != nil && (o.dead || o.q.n == 0) {
		close(o.drained)
		o.drained = nil
	}
}

// flush is a flusher's turn at this connection: one non-blocking write of
// everything queued.
func (o *output) flush(iov [][]byte) [][]byte {
	o.mu.Lock()
	if o.dead || o.q.n == 0 {
		o.settle()
		o.mu.Unlock()
		return iov
	}
	o.state = outFlushing
	iov, total := o.q.pending(iov[:0], maxWrite, maxIov)
	o.mu.Unlock()

	var n int
	var werr error
	err := o.rc.Write(func(fd uintptr) bool {
		n, werr = sysio.Writev(fd, iov)
		return true // never wait: a full socket goes to a writer of its own
	})
	clear(iov)
	if err == nil {
		err = werr
	}

	o.mu.Lock()
	o.wrote(n)
	switch {
	case o.dead:
		o.settle()
	case err != nil && err != syscall.EAGAIN:
		// No write in flight any more: kill may free the queue and wake
		// whoever waits for it to drain.
		o.state = outIdle
		o.mu.Unlock()
		o.kill("write: " + errText(err))
		return iov
	case err == syscall.EAGAIN || n < total:
		// The socket is full: wait for it on a goroutine of its own.
		o.state = outWriting
		go o.writeLoop()
	case o.q.n > 0:
		// Queued meanwhile, or more than one write takes: next sweep.
		o.state = outDirty
		o.fl.add(o)
	default:
		o.settle()
	}
	o.mu.Unlock()
	return iov
}

// writeLoop writes until the queue is empty, waiting for the socket as
// long as it makes progress; it exits when the queue is empty. It serves
// TLS connections, whose writes go through crypto/tls, and plain ones
// whose socket buffer is full.
func (o *output) writeLoop() {
	iovp := iovPool.Get().(*[][]byte)
	defer iovPool.Put(iovp)
	timeout := o.srv.cfg.WriteTimeout
	for {
		o.mu.Lock()
		if o.dead || o.q.n == 0 {
			o.settle()
			o.mu.Unlock()
			return
		}
		iov, _ := o.q.pending((*iovp)[:0], maxWrite, maxIov)
		*iovp = iov
		o.mu.Unlock()

		if timeout > 0 {
			_ = o.w.SetWriteDeadline(time.Now().Add(timeout))
		}
		var n int
		var err error
		if o.rc != nil {
			n, err = o.writeRawWait(iov)
		} else {
			n, err = o.writeConn(iov)
		}
		clear(iov)

		o.mu.Lock()
		o.wrote(n)
		o.mu.Unlock()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && n == 0 {
				o.mu.Lock()
				queued := o.q.n
				o.mu.Unlock()
				o.slowConsumer("write timeout", queued)
			} else if !errors.Is(err, os.ErrDeadlineExceeded) {
				o.kill("write: " + errText(err))
			}
			// A deadline after some progress: the client is reading,
			// slowly; go on with a fresh deadline.
			if o.isDead() {
				o.mu.Lock()
				o.settle()
				o.mu.Unlock()
				return
			}
		}
	}
}

// writeRawWait writes iov, waiting for the socket to take bytes; it
// returns after the first write that makes progress.
func (o *output) writeRawWait(iov [][]byte) (int, error) {
	var n int
	var werr error
	err := o.rc.Write(func(fd uintptr) bool {
		n, werr = sysio.Writev(fd, iov)
		return werr != syscall.EAGAIN
	})
	if n < 0 {
		n = 0
	}
	if err != nil {
		return n, err
	}
	return n, werr
}

// writeConn writes the start of iov through the connection (TLS, or where
// raw writes are not available), gathered into one Write of up to a TLS
// record's payload: a TLS connection makes a record of each Write, and a
// record per queue chunk would cost a header, a seal and a system call
// each. The caller loops until everything is written.
func (o *output) writeConn(iov [][]byte) (int, error) {
	if len(iov) == 1 || len(iov[0]) >= gatherMax {
		return o.w.Write(iov[0])
	}
	bp := writeBufs.Get().(*[]byte)
	b := (*bp)[:0]
	for _, c := range iov {
		b = append(b, c[:min(len(c), gatherMax-len(b))]...)
		if len(b) == gatherMax {
			break
		}
	}
	n, err := o.w.Write(b)
	*bp = b[:0]
	writeBufs.Put(bp)
	return n, err
}

// gatherMax is the payload of a full TLS record.
const gatherMax = 16 << 10

// writeBufs are the buffers writeConn gathers a write in.
var writeBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, gatherMax)
	return &b
}}

func (o *output) isDead() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dead
}

// slowConsumer cuts the client off because its queue overflowed or its
// socket took nothing for the write timeout.
func (o *output) slowConsumer(cause string, queued int) {
	o.mu.Lock()
	if o.dead {
		o.mu.Unlock()
		return
	}
	o.markDead("slow consumer")
	o.mu.Unlock()
	o.srv.m.slowConsumer()
	o.srv.log.Warn("slow consumer disconnected", "remote", o.s.remote, "cause", cause, "queued_bytes", queued)
	// Reset rather than close: a normal close would leave the kernel
	// holding up to its whole send buffer (megabytes on loopback) for a
	// peer that is not reading, and the peer would not learn it was cut
	// off until it had read all of it.
	o.s.t.closeHard(true)
	o.s.endAsync("slow consumer")
}

// kill closes the connection at once, dropping queued output, and ends
// the session. It may be called from any goroutine, including one that is
// delivering to this connection while holding another session's input.
func (o *output) kill(why string) {
	if o.closeNow(why) {
		o.s.endAsync(why)
	}
}

// closeNow marks the output dead and closes the connection; it reports
// whether this call did it.
func (o *output) closeNow(why string) bool {
	o.mu.Lock()
	if o.dead {
		o.mu.Unlock()
		return false
	}
	o.markDead(why)
	o.mu.Unlock()
	o.s.t.closeHard(false)
	return true
}

// markDead drops the output from here on; o.mu is held.
func (o *output) markDead(why string) {
	o.dead = true
	if o.why == "" {
		o.why = why
	}
	if o.backlog != nil {
		close(o.backlog) // nobody waits for a client that is gone
		o.backlog = nil
	}
	if o.state == outIdle || o.state == outDirty {
		// No write is in flight: free the queue now. (A flusher still
		// holding it in its list finds it dead and skips it.)
		o.q.reset()
		if o.drained != nil {
			close(o.drained)
			o.drained = nil
		}
	}
}

// waitDrained waits until everything queued has been written, the
// connection died, or d passed; it reports whether the queue drained.
func (o *output) waitDrained(d time.Duration) bool {
	o.mu.Lock()
	if o.dead {
		o.mu.Unlock()
		return false
	}
	if o.q.n == 0 && o.state == outIdle {
		o.mu.Unlock()
		return true
	}
	if o.drained == nil {
		o.drained = make(chan struct{})
	}
	ch := o.drained
	o.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.dead
}

// wsTextHeader appends the header of an unmasked, final WebSocket text
// frame of n payload bytes (RFC 6455 5.2): what a server sends.
func wsTextHeader(b []byte, n int) []byte {
	b = append(b, 0x81)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n < 1<<16:
		return append(b, 126, byte(n>>8), byte(n))
	}
	return append(b, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// flusher writes the output of many connections, one sweep after another.
type flusher struct {
	srv     *Server
	mu      sync.Mutex
	dirty   []*output
	since   time.Time // when dirty last became non-empty
	waiting bool      // run is waiting for work and must be woken
	wake    chan struct{}
}

func newFlusher(s *Server) *flusher {
	return &flusher{srv: s, wake: make(chan struct{}, 1)}
}

// add puts o on the list for the next sweep; o.mu is held.
func (f *flusher) add(o *output) {
	f.mu.Lock()
	if len(f.dirty) == 0 {
		f.since = time.Now()
	}
	f.dirty = append(f.dirty, o)
	wake := f.waiting
	f.waiting = false
	f.mu.Unlock()
	if wake {
		f.wake <- struct{}{}
	}
}

// minDelay is the shortest flush delay worth a sleep.
const minDelay = 200 * time.Microsecond

// busyPeriod is the least time over which a flusher measures how busy it
// is. Long enough that a chance cluster of two or three messages in a
// quiet room does not look busy (at 100 ms, a 2,000-user room with 10
// messages a second was delayed often enough to raise its p99 from 40 to
// 66 ms; docs/BENCHMARKS.md), short enough to follow a room that gets busy.
const busyPeriod = 500 * time.Millisecond

// run sweeps until the server is done.
//
// Adaptive delay. A sweep's duration measures the load: it grows with the
// number of connections written and with how busy the machine is. After a
// sweep that wrote at least batchFrom connections (clusterBatchFrom on a
// cluster node) but took less than flushWindow, while the flusher is busy
// (it spent at least half of the last half second or so sweeping, not
// counting its own delays: a room of a few thousand busy users), the next
// sweep lets lines collect first: it starts when the oldest line waiting
// for it is flushDelayFactor sweeps old, but no later than flushWindow
// after that line was queued. So each
// write carries several lines and the write system calls (most of the
// server's CPU: on loopback each also wakes the reader) fall to a
// fraction, while
//   - an idle or small room (a sweep writes fewer than batchFrom
//     connections), or a big one where messages are rarer than sweeps,
//     is never delayed: a line is written the moment it is queued;
//   - a room so big that a sweep takes longer than the window is never
//     delayed either: its sweeps batch enough by themselves.
//
// The delay counts from the first line waiting, not from the previous
// sweep: when messages come in gaps, nobody waits for a sweep that has
// nothing to write. See docs/BENCHMARKS.md for how the numbers were chosen.
func (f *flusher) run() {
	var work []*output
	iov := make([][]byte, 0, maxIov)
	var last time.Duration // how long the last sweep took
	var lastN int          // how many connections it wrote
	// busy is the share of the flusher's time spent sweeping, its own
	// delays left out, over the last period of at least busyPeriod.
	var busy float64
	var swept, spent time.Duration // sweeping and elapsed time in the current period
	var prev time.Time             // when the previous sweep began
	var slept time.Duration        // the delay before this sweep
	factor, window, batchAt := f.srv.flushFactor, f.srv.flushWindow, f.srv.batchFrom
	for {
		f.mu.Lock()
		for len(f.dirty) == 0 {
			f.waiting = true
			f.mu.Unlock()
			select {
			case <-f.wake:
			case <-f.srv.ioDone:
				return
			}
			f.mu.Lock()
		}
		since := f.since
		f.mu.Unlock()
		slept = 0
		if busy >= 0.5 && lastN >= batchAt && last < window {
			d := min(time.Duration(factor*float64(last)), window-last)
			if wait := time.Until(since.Add(d)); wait >= minDelay {
				time.Sleep(wait)
				slept = wait
			}
		}
		f.mu.Lock()
		work, f.dirty = f.dirty, work[:0]
		f.mu.Unlock()

		start := time.Now()
		for _, o := range work {
			iov = o.flush(iov)
		}
		last, lastN = time.Since(start), len(work)
		if !prev.IsZero() {
			swept += last
			spent += start.Sub(prev) - slept
			if spent >= busyPeriod {
				busy = float64(swept) / float64(spent)
				swept, spent = 0, 0
			}
		}
		prev = start
		f.srv.m.sweep(last)
		clear(work)
	}
}
