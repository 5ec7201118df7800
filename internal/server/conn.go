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
	"syscall"
	"time"

	"netchat/internal/chat"
	"netchat/internal/line"
	"netchat/internal/telnet"
)

// errEnd stops line processing once the session is over (quit, flooding).
var errEnd = errors.New("session ended")

// conn is one client connection: a reader goroutine that owns the input
// side, and an output queue drained by an on-demand writer goroutine.
type conn struct {
	srv    *Server
	nc     net.Conn
	rc     syscall.RawConn // nil when nc is not a plain TCP socket (TLS)
	ip     netip.Addr
	remote string
	since  time.Time

	// Input side, used only by the reader goroutine.
	rbuf   []byte  // read buffer of the generic (non-raw) path
	rptr   *[]byte // pooled buffer of the current raw-path chunk
	filter telnet.Filter
	split  *line.Splitter
	clean  []byte
	reply  []byte
	user   *chat.User
	end    chat.End // why line processing stopped

	mu       sync.Mutex
	out      []byte    // bytes queued, not yet taken by the writer
	spare    []byte    // the writer's previous batch, reused for out
	inflight int       // bytes the writer is writing right now
	lines    int       // lines in out, for metrics
	oldest   time.Time // when the oldest line in out was queued (metrics only)
	last     bool      // the final line is queued; later output is dropped
	writing  bool      // a writer goroutine is running
	closing  bool      // the session is ending; writer reports when drained
	drained  chan struct{}
	dead     bool // connection closed: output is dropped
	stopping bool // server shutdown: reader must end at its next read
	why      string
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

func getBuf() []byte {
	select {
	case b := <-freeBufs:
		return b
	default:
		return make([]byte, 0, 2048)
	}
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

// maxKeptBuf is the largest buffer kept for reuse; a burst to one slow
// client must not pin megabytes in the pool forever.
const maxKeptBuf = 64 << 10

// Deliver implements chat.Session. It never blocks: it appends the line to
// the queue and makes sure a writer is running.
func (c *conn) Deliver(l []byte) {
	c.enqueue(l, true)
}

// deliverLast queues l as the last line the client gets: anything delivered
// later, such as other users leaving during a shutdown, is dropped.
func (c *conn) deliverLast(l []byte) {
	c.enqueue(l, true)
	c.mu.Lock()
	c.last = true
	c.mu.Unlock()
}

func (c *conn) enqueue(b []byte, crlf bool) {
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
		c.dead = true
		c.why = "slow consumer"
		queued := len(c.out) + c.inflight
		c.mu.Unlock()
		c.srv.m.slowConsumer()
		c.srv.log.Warn("slow consumer disconnected", "remote", c.remote, "queued_bytes", queued)
		_ = c.nc.Close()
		return
	}
	if c.out == nil {
		c.out = getBuf()
	}
	c.out = append(c.out, b...)
	if crlf {
		c.out = append(c.out, '\r', '\n')
	}
	if crlf {
		c.lines++
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

// writeLoop writes batches until the queue is empty, then exits.
func (c *conn) writeLoop() {
	var batch []byte
	for {
		c.mu.Lock()
		if batch != nil {
			c.inflight = 0
			c.spare = batch[:0]
		}
		if len(c.out) == 0 || c.dead {
			c.writing = false
			if c.drained != nil {
				close(c.drained)
				c.drained = nil
			}
			c.recycle()
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

// recycle hands the empty output buffers back to the pool; c.mu is held.
func (c *conn) recycle() {
	if c.out != nil {
		putBuf(c.out)
	}
	if c.spare != nil {
		putBuf(c.spare)
	}
	c.out, c.spare = nil, nil
}

// kill closes the connection at once, dropping queued output.
func (c *conn) kill(why string) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	c.why = why
	c.mu.Unlock()
	_ = c.nc.Close()
}

// stop asks the reader to end the session at its next read (shutdown).
func (c *conn) stop() {
	c.mu.Lock()
	c.stopping = true
	_ = c.nc.SetReadDeadline(time.Now())
	c.mu.Unlock()
}

// armReadDeadline sets the read deadline unless a shutdown already asked
// the reader to stop; the lock orders it with stop.
func (c *conn) armReadDeadline(t time.Time) {
	c.mu.Lock()
	if !c.stopping {
		_ = c.nc.SetReadDeadline(t)
	}
	c.mu.Unlock()
}

// finish ends the session gracefully: it waits (bounded) until everything
// queued has been written, then closes.
func (c *conn) finish(why string) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeLinger))
	c.mu.Lock()
	if c.why == "" {
		c.why = why
	}
	c.closing = true
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

// ---- input ----

// readPool holds read buffers for the raw path, which takes one only while
// the socket has data, so idle connections hold none.
var readPool = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// read returns the next chunk of input. On plain TCP it waits for
// readability without holding a buffer; the chunk is valid until putChunk.
func (c *conn) read() (chunk []byte, err error) {
	if c.rc == nil {
		if c.rbuf == nil {
			c.rbuf = make([]byte, 4096)
		}
		n, err := c.nc.Read(c.rbuf)
		return c.rbuf[:n], err
	}
	var buf *[]byte
	var n int
	var rerr error
	err = c.rc.Read(func(fd uintptr) bool {
		b := readPool.Get().(*[]byte)
		for {
			n, rerr = syscall.Read(int(fd), *b)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			readPool.Put(b)
			return false
		}
		buf = b
		return true
	})
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		readPool.Put(buf)
		return nil, &net.OpError{Op: "read", Net: "tcp", Addr: c.nc.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	}
	if n <= 0 {
		readPool.Put(buf)
		return nil, io.EOF
	}
	c.rptr = buf
	return (*buf)[:n], nil
}

func (c *conn) serve() {
	defer c.srv.forget(c)
	defer func() {
		if p := recover(); p != nil {
			c.srv.log.Error("session panic", "remote", c.remote, "panic", p, "stack", string(debug.Stack()))
			c.kill("internal error")
		}
		if c.user != nil {
			c.user.Leave("")
		}
		c.mu.Lock()
		why := c.why
		c.mu.Unlock()
		nick := ""
		if c.user != nil {
			nick = c.user.Nick()
		}
		c.srv.log.Info("disconnect", "remote", c.remote, "nick", nick, "reason", why,
			"duration", time.Since(c.since).Round(time.Millisecond))
	}()
	c.srv.log.Info("connect", "remote", c.remote)
	c.Deliver([]byte(c.srv.room.Greeting()))
	cfg := &c.srv.cfg
	if cfg.NickTimeout > 0 {
		c.armReadDeadline(c.since.Add(cfg.NickTimeout))
	}
	for {
		if c.user != nil && cfg.IdleTimeout > 0 {
			c.armReadDeadline(time.Now().Add(cfg.IdleTimeout))
		}
		chunk, err := c.read()
		if len(chunk) > 0 {
			end := c.process(chunk)
			c.putChunk()
			if end != chat.Stay {
				if end == chat.Flood {
					c.srv.m.flood()
					c.finish("flooding")
				} else {
					c.finish("quit")
				}
				return
			}
		}
		if err != nil {
			c.readFailed(err)
			return
		}
	}
}

// putChunk gives the raw path's read buffer back to the pool once the
// chunk has been processed.
func (c *conn) putChunk() {
	if c.rptr != nil {
		readPool.Put(c.rptr)
		c.rptr = nil
	}
}

func (c *conn) readFailed(err error) {
	switch {
	case errors.Is(err, io.EOF):
		// Half-close: the client is done sending, but every line it sent
		// is answered before we close (SPEC §2.4).
		_ = c.split.Flush(c.onLine)
		if c.user != nil {
			c.user.Leave("")
		}
		c.finish("eof")
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		switch {
		case stopping:
			c.finish("shutdown")
		case c.user == nil:
			c.Deliver([]byte("! nickname timeout"))
			c.finish("nickname timeout")
		default:
			c.Deliver([]byte(chat.IdleNotice(c.srv.cfg.IdleTimeout)))
			c.user.Leave("")
			c.finish("idle")
		}
	default:
		c.kill("read: " + errText(err))
	}
}

// process runs one chunk of input through the telnet filter, the line
// splitter and the room. It reports whether and why the session must end.
func (c *conn) process(chunk []byte) chat.End {
	data, ev := c.filter.Process(chunk, &c.reply)
	if len(c.reply) > 0 {
		c.enqueue(c.reply, false)
		c.reply = c.reply[:0]
	}
	if err := c.split.Feed(data, c.onLine, c.onTooLong); err != nil {
		return c.end
	}
	if ev&telnet.EventAYT != 0 {
		c.Deliver([]byte("* yes"))
	}
	if ev&telnet.EventIP != 0 {
		// Ctrl-C in telnet ends the session like /quit.
		if c.user != nil {
			c.user.Handle("/quit")
		}
		return chat.Quit
	}
	return chat.Stay
}

func (c *conn) onTooLong() error {
	c.Deliver([]byte("! line too long (max " + strconv.Itoa(c.srv.cfg.MaxLine) + " bytes)"))
	return nil
}

func (c *conn) onLine(raw []byte) error {
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
		c.armReadDeadline(time.Time{})
		c.srv.log.Debug("joined", "remote", c.remote, "nick", nick)
		return nil
	}
	if line.IsBlank(c.clean) {
		return nil
	}
	if c.end = c.user.Handle(string(c.clean)); c.end != chat.Stay {
		return errEnd
	}
	return nil
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
