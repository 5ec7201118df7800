package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type client struct {
	id   int
	conn net.Conn // raw, or TLS over raw; nil once detached to sk
	raw  net.Conn // closed to end the run: no TLS close_notify per client
	sk   *sock    // a poller's client: the socket outside Go's poller
	ws   bool

	// Writes come from the sender, the ready probes and, for WebSocket,
	// from the reader (pongs, close replies): frames must not interleave.
	wmu       sync.Mutex
	wbuf      []byte
	closeSent atomic.Bool // WebSocket: our close frame went out

	seenReady atomic.Bool
	// ended is set by the reader when it stopped reading (EOF, error, or
	// a failed protocol): the end-of-run close handshake waits for it.
	ended atomic.Bool

	// Owned by whoever reads the client (connect worker, then its poller
	// or its reader goroutine); read by others only after that has exited.
	lastSeq       []int64 // highest seq per sender; nil if not checked
	carry         []byte  // line mode: partial line from the previous read
	skipping      bool    // line mode: inside the tail of an over-long line
	wsr           wsReader
	closeReceived bool  // WebSocket: the server's close frame arrived
	protoErr      error // WebSocket: the server broke the protocol
	disconnected  bool
	readFailed    bool
}

// write writes all of b, blocking while the server does not read.
func (c *client) write(b []byte) error {
	if c.sk != nil {
		return c.sk.write(b)
	}
	_, err := c.conn.Write(b)
	return err
}

// tryWrite writes b unless that would block beyond deadline (or, for a
// poller's client, block at all): for control frames, which a reader
// sends and which must not stall it.
//
// A frame that went out in part would corrupt the stream (the next frame
// would be read as its rest): the connection is then shut down, so that
// the failure shows as a disconnect, not as garbage.
func (c *client) tryWrite(b []byte, deadline time.Time) {
	var n int
	if c.sk != nil {
		n = c.sk.tryWrite(b)
	} else {
		_ = c.raw.SetWriteDeadline(deadline)
		n, _ = c.conn.Write(b)
		_ = c.raw.SetWriteDeadline(time.Time{})
	}
	if n > 0 && n < len(b) {
		if c.sk != nil {
			c.sk.shutdown()
		} else {
			_ = c.conn.Close()
		}
	}
}

// writeLine sends one line (ending in "\n"): as is, or as one text frame
// without the newline.
func (c *client) writeLine(line []byte) error {
	if !c.ws {
		return c.write(line)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return net.ErrClosed // no data frames after a close frame
	}
	c.wbuf = appendWSFrame(c.wbuf[:0], wsText, bytes.TrimSuffix(line, []byte("\n")))
	return c.write(c.wbuf)
}

// writeFrame sends a control frame; errors show up on the read side.
func (c *client) writeFrame(op byte, payload []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Load() {
		return
	}
	c.wbuf = appendWSFrame(c.wbuf[:0], op, payload)
	c.tryWrite(c.wbuf, time.Now().Add(time.Second))
}

// writeClose sends our close frame once.
func (c *client) writeClose(code uint16) { c.writeCloseBy(code, time.Now().Add(time.Second)) }

// writeCloseBy sends our close frame once, giving up at deadline.
func (c *client) writeCloseBy(code uint16, deadline time.Time) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent.Swap(true) {
		return
	}
	c.wbuf = appendWSClose(c.wbuf[:0], code)
	c.tryWrite(c.wbuf, deadline)
}

// handshake reads the greeting and the welcome through br, before the
// client is handed to its reader. In WebSocket mode every message is
// read as a line.
type handshake struct {
	c   *client
	br  *bufio.Reader
	msg []byte
}

// readLine returns the next line; the tail of an over-long line is
// skipped.
func (h *handshake) readLine() ([]byte, error) {
	if h.c.ws {
		return h.readMessage()
	}
	line, err := h.br.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = h.br.ReadSlice('\n')
	}
	return line, err
}

// readMessage reads one WebSocket data message, answering pings.
func (h *handshake) readMessage() ([]byte, error) {
	h.msg = h.msg[:0]
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(h.br, hdr[:]); err != nil {
			return nil, err
		}
		fin, op := hdr[0]&0x80 != 0, hdr[0]&0x0f
		if hdr[0]&0x70 != 0 || hdr[1]&0x80 != 0 {
			return nil, fmt.Errorf("%w: masked frame or reserved bits from the server", errWSProtocol)
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(h.br, b[:]); err != nil {
				return nil, err
			}
			n = uint64(b[0])<<8 | uint64(b[1])
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(h.br, b[:]); err != nil {
				return nil, err
			}
			n = 0
			for _, x := range b {
				n = n<<8 | uint64(x)
			}
		}
		if n > maxPayload+1024 {
			return nil, fmt.Errorf("%w: a %d-byte frame during the handshake", errWSProtocol, n)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(h.br, p); err != nil {
			return nil, err
		}
		switch op {
		case wsPing:
			h.c.writeFrame(wsPong, p)
			continue
		case wsPong:
			continue
		case wsClose:
			h.c.writeClose(wsCloseNormal)
			return nil, io.EOF
		case wsText, wsBinary, wsContinuation:
		default:
			return nil, fmt.Errorf("%w: reserved opcode %#x", errWSProtocol, op)
		}
		h.msg = append(h.msg, p...)
		if fin {
			return h.msg, nil
		}
	}
}

// refusal reports a first line that is a netchat limit's refusal instead
// of a greeting, with the server flag that lifts the limit.
func refusal(line []byte) error {
	if !bytes.HasPrefix(line, errorPrefix) {
		return nil
	}
	text := string(bytes.TrimRight(line, "\r\n"))
	if h := classifyError(line).hint(); h != "" {
		return fmt.Errorf("the server refused the connection with %q: %s", text, h)
	}
	return fmt.Errorf("the server refused the connection with %q", text)
}

// awaitWelcome reads until the server accepts or refuses the nickname.
func (h *handshake) awaitWelcome(nick string) error {
	for {
		line, err := h.readLine()
		if err != nil {
			return fmt.Errorf("no welcome after nickname %q: %w", nick, err)
		}
		switch {
		case isWelcome(line):
			return nil
		case bytes.HasPrefix(line, errorPrefix):
			return fmt.Errorf("server refused nickname %q: %q", nick, bytes.TrimRight(line, "\r\n"))
		}
	}
}

// nickTaken: a server that still holds a nickname from an earlier run
// (its user's leave is not processed yet) refuses it as taken.
func nickTaken(line []byte) bool { return bytes.Contains(line, []byte("taken")) }

// maxNickTries bounds the other nicknames tried when one is taken.
const maxNickTries = 5

// join sends nickname <prefix><i> and waits for the welcome. A taken
// nickname (an earlier run's user the server has not let go yet, or
// anybody else's) is retried as <prefix><i>-<k>.
func (h *handshake) join(prefix string, i int) error {
	base := prefix + strconv.Itoa(i)
	nick := base
	for try := 1; ; try++ {
		if err := h.c.writeLine([]byte(nick + "\n")); err != nil {
			return fmt.Errorf("sending nickname: %w", err)
		}
		err := h.awaitWelcome(nick)
		if err == nil {
			return nil
		}
		if try >= maxNickTries || !nickTaken([]byte(err.Error())) {
			return err
		}
		nick = base + "-" + strconv.Itoa(try)
	}
}

// dial connects client i, waits for the greeting, registers its nickname,
// handles whatever arrived with the welcome (with the connect worker's
// stats st) and hands the client to its reader.
func (r *run) dial(ctx context.Context, i int, st *stats, dialHist, welcomeHist *Histogram) error {
	cfg := r.cfg
	start := time.Now()
	d := net.Dialer{Timeout: cfg.DialTimeout}
	if cfg.SourceIPs > 0 {
		d.LocalAddr = sourceAddr(i, cfg.SourceIPs)
	}
	raw, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			raw.Close()
		}
	}()
	// The handshake below is bounded by deadlines, not by ctx; a deadline
	// in the past makes it notice ctx. Deadlines set on raw also bound the
	// TLS connection's reads and writes.
	canceled := time.Unix(1, 0)
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(canceled) })
	defer stop()
	setDeadline := func(d time.Duration) {
		raw.SetDeadline(time.Now().Add(d))
		if ctx.Err() != nil {
			raw.SetDeadline(canceled)
		}
	}
	conn := raw
	if cfg.TLS != nil {
		tc := tls.Client(raw, cfg.TLS)
		setDeadline(cfg.DialTimeout)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		conn = tc
	}
	c := &client{id: i, conn: conn, raw: raw, ws: cfg.WSPath != ""}
	h := &handshake{c: c, br: bufio.NewReaderSize(conn, max(4096, 2*cfg.Payload))}
	if c.ws {
		setDeadline(cfg.DialTimeout)
		if err := wsHandshake(conn, h.br, cfg.wsHost(), cfg.WSPath); err != nil {
			return err
		}
	}
	setDeadline(cfg.GreetingTimeout)
	greeting, err := h.readLine()
	if err != nil {
		return fmt.Errorf("no greeting line: %w", err)
	}
	if err := refusal(greeting); err != nil {
		return err
	}
	dialHist.Record(int64(time.Since(start)))
	if cfg.NickPrefix != "" {
		t := time.Now()
		setDeadline(cfg.GreetingTimeout)
		if err := h.join(cfg.NickPrefix, i); err != nil {
			return err
		}
		welcomeHist.Record(int64(time.Since(t)))
	}
	if !stop() {
		return ctx.Err()
	}
	raw.SetDeadline(time.Time{})
	if int64(cfg.Clients)*int64(cfg.Senders) <= maxOrderEntries {
		c.lastSeq = make([]int64, cfg.Senders)
	}
	// What came with the welcome (history, notices) is already buffered:
	// account for it here, then the reader takes over the connection.
	if n := h.br.Buffered(); n > 0 {
		b, _ := h.br.Peek(n)
		if !r.consume(c, st, b, 0) {
			return fmt.Errorf("client %d: %w", i, c.protoErr)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing.Load() {
		return errors.New("benchmark stopped")
	}
	if tc, isTCP := raw.(*net.TCPConn); isTCP && cfg.TLS == nil && len(r.pollers) > 0 {
		ok = true // raw is closed either way now
		if c.sk, err = detach(tc); err != nil {
			return err
		}
		c.conn, c.raw = nil, nil
	}
	r.clients[i] = c
	if err := r.startReader(c); err != nil {
		r.clients[i] = nil
		c.end()
		return err
	}
	ok = true
	return nil
}

// interrupt ends c's connection and wakes whoever blocks on it; for a
// detached socket the descriptor stays allocated until end, so that no
// reader or writer can touch a reused descriptor number.
func (c *client) interrupt() {
	if c.sk != nil {
		c.sk.shutdown()
		return
	}
	c.raw.Close()
}

// end releases c's connection once nobody uses it any more.
func (c *client) end() {
	if c.sk != nil {
		c.sk.close()
		return
	}
	c.raw.Close()
}
