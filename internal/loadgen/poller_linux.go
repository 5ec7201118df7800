package loadgen

import (
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"netchat/internal/epoll"
)

// poller reads many clients from one epoll set: no goroutine, no read
// buffer and no wake-up per client, which is most of what receiving costs
// the bench in a big room (a goroutine per client made every received
// line a goroutine wake-up, a read and a second read finding the socket
// empty).
//
// The epoll descriptor is itself registered with Go's network poller
// (through os.NewFile), so waiting for it parks the goroutine like a
// socket read. The set is level-triggered: each readiness event gets one
// read of up to len(buf) bytes, and a socket with more input is simply
// reported again. All lines of one read are handled with one clock
// reading.
type poller struct {
	r      *run
	set    *epoll.Set
	events []unix.EpollEvent
	batch  []*client
	buf    []byte
	rx     rxState
	st     *stats

	mu      sync.Mutex
	clients []*client // by client id, which the epoll event carries
}

// newPollers returns one poller per CPU the runtime uses, running, or nil
// if epoll cannot be set up (the clients then get reader goroutines).
func newPollers(r *run) []*poller {
	var ps []*poller
	for range runtime.GOMAXPROCS(0) {
		p, err := newPoller(r)
		if err != nil {
			for _, p := range ps {
				p.close()
			}
			return nil
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		r.stats = append(r.stats, p.st)
		r.readers.Add(1)
		go p.run()
	}
	return ps
}

func newPoller(r *run) (*poller, error) {
	set, err := epoll.New()
	if err != nil {
		return nil, err
	}
	return &poller{
		r:       r,
		set:     set,
		events:  make([]unix.EpollEvent, 512),
		buf:     make([]byte, r.maxLine+64<<10),
		st:      new(stats),
		clients: make([]*client, r.cfg.Clients),
	}, nil
}

// add registers c; from then on run reads it.
func (p *poller) add(c *client) error {
	p.mu.Lock()
	p.clients[c.id] = c
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.id)}
	if err := p.set.Ctl(unix.EPOLL_CTL_ADD, c.sk.fd, &ev); err != nil {
		p.mu.Lock()
		p.clients[c.id] = nil
		p.mu.Unlock()
		return err
	}
	return nil
}

// drop stops reading c, whose reading ended with err.
func (p *poller) drop(c *client, err error) {
	_ = p.set.Ctl(unix.EPOLL_CTL_DEL, c.sk.fd, nil)
	p.mu.Lock()
	p.clients[c.id] = nil
	p.mu.Unlock()
	p.r.readEnded(c, err)
}

// run reads until the poller is closed.
func (p *poller) run() {
	defer p.r.readers.Done()
	for {
		n, err := p.set.Wait(p.events)
		if err != nil {
			return
		}
		p.mu.Lock()
		batch := p.batch[:0]
		for _, ev := range p.events[:n] {
			if id := int(ev.Fd); id >= 0 && id < len(p.clients) && p.clients[id] != nil {
				batch = append(batch, p.clients[id])
			}
		}
		p.mu.Unlock()
		for _, c := range batch {
			p.read(c)
		}
		clear(batch)
		p.batch = batch
	}
}

// read does one read of c and handles what it got.
func (p *poller) read(c *client) {
	pre := c.readBuf(p.buf)
	n, kernelTime, rerr := c.sk.recv(p.buf[pre:], &p.rx)
	switch {
	case rerr == syscall.EAGAIN:
	case rerr != nil:
		p.drop(c, os.NewSyscallError("read", rerr))
	case n == 0:
		p.drop(c, io.EOF)
	case !p.r.consume(c, p.st, p.buf[:pre+n], kernelTime):
		p.drop(c, nil)
	}
}

func (p *poller) close() { _ = p.set.Close() }
