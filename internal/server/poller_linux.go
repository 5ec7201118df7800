package server

import (
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
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
	epfd   int
	file   *os.File
	rc     syscall.RawConn
	events []unix.EpollEvent
	batch  []*conn
	buf    []byte
	clean  []byte // scratch for sanitised lines, lent to each connection in turn

	mu    sync.Mutex
	conns map[uint64]*conn // by registration id, carried in the epoll event
	next  uint64
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &poller{
		epfd:   epfd,
		file:   f,
		rc:     rc,
		events: make([]unix.EpollEvent, 256),
		buf:    make([]byte, 16<<10),
		conns:  make(map[uint64]*conn),
	}, nil
}

// add registers c; from then on run delivers its input.
func (p *poller) add(c *conn) error {
	p.mu.Lock()
	p.next++
	id := p.next
	p.conns[id] = c
	p.mu.Unlock()
	c.pollID = id
	// The event carries the registration id, never the fd or a pointer: a
	// closed fd's number is reused by the next accept, and a stale event
	// must not reach the new connection.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	var cerr error
	err := c.rc.Control(func(fd uintptr) {
		cerr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.mu.Lock()
		delete(p.conns, id)
		p.mu.Unlock()
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// remove unregisters c. A socket that is already closed has left the epoll
// set by itself; only the id needs forgetting.
func (p *poller) remove(c *conn) {
	_ = c.rc.Control(func(fd uintptr) {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
	p.mu.Lock()
	delete(p.conns, c.pollID)
	p.mu.Unlock()
}

// run delivers input until the poller is closed.
func (p *poller) run() {
	for {
		var n int
		var werr error
		err := p.rc.Read(func(uintptr) bool {
			n, werr = unix.EpollWait(p.epfd, p.events, 0)
			if werr == unix.EINTR {
				n, werr = 0, nil
			}
			return n > 0 || werr != nil
		})
		if err != nil || werr != nil {
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

func (p *poller) close() { _ = p.file.Close() }
