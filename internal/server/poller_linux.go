package server

import (
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"

	"netchat/internal/epoll"
)

// poller reads many connections from one epoll set, so that idle
// connections cost no goroutine and no read buffer.
//
// The epoll descriptor is itself registered with Go's network poller
// (through os.NewFile), so waiting for it parks the goroutine like any
// socket read instead of blocking an OS thread in epoll_wait. The inner set
// is level-triggered: each readiness event gets one read of up to len(buf)
// bytes, and a socket with more input is simply reported again.
type poller struct {
	set    *epoll.Set
	events []unix.EpollEvent
	batch  []*tcpConn
	buf    []byte
	clean  []byte // scratch for sanitised lines, lent to each connection in turn
	log    *slog.Logger

	mu     sync.Mutex
	conns  map[uint64]*tcpConn // by registration id, carried in the epoll event
	next   uint64
	closed bool
}

func newPoller(log *slog.Logger) (*poller, error) {
	set, err := epoll.New()
	if err != nil {
		return nil, err
	}
	return &poller{
		set:    set,
		events: make([]unix.EpollEvent, 256),
		buf:    make([]byte, 16<<10),
		log:    log,
		conns:  make(map[uint64]*tcpConn),
	}, nil
}

// add registers c; from then on run delivers its input.
func (p *poller) add(c *tcpConn) error {
	p.mu.Lock()
	p.next++
	id := p.next
	p.conns[id] = c
	p.mu.Unlock()
	c.pollID = id
	if err := p.ctl(c, unix.EPOLL_CTL_ADD); err != nil {
		p.mu.Lock()
		delete(p.conns, id)
		p.mu.Unlock()
		return err
	}
	return nil
}

// ctl adds c's socket to the epoll set or deletes it.
func (p *poller) ctl(c *tcpConn, op int) error {
	// The event carries the registration id, never the fd or a pointer: a
	// closed fd's number is reused by the next accept, and a stale event
	// must not reach the new connection.
	id := c.pollID
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	var cerr error
	err := c.rc.Control(func(fd uintptr) {
		cerr = p.set.Ctl(op, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return nil
}

// disarm stops c's input events while it is paused; arm restarts them.
// The registration stays, so events already collected still find c (and
// c ignores them while paused).
func (p *poller) disarm(c *tcpConn) { _ = p.ctl(c, unix.EPOLL_CTL_DEL) }

func (p *poller) arm(c *tcpConn) error { return p.ctl(c, unix.EPOLL_CTL_ADD) }

// remove unregisters c; armed says its socket is in the epoll set (not
// paused). It must leave the set now, not when it is closed, which may be
// seconds later (lingering output): a level-triggered socket with unread
// input would otherwise wake the poller again and again for an id nobody
// reads.
func (p *poller) remove(c *tcpConn, armed bool) {
	if armed {
		_ = p.ctl(c, unix.EPOLL_CTL_DEL)
	}
	p.mu.Lock()
	delete(p.conns, c.pollID)
	p.mu.Unlock()
}

// run delivers input until the poller is closed.
func (p *poller) run() {
	for {
		n, err := p.set.Wait(p.events)
		if err != nil {
			p.failed(err)
			return
		}
		p.mu.Lock()
		batch := p.batch[:0]
		for _, ev := range p.events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if c := p.conns[id]; c != nil {
				batch = append(batch, c)
			}
		}
		p.mu.Unlock()
		for _, c := range batch {
			c.onReadable(p.buf, &p.clean)
		}
		clear(batch)
		p.batch = batch
	}
}

// failed handles a poller whose wait failed. On shutdown that is its
// closing; otherwise it is logged, and its connections, which nobody would
// read any more, are closed (each session ends with its leave notice).
func (p *poller) failed(err error) {
	p.mu.Lock()
	closed := p.closed
	conns := make([]*tcpConn, 0, len(p.conns))
	for _, c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	if closed {
		return
	}
	p.log.Error("poller failed; closing its connections", "err", err, "conns", len(conns))
	for _, c := range conns {
		c.s.out.kill("poller failed")
	}
}

func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.set.Close()
}
