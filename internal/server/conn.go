package server

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"netchat/internal/chat"
	"netchat/internal/line"
	"netchat/internal/telnet"
)

// errEnd stops line processing once the session is over (quit, flooding).
var errEnd = errors.New("session ended")

// Reasons a session can expire from outside its input (see conn.expire).
const (
	expireNick     = "nickname timeout"
	expireIdle     = "idle"
	expireShutdown = "shutdown"
)

// conn is one client connection.
//
// Input is driven in one of two ways. Plain TCP connections on Linux are
// registered with a poller (an epoll set shared by many connections): the
// poller reads them when they are readable and runs their input on its own
// goroutine, so an idle connection has no goroutine and no read buffer.
// Other connections (TLS, other systems) have a reader goroutine (serve).
// Either way all input processing happens under inMu, so timers and
// shutdown can end a session safely from other goroutines.
//
// Output is a queue drained by an on-demand writer goroutine (see enqueue).
type conn struct {
	srv    *Server
	nc     net.Conn
	rc     syscall.RawConn // plain TCP only
	poll   *poller         // set before start when a poller drives input
	pollID uint64
	ip     netip.Addr
	remote string
	since  time.Time
	joined atomic.Bool
	lastIn atomic.Int64 // unix nanoseconds of the last input (idle timeout)

	// Input side, guarded by inMu.
	inMu   sync.Mutex
	ended  bool // the session is over; its closing has started
	filter telnet.Filter
	split  *line.Splitter
	clean  []byte
	reply  []byte
	user   *chat.User

	// Output side, guarded by mu.
	mu       sync.Mutex
	out      []byte    // bytes queued, not yet taken by the writer
	spare    []byte    // the writer's previous batch, reused for out
	inflight int       // bytes the writer is writing right now
	lines    int       // lines in out, for metrics
	oldest   time.Time // when the oldest line in out was queued (metrics only)
	last     bool      // the final line is queued; later output is dropped
	writing  bool      // a writer goroutine is running
	drained  chan struct{}
	dead     bool   // connection closed: output is dropped
	expired  string // reader mode: why the reader was woken (see expire)
	why      string // first reason the connection ended, for the log
}

func newConn(s *Server, nc net.Conn, ip netip.Addr) *conn {
	c := &conn{
		srv:    s,
		nc:     nc,
		ip:     ip,
		remote: nc.RemoteAddr().String(),
		since:  time.Now(),
		split:  line.NewSplitter(s.cfg.MaxLine),
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			c.rc = rc
		}
	}
	return c
}

// ---- output ----

// freeBufs recycles output buffers, so that only connections with output
// in flight hold one. A bounded channel rather than a sync.Pool: it stores
// slices without boxing them.
var freeBufs = make(chan []byte, 4096)

// maxKeptBuf is the largest buffer kept for reuse; a burst to one slow
// client must not pin megabytes forever.
const maxKeptBuf = 64 << 10

// getBuf returns an empty buffer for at least n bytes. Fresh buffers are
// small: a fan-out to thousands of idle users needs a buffer for each of
// them at the same moment, each for one short line.
func getBuf(n int) []byte {
	select {
	case b := <-freeBufs:
		if cap(b) >= n {
			return b
		}
		putBuf(b)
	default:
	}
	return make([]byte, 0, max(n, 512))
}

func putBuf(b []byte) {
	if cap(b) > maxKeptBuf {
		return
	}
	select {
	case freeBufs <- b[:0]:
	default:
	}
}

// Deliver implements chat.Session. It never blocks: it appends the line to
// the queue and makes sure a writer is running.
func (c *conn) Deliver(l []byte) <-chan struct{} {
	c.enqueue(l, true, false)
	return nil
}

// deliverLast queues l as the last line the client gets: anything delivered
// later, such as other users leaving during a shutdown, is dropped.
func (c *conn) deliverLast(l []byte) {
	c.enqueue(l, true, true)
}

// enqueue queues b (plus CR LF if crlf); final makes it the last output,
// in the same critical section, so nothing can slip in after it.
func (c *conn) enqueue(b []byte, crlf, final bool) {
	n := len(b)
	if crlf {
		n += 2
	}
	c.mu.Lock()
	if c.dead || c.last {
		c.mu.Unlock()
		return
	}
	if len(c.out)+c.inflight+n > c.srv.cfg.SendQueue {
		queued := len(c.out) + c.inflight
		// Dead from here on, so that concurrent senders overflowing the
		// same queue cut the client off (and count it) only once.
		c.dead = true
		if c.why == "" {
			c.why = "slow consumer"
		}
		c.mu.Unlock()
		c.srv.m.slowConsumer()
		c.srv.log.Warn("slow consumer disconnected", "remote", c.remote, "queued_bytes", queued)
		// Reset rather than close: a normal close would leave the kernel
		// holding up to its whole send buffer (megabytes on loopback) for a
		// peer that is not reading, and the peer would not learn it was
		// cut off until it had read all of it.
		setLingerZero(c.nc)
		closeHard(c.nc)
		c.endAsync("slow consumer")
		return
	}
	if c.out == nil {
		c.out = getBuf(n)
	}
	c.out = append(c.out, b...)
	if crlf {
		c.out = append(c.out, '\r', '\n')
		c.lines++
	}
	if final {
		c.last = true
	}
	if c.srv.m != nil && c.oldest.IsZero() {
		c.oldest = time.Now()
	}
	if c.writing {
		c.mu.Unlock()
		return
	}
	c.writing = true
	c.mu.Unlock()
	go c.writeLoop()
}

// stopWriting ends a writing turn; c.mu is held.
func (c *conn) stopWriting() {
	c.writing = false
	if c.drained != nil {
		close(c.drained)
		c.drained = nil
	}
	c.recycle()
}

// writeLoop writes batches until the queue is empty, then exits. While one
// batch is being written the next one collects, so a busy client gets many
// lines per write. A goroutine per burst, not per connection: idle
// connections have none. (A fixed pool of flushers doing non-blocking
// writes was tried; it used 15% more CPU per delivery at 500 clients,
// with fewer lines per write, for 1 KiB less RSS per idle connection; see
// docs/BENCHMARKS.md.)
func (c *conn) writeLoop() {
	var batch []byte
	for {
		c.mu.Lock()
		if batch != nil {
			c.inflight = 0
			c.spare = batch[:0]
		}
		if len(c.out) == 0 || c.dead {
			c.stopWriting()
			c.mu.Unlock()
			return
		}
		batch = c.out
		c.out = c.spare
		c.spare = nil
		c.inflight = len(batch)
		lines, oldest := c.lines, c.oldest
		c.lines, c.oldest = 0, time.Time{}
		c.mu.Unlock()

		if _, err := c.nc.Write(batch); err != nil {
			c.kill("write: " + errText(err))
			continue
		}
		c.srv.m.wrote(lines, len(batch), oldest)
	}
}

// recycle hands the empty output buffers back; c.mu is held.
func (c *conn) recycle() {
	if c.out != nil {
		putBuf(c.out)
	}
	if c.spare != nil {
		putBuf(c.spare)
	}
	c.out, c.spare = nil, nil
}

// kill closes the connection at once, dropping queued output, and ends the
// session. It may be called from any goroutine, including one that is
// delivering to this connection while holding another session's inMu.
func (c *conn) kill(why string) {
	if c.closeNow(why) {
		c.endAsync(why)
	}
}

// endAsync ends the session of a connection that was just closed. The
// session's input side must learn of it: a poller does not notice a socket
// closed under it. Asynchronous, because the caller may hold this
// connection's inMu (a user's own command overflowing its queue).
func (c *conn) endAsync(why string) {
	go func() {
		c.inMu.Lock()
		c.endSession(why, false)
		c.inMu.Unlock()
	}()
}

// closeNow marks the connection dead and closes the socket; it reports
// whether this call did it.
func (c *conn) closeNow(why string) bool {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return false
	}
	c.dead = true
	if c.why == "" {
		c.why = why
	}
	c.mu.Unlock()
	closeHard(c.nc)
	return true
}

// closeHard closes at once. For TLS it closes the socket underneath:
// tls.Conn.Close first tries to send close_notify, which can wait up to 5s
// on a client that does not read, and callers of closeHard may be inside a
// fan-out.
func closeHard(nc net.Conn) {
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = u.NetConn()
	}
	_ = nc.Close()
}

// finish waits (bounded) until everything queued has been written, then
// closes the connection gracefully.
func (c *conn) finish(why string) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeLinger))
	c.mu.Lock()
	if c.why == "" {
		c.why = why
	}
	var wait chan struct{}
	if c.writing && !c.dead {
		c.drained = make(chan struct{})
		wait = c.drained
	}
	c.mu.Unlock()
	if wait != nil {
		<-wait
	}
	c.mu.Lock()
	dead := c.dead
	c.dead = true
	c.mu.Unlock()
	if dead {
		_ = c.nc.Close()
		return
	}
	closeGracefully(c.nc)
}

// ---- session lifetime ----

// start begins serving the connection: greeting, then input.
func (c *conn) start() {
	c.srv.log.Info("connect", "remote", c.remote)
	// A Shutdown between admitting the connection and here may have ended
	// the session already: then it must not be greeted after its last
	// line, nor registered with a poller that nothing would remove it from.
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if c.ended {
		return
	}
	greeting := append([]byte(c.srv.room.Greeting()), '\r', '\n')
	if c.rc == nil || !c.greetNow(greeting) {
		c.Deliver(greeting[:len(greeting)-2])
	}
	if c.poll == nil {
		go c.serve()
		return
	}
	if err := c.poll.add(c); err != nil {
		c.srv.log.Error("cannot poll connection", "remote", c.remote, "err", err)
		c.kill("poller: " + err.Error())
	}
}

// greetNow writes the greeting from the accepting goroutine, without
// waiting: a new socket's buffer is empty, so this saves the hand-over to a
// writer goroutine on the path every new connection takes. It reports
// whether the whole greeting went out.
func (c *conn) greetNow(b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing || c.dead || c.last {
		// Output is queued already (a shutdown notice): the greeting must
		// neither overtake it nor mix with it.
		return false
	}
	var n int
	var werr error
	err := c.rc.Write(func(fd uintptr) bool {
		n, werr = sysWrite(fd, b)
		return true
	})
	if err != nil || werr != nil || n != len(b) {
		// Nothing or part went out; the rest must not be lost or
		// repeated, so only an all-or-nothing result falls back.
		if n > 0 && n < len(b) {
			c.out = append(getBuf(len(b)-n), b[n:]...)
			if c.srv.m != nil {
				c.oldest = time.Now()
			}
			c.writing = true
			go c.writeLoop()
			return true
		}
		return false
	}
	c.srv.m.wrote(1, n, time.Time{})
	return true
}

// endSession marks the session over and closes the connection on another
// goroutine (gracefully: after flushing). inMu is held. It is idempotent.
func (c *conn) endSession(why string, graceful bool) {
	if c.ended {
		return
	}
	c.ended = true
	c.joined.Store(false)
	if c.poll != nil {
		c.poll.remove(c)
	}
	nick := ""
	if c.user != nil {
		c.user.Leave("")
		nick = c.user.Nick()
	}
	go func() {
		if graceful {
			c.finish(why)
		} else {
			c.closeNow(why)
		}
		c.srv.forget(c)
		c.mu.Lock()
		reason := c.why
		c.mu.Unlock()
		c.srv.log.Info("disconnect", "remote", c.remote, "nick", nick, "reason", reason,
			"duration", time.Since(c.since).Round(time.Millisecond))
	}()
}

// expire ends the session from outside its input: a timeout found by the
// sweeper, or a shutdown. A reader goroutine is woken with an immediate read
// deadline and handles it itself; a polled connection is handled here.
func (c *conn) expire(kind string) {
	if c.poll == nil {
		c.mu.Lock()
		// Not once the connection is closing: closeGracefully is reading
		// (draining) it, and a deadline now would cut that short and turn
		// the close into a reset that can destroy the last lines.
		if !c.dead {
			if c.expired == "" {
				c.expired = kind
			}
			_ = c.nc.SetReadDeadline(time.Now())
		}
		c.mu.Unlock()
		return
	}
	c.inMu.Lock()
	c.expireLocked(kind)
	c.inMu.Unlock()
}

// expireLocked handles an expiry; inMu is held.
func (c *conn) expireLocked(kind string) {
	if c.ended {
		return
	}
	switch kind {
	case expireNick:
		if c.user != nil {
			return // joined in the meantime
		}
		c.Deliver([]byte("! nickname timeout"))
	case expireIdle:
		// The sweeper's view may be a moment old: input that arrived since
		// keeps the user.
		if c.user == nil || time.Since(time.Unix(0, c.lastIn.Load())) < c.srv.cfg.IdleTimeout {
			return
		}
		c.Deliver([]byte(chat.IdleNotice(c.srv.cfg.IdleTimeout)))
	}
	c.endSession(kind, true)
}

// recoverSession contains a panic in one session's input processing: it is
// logged and that session is closed; the server and every other session
// go on. Deferred with inMu held.
func (c *conn) recoverSession() {
	if p := recover(); p != nil {
		c.srv.log.Error("session panic", "remote", c.remote, "panic", p, "stack", string(debug.Stack()))
		c.endSession("internal error", false)
	}
}

// ---- input ----

// serve is the reader goroutine of a connection that is not polled.
func (c *conn) serve() {
	buf := make([]byte, 4096)
	for {
		n, err := c.nc.Read(buf)
		c.inMu.Lock()
		c.readDone(buf[:n], err)
		ended := c.ended
		c.inMu.Unlock()
		if ended {
			return
		}
	}
}

func (c *conn) readDone(chunk []byte, err error) {
	defer c.recoverSession()
	if c.ended {
		return
	}
	if len(chunk) > 0 {
		c.input(chunk)
		if c.ended {
			return
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		c.inputEOF()
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.mu.Lock()
		kind := c.expired
		c.expired = ""
		// Cleared under mu: an expire between here and the reset must
		// not lose its deadline.
		_ = c.nc.SetReadDeadline(time.Time{})
		c.mu.Unlock()
		if kind != "" {
			c.expireLocked(kind)
		}
	default:
		c.endSession("read: "+errText(err), false)
	}
}

// onReadable is called by the poller when the socket has input (or EOF, or
// an error). buf is the poller's read buffer and *scratch its buffer for
// sanitised lines: input is processed one connection at a time, so they
// need not cost every idle connection a buffer of its own.
func (c *conn) onReadable(buf []byte, scratch *[]byte) {
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if c.ended {
		return
	}
	c.clean = *scratch
	defer func() { *scratch, c.clean = c.clean[:0], nil }()
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = sysRead(fd, buf)
			if rerr != syscall.EINTR {
				return true // never let the runtime wait: the poller does
			}
		}
	})
	switch {
	case err != nil:
	case rerr == syscall.EAGAIN:
		return
	case rerr != nil:
		err = os.NewSyscallError("read", rerr)
	case n == 0:
		err = io.EOF
	}
	if n < 0 {
		n = 0
	}
	c.readDone(buf[:n], err)
}

// input runs one chunk through the telnet filter, the line splitter and
// the room.
func (c *conn) input(chunk []byte) {
	if c.srv.cfg.IdleTimeout > 0 {
		c.lastIn.Store(time.Now().UnixNano())
	}
	data, ev := c.filter.Process(chunk, &c.reply)
	if len(c.reply) > 0 {
		c.enqueue(c.reply, false, false)
		c.reply = c.reply[:0]
	}
	if err := c.split.Feed(data, c.onLine, c.onTooLong); err != nil || c.ended {
		return
	}
	if ev&telnet.EventAYT != 0 {
		c.Deliver([]byte("* yes"))
	}
	if ev&telnet.EventIP != 0 {
		// Ctrl-C in telnet ends the session like /quit.
		if c.user != nil {
			c.user.Handle("/quit")
		}
		c.endSession("quit", true)
	}
}

// inputEOF handles the client's half-close: every line it sent is answered
// before the connection closes (SPEC §2.4).
func (c *conn) inputEOF() {
	_ = c.split.Flush(c.onLine)
	c.endSession("eof", true)
}

func (c *conn) onTooLong() error {
	c.Deliver([]byte("! line too long (max " + strconv.Itoa(c.srv.cfg.MaxLine) + " bytes)"))
	return nil
}

func (c *conn) onLine(raw []byte) error {
	if c.ended {
		return errEnd
	}
	c.srv.m.lineIn(len(raw))
	if h := c.srv.cfg.testHookLine; h != nil {
		h(raw)
	}
	c.clean = line.Sanitize(c.clean[:0], raw)
	if c.user == nil {
		nick := strings.TrimSpace(string(c.clean))
		if nick == "" {
			return nil
		}
		u, err := c.srv.room.Join(c, nick, chat.Info{RemoteAddr: c.remote, Since: c.since})
		if err != nil {
			c.Deliver([]byte("! " + err.Error()))
			return nil
		}
		c.user = u
		c.lastIn.Store(time.Now().UnixNano())
		c.joined.Store(true)
		c.srv.log.Debug("joined", "remote", c.remote, "nick", nick)
		return nil
	}
	if line.IsBlank(c.clean) {
		return nil
	}
	switch c.user.Handle(string(c.clean)) {
	case chat.Stay:
		return nil
	case chat.Flood:
		c.srv.m.flood()
		c.endSession("flooding", true)
	default:
		c.endSession("quit", true)
	}
	return errEnd
}

func setLingerZero(nc net.Conn) {
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = u.NetConn()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

func errText(err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	if errors.Is(err, net.ErrClosed) {
		return "closed"
	}
	return err.Error()
}
