package loadgen

import (
	"errors"
	"io"
)

// startReader hands c to a poller (plain TCP where epoll is available) or
// to a reader goroutine of its own (TLS, other systems). r.mu is held.
func (r *run) startReader(c *client) error {
	if c.sk != nil {
		return r.pollers[c.id%len(r.pollers)].add(c)
	}
	st := new(stats)
	r.stats = append(r.stats, st)
	r.readers.Add(1)
	go r.readLoop(c, st)
	return nil
}

// readLoop reads client c until its connection ends: the fallback for
// connections a poller cannot read (TLS) and for systems without epoll.
func (r *run) readLoop(c *client, st *stats) {
	defer r.readers.Done()
	buf := make([]byte, r.maxLine+16<<10)
	for {
		pre := c.readBuf(buf)
		n, err := c.conn.Read(buf[pre:])
		if n > 0 && !r.consume(c, st, buf[:pre+n], 0) {
			r.readEnded(c, nil)
			return
		}
		if err != nil {
			r.readEnded(c, err)
			return
		}
	}
}

// readEnded records why c's reader stopped: err is the read's error, or
// nil after a WebSocket protocol error (c.protoErr).
func (r *run) readEnded(c *client, err error) {
	switch {
	case c.protoErr != nil:
		c.readFailed = true
	case r.closing.Load():
		// We are closing: neither EOF nor errors are the server's doing.
	case errors.Is(err, io.EOF):
		c.disconnected = true
	default:
		c.readFailed = true
	}
	c.ended.Store(true)
}
