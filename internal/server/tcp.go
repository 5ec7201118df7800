package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"netchat/internal/line"
	"netchat/internal/sysio"
	"netchat/internal/telnet"
)

// errEnd stops line splitting once the session is over (quit, flooding).
var errEnd = errors.New("session ended")

// tlsHandshakeTimeout bounds a TLS client's handshake.
const tlsHandshakeTimeout = 10 * time.Second

// tcpConn carries a session over TCP, plain or TLS: the telnet filter and
// the line splitter turn its byte stream into lines.
//
// Input is driven in one of two ways. Plain TCP connections on Linux are
// registered with a poller (an epoll set shared by many connections): the
// poller reads them when they are readable and runs their input on its own
// goroutine, so an idle connection has no goroutine and no read buffer.
// Other connections (TLS, other systems) have a reader goroutine (serve).
// Either way all input processing happens under the session's inMu, so
// timers and shutdown can end a session safely from other goroutines.
type tcpConn struct {
	s      *session
	nc     net.Conn
	rc     syscall.RawConn // plain TCP only
	poll   *poller         // set before start when a poller drives input
	pollID uint64

	// Guarded by the session's inMu.
	filter telnet.Filter
	split  *line.Splitter
	reply  []byte
	off    bool          // input paused: the poller ignores stale events
	gate   chan struct{} // reader goroutine: closed when input resumes
}

func newTCPConn(s *Server, nc net.Conn) *tcpConn {
	c := &tcpConn{nc: nc, split: line.NewSplitter(s.cfg.MaxLine)}
	if tc, ok := nc.(*net.TCPConn); ok && sysio.Available {
		if rc, err := tc.SyscallConn(); err == nil {
			c.rc = rc
		}
	}
	return c
}

// attach wires the connection's output to the session.
func (c *tcpConn) attach(s *session, fl *flusher) {
	c.s = s
	s.out.w = c.nc
	if c.rc != nil {
		s.out.rc, s.out.fl = c.rc, fl
	}
}

// start begins serving the connection: greeting, then input.
func (c *tcpConn) start() {
	s := c.s
	s.srv.log.Info("connect", "remote", s.remote)
	if c.poll == nil {
		go c.serve()
		return
	}
	// A Shutdown between admitting the connection and here may have ended
	// the session already: then it must not be greeted after its last
	// line, nor registered with a poller that nothing would remove it from.
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.ended {
		return
	}
	if !c.greetNow(s.greeting()) {
		s.Deliver(s.greeting())
	}
	if err := c.poll.add(c); err != nil {
		s.srv.log.Error("cannot poll connection", "remote", s.remote, "err", err)
		s.out.kill("poller: " + err.Error())
	}
}

// greetNow writes the greeting from the accepting goroutine, without
// waiting: a new socket's buffer is empty, so this saves the hand-over to
// a flusher on the path every new connection takes. It reports whether
// the whole greeting went out.
func (c *tcpConn) greetNow(l []byte) bool {
	o := &c.s.out
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.state != outIdle || o.q.n > 0 || o.dead || o.last {
		// Output is queued already (a shutdown notice): the greeting must
		// neither overtake it nor mix with it.
		return false
	}
	b := append(l, '\r', '\n')
	var n int
	var werr error
	err := c.rc.Write(func(fd uintptr) bool {
		n, werr = sysio.Write(fd, b)
		return true
	})
	if err != nil || werr != nil || n != len(b) {
		// Nothing or part went out; the rest must not be lost or
		// repeated, so only an all-or-nothing result falls back.
		if n > 0 && n < len(b) {
			o.q.write(b[n:])
			o.lines++
			o.srv.m.wroteBytes(n)
			o.kick()
			return true
		}
		return false
	}
	o.srv.m.wrote(1, time.Time{})
	o.srv.m.wroteBytes(n)
	return true
}

// serve is the reader goroutine of a connection that is not polled.
func (c *tcpConn) serve() {
	s := c.s
	if tc, ok := c.nc.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			s.inMu.Lock()
			s.endSession("TLS handshake failed: "+errText(err), false)
			s.inMu.Unlock()
			return
		}
	}
	s.inMu.Lock()
	if !s.ended {
		s.Deliver(s.greeting())
	}
	s.inMu.Unlock()
	buf := make([]byte, 4096)
	for {
		n, err := c.nc.Read(buf)
		s.inMu.Lock()
		c.readDone(buf[:n], err)
		ended, gate := s.ended, c.gate
		s.inMu.Unlock()
		if ended {
			return
		}
		if gate != nil {
			<-gate
		}
	}
}

// onReadable is called by the poller when the socket has input (or EOF, or
// an error). buf is the poller's read buffer and *scratch its buffer for
// sanitised lines: input is processed one connection at a time, so they
// need not cost every idle connection a buffer of its own.
func (c *tcpConn) onReadable(buf []byte, scratch *[]byte) {
	s := c.s
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.ended || c.off {
		return
	}
	s.clean = *scratch
	defer func() { *scratch, s.clean = s.clean[:0], nil }()
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = sysio.Read(fd, buf)
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

// readDone processes one read; the session's inMu is held.
func (c *tcpConn) readDone(chunk []byte, err error) {
	s := c.s
	defer s.recoverSession()
	if s.ended {
		return
	}
	s.startRead()
	if len(chunk) > 0 {
		c.input(chunk)
		if s.ended {
			return
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		_ = c.split.Flush(c.emit)
		s.inputEOF()
	default:
		s.endSession("read: "+errText(err), false)
	}
}

// input runs one chunk through the telnet filter and the line splitter.
func (c *tcpConn) input(chunk []byte) {
	s := c.s
	data, ev := c.filter.Process(chunk, &c.reply)
	if len(c.reply) > 0 {
		s.out.writeRaw(c.reply)
		c.reply = c.reply[:0]
	}
	if err := c.split.Feed(data, c.emit, c.tooLong); err != nil || s.ended {
		return
	}
	if ev&telnet.EventAYT != 0 {
		s.inputEvent(heldAYT)
	}
	if ev&telnet.EventIP != 0 {
		s.inputEvent(heldInterrupt)
	}
}

func (c *tcpConn) emit(l []byte) error {
	c.s.inputLine(l)
	if c.s.ended {
		return errEnd
	}
	return nil
}

func (c *tcpConn) tooLong() error {
	c.s.inputTooLong()
	return nil
}

// pauseInput implements transport.
func (c *tcpConn) pauseInput() {
	c.off = true
	if c.poll != nil {
		c.poll.disarm(c)
		return
	}
	if c.gate == nil {
		c.gate = make(chan struct{})
	}
}

// resumeInput implements transport.
func (c *tcpConn) resumeInput() {
	c.off = false
	if c.poll != nil {
		if err := c.poll.arm(c); err != nil {
			c.s.out.kill("poller: " + errText(err))
		}
		return
	}
	if c.gate != nil {
		close(c.gate)
		c.gate = nil
	}
}

// stopInput implements transport.
func (c *tcpConn) stopInput() {
	armed := !c.off
	c.off = true
	if c.poll != nil {
		c.poll.remove(c, armed)
	}
	if c.gate != nil {
		close(c.gate)
		c.gate = nil
	}
}

// closeGraceful implements transport.
func (c *tcpConn) closeGraceful() { closeGracefully(c.nc) }

// closeHard implements transport.
func (c *tcpConn) closeHard(reset bool) {
	if reset {
		setLingerZero(c.nc)
	}
	closeHard(c.nc)
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
