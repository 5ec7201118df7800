package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/coder/websocket"

	"netchat/internal/sysio"
)

// The WebSocket transport (SPEC §7): one text frame per protocol line in
// each direction, no terminator. github.com/coder/websocket does the
// handshake, reads frames and answers pings and close frames; the server
// writes its own lines as unmasked text frames into the session's output
// queue, so a WebSocket client's output takes the same path as a TCP
// client's (flushers, one write per sweep, the same limits), and the
// library's own frames (pongs, the close frame) go through that queue too,
// in order with the lines.

// WebConn is a connection accepted by a web listener (see WrapListener).
// Until a WebSocket session runs on it, it is the connection itself; from
// then on what the WebSocket library writes to it is queued with the
// session's output.
type WebConn struct {
	net.Conn
	mu  sync.Mutex
	out *output
}

// Write implements net.Conn.
func (c *WebConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	o := c.out
	c.mu.Unlock()
	if o != nil && o.writeRaw(p) {
		return len(p), nil
	}
	// Before the session, or after its output ended (the close frame of a
	// graceful close, written once everything queued was written).
	return c.Conn.Write(p)
}

// Close implements net.Conn. The WebSocket library closes the connection
// right after queueing its answer to a client's close frame: that answer
// is written first (for at most a second).
func (c *WebConn) Close() error {
	c.mu.Lock()
	o := c.out
	c.mu.Unlock()
	if o != nil {
		o.waitDrained(time.Second)
	}
	return c.Conn.Close()
}

// WrapListener returns a listener whose connections are *WebConn: the
// listener of the HTTP server that serves /ws. Wrap the TLS listener, not
// the TCP one under it, so that the server's frames are encrypted.
func WrapListener(ln net.Listener) net.Listener { return webListener{ln} }

type webListener struct{ net.Listener }

func (l webListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &WebConn{Conn: c}, nil
}

// wsConn carries a session over a WebSocket.
type wsConn struct {
	s    *session
	ws   *websocket.Conn
	wc   *WebConn
	ping *time.Timer

	// Guarded by the session's inMu.
	gate chan struct{} // closed when input resumes
}

// ServeWebSocket runs the session of one WebSocket client on the calling
// goroutine (the HTTP handler's) until it ends. ws is the accepted
// WebSocket, nc the connection the web listener accepted for it (a
// *WebConn: see WrapListener), remote the client's address after the web
// server's trusted-proxy rules: the per-IP limit counts it. A refused
// client gets the refusal line as a frame, then a close frame.
func (s *Server) ServeWebSocket(ws *websocket.Conn, nc net.Conn, remote netip.AddrPort) {
	wc, ok := nc.(*WebConn)
	if !ok {
		s.log.Error("WebSocket on a connection not from server.WrapListener", "remote", remote.String())
		_ = ws.Close(websocket.StatusInternalError, "internal error")
		return
	}
	// Deadlines the HTTP server set stay on a hijacked connection.
	_ = wc.Conn.SetDeadline(time.Time{})
	ws.SetReadLimit(-1) // long lines are cut by the session, with a reply
	t := &wsConn{ws: ws, wc: wc}
	shown := remote.String()
	if remote.Port() == 0 {
		// From X-Forwarded-For, which carries no port.
		shown = remote.Addr().String()
	}
	sess, reason, msg := s.admit(t, remote.Addr().Unmap(), shown, func(sess *session) {
		t.s = sess
		o := &sess.out
		o.ws = true
		o.w = wc.Conn
		_, fl := s.ioFor()
		if tc, ok := wc.Conn.(*net.TCPConn); ok && sysio.Available {
			if rc, err := tc.SyscallConn(); err == nil {
				o.rc, o.fl = rc, fl
			}
		}
	})
	if sess == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = ws.Write(ctx, websocket.MessageText, []byte(msg))
		cancel()
		code := websocket.StatusTryAgainLater
		if reason == "shutdown" {
			code = websocket.StatusGoingAway
		}
		_ = ws.Close(code, "")
		return
	}
	o := &sess.out
	wc.mu.Lock()
	wc.out = o
	wc.mu.Unlock()
	s.log.Info("connect", "remote", sess.remote, "transport", "websocket")
	sess.inMu.Lock()
	if !sess.ended {
		sess.Deliver(sess.greeting())
	}
	sess.inMu.Unlock()
	if ka := s.cfg.KeepAlive; ka > 0 {
		t.ping = time.AfterFunc(ka, t.keepalive)
	}
	t.serve()
}

// serve reads frames until the session ends.
func (t *wsConn) serve() {
	s := t.s
	max := s.srv.cfg.MaxLine
	for {
		_, r, err := t.ws.Reader(context.Background())
		if err != nil {
			s.inMu.Lock()
			switch websocket.CloseStatus(err) {
			case websocket.StatusNormalClosure, websocket.StatusGoingAway:
				// The tab was closed: what was received is answered
				// first, as after a TCP half-close.
				s.inputEOF()
			default:
				if !s.ended {
					s.endSession("read: "+wsErrText(err), false)
				}
			}
			s.inMu.Unlock()
			return
		}
		// The buffer is taken only once a frame has arrived: an idle
		// client holds none.
		bp := wsBufs.Get().(*[]byte)
		buf := (*bp)[:0]
		if cap(buf) < max+1 {
			buf = make([]byte, 0, max+1)
		}
		n, rerr := io.ReadFull(r, buf[:max+1])
		tooLong := n > max
		if tooLong {
			_, rerr = io.Copy(io.Discard, r) // bounded memory, however long
		} else if errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, io.EOF) {
			rerr = nil
		}
		s.inMu.Lock()
		if rerr == nil {
			s.startRead()
			if tooLong {
				s.inputTooLong()
			} else {
				s.inputLine(buf[:n])
			}
		}
		ended, gate := s.ended, t.gate
		s.inMu.Unlock()
		*bp = buf[:0]
		wsBufs.Put(bp)
		if rerr != nil {
			s.inMu.Lock()
			s.endSession("read: "+wsErrText(rerr), false)
			s.inMu.Unlock()
			return
		}
		if ended {
			return
		}
		if gate != nil {
			<-gate
		}
	}
}

var wsBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4097); return &b }}

// keepalive pings the client every Config.KeepAlive; a client that does
// not answer within that time is gone.
func (t *wsConn) keepalive() {
	ka := t.s.srv.cfg.KeepAlive
	ctx, cancel := context.WithTimeout(context.Background(), ka)
	err := t.ws.Ping(ctx)
	cancel()
	if err != nil {
		t.s.out.kill("keepalive: no pong")
		return
	}
	t.s.inMu.Lock()
	if !t.s.ended {
		t.ping.Reset(ka)
	}
	t.s.inMu.Unlock()
}

// pauseInput implements transport.
func (t *wsConn) pauseInput() {
	if t.gate == nil {
		t.gate = make(chan struct{})
	}
}

// resumeInput implements transport.
func (t *wsConn) resumeInput() {
	if t.gate != nil {
		close(t.gate)
		t.gate = nil
	}
}

// stopInput implements transport.
func (t *wsConn) stopInput() {
	t.resumeInput()
	if t.ping != nil {
		t.ping.Stop()
	}
}

// closeGraceful implements transport: a close frame with code 1000, and
// the close handshake (bounded by the library).
func (t *wsConn) closeGraceful() {
	_ = t.ws.Close(websocket.StatusNormalClosure, "")
}

// closeHard implements transport.
func (t *wsConn) closeHard(reset bool) {
	if reset {
		setLingerZero(t.wc.Conn)
	}
	closeHard(t.wc.Conn)
	_ = t.ws.CloseNow()
}

func wsErrText(err error) string {
	if st := websocket.CloseStatus(err); st != -1 {
		return "closed with status " + st.String()
	}
	return errText(err)
}
