// Package server serves the chat room over TCP and TLS (and, through
// internal/web, WebSocket): it accepts connections, enforces the limits of
// SPEC §2.4, and runs one session per client.
//
// Model. A session (session.go) is line-oriented and the same for every
// transport: the nickname step, commands, flood control, pacing, timeouts
// and the ending. Transports turn bytes into lines: plain TCP connections
// are read by per-CPU epoll pollers (no goroutine per idle connection),
// TLS and WebSocket connections by a reader goroutine each (tcp.go).
//
// Output never blocks anybody: chat.Session.Deliver appends to the
// client's output queue, and flushers write the queues of all clients in
// sweeps, one vector write per client per sweep, so that a busy room's
// writes carry many lines (output.go). A client whose queue passes
// Config.SendQueue, or whose socket takes nothing for Config.WriteTimeout,
// is cut off as a slow consumer; before that, a sender whose lines fill a
// queue past three quarters is briefly not read (producer pacing).
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"netchat/internal/chat"
	"netchat/internal/sysio"
)

// Config holds the server's limits. Zero values mean the SPEC defaults
// where a default exists (see Defaults).
type Config struct {
	MaxConns      int // 0: no limit
	MaxConnsPerIP int // 0: no limit
	// IPv6PrefixLen is the network size the per-IP limit counts IPv6
	// clients by: one host usually has a whole /64. 0 means 64; 128
	// counts every address.
	IPv6PrefixLen int
	IdleTimeout   time.Duration // 0: off
	KeepAlive     time.Duration // TCP keepalive period; 0 or negative disables
	NickTimeout   time.Duration // 0: off
	MaxLine       int           // bytes
	SendQueue     int           // bytes
	// WriteTimeout: a client whose socket takes nothing for this long
	// while output is pending is a slow consumer. 0: off.
	WriteTimeout time.Duration
	// StallMax bounds producer pacing: the time one read of a sender may
	// be held back because its lines fill other clients' queues. 0: no
	// pacing.
	StallMax time.Duration
	Logger   *slog.Logger
	Metrics  *Metrics // nil: no metrics

	// testHookLine, if set, sees every raw input line first (tests only).
	testHookLine func(line []byte)
	// testHookStall, if set, sees every stall: its bound, and how much of
	// the read's stall budget earlier stalls had spent (tests only).
	testHookStall func(ttl, spent time.Duration)
}

// Defaults returns the configuration of SPEC §2.4.
func Defaults() Config {
	return Config{
		MaxConns:      10000,
		MaxConnsPerIP: 64,
		IPv6PrefixLen: 64,
		KeepAlive:     60 * time.Second,
		NickTimeout:   60 * time.Second,
		MaxLine:       4096,
		SendQueue:     1 << 20,
		WriteTimeout:  10 * time.Second,
		StallMax:      10 * time.Millisecond,
	}
}

// The flushers' adaptive delay (see flusher.run).
const (
	flushDelayFactor = 3.0
	flushWindow      = 60 * time.Millisecond
	// batchFrom is how many connections a busy flusher's sweep must
	// write before the next sweep waits for lines to collect: below it,
	// in a single server, the wait costs more latency and throughput
	// than the batching saves.
	batchFrom = 1000
	// clusterBatchFrom is batchFrom on a cluster node: its sweeps cover
	// only its share of the room and its lines come from the cluster's
	// log, so waiting does not slow its room down. With 500 users on two
	// nodes, 0.82× one node's deliveries per CPU-second instead of 0.63×,
	// at the same deliveries per second (docs/BENCHMARKS.md).
	clusterBatchFrom = 200
)

// maxRejecting bounds the refusals being written at once.
const maxRejecting = 256

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("server closed")

// closeLinger bounds how long a closing connection may take to flush its
// last lines to a client that does not read them.
const closeLinger = 5 * time.Second

// Server is a chat server. Create it with New; it is safe for concurrent use.
type Server struct {
	cfg  Config
	room *chat.Room
	log  *slog.Logger
	m    *Metrics

	stallMax    time.Duration
	blocking    bool // the room's Join may block on the network (cluster)
	flushFactor float64
	flushWindow time.Duration
	batchFrom   int // see batchFrom

	inShutdown atomic.Bool
	rejecting  atomic.Int32 // refusals being written
	active     atomic.Int64 // open connections

	ioOnce   sync.Once
	pollers  []*poller // nil where polling is unavailable
	flushers []*flusher
	ioNext   atomic.Uint32

	sweepOnce sync.Once
	done      chan struct{} // closed by Shutdown and Close
	ioDone    chan struct{} // closed once no connection needs a flusher
	ioClosed  sync.Once

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*session]struct{}
	perIP     map[netip.Prefix]int
	idle      chan struct{} // closed when conns becomes empty during shutdown
}

// New returns a server for room.
func New(room *chat.Room, cfg Config) *Server {
	d := Defaults()
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = d.MaxLine
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = d.SendQueue
	}
	if cfg.IPv6PrefixLen <= 0 || cfg.IPv6PrefixLen > 128 {
		cfg.IPv6PrefixLen = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv := &Server{
		cfg:       cfg,
		room:      room,
		log:       cfg.Logger,
		m:         cfg.Metrics,
		stallMax:  max(cfg.StallMax, 0),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*session]struct{}),
		perIP:     make(map[netip.Prefix]int),
		done:      make(chan struct{}),
		ioDone:    make(chan struct{}),
	}
	srv.flushFactor, srv.flushWindow = flushDelayFactor, flushWindow
	srv.blocking = room.JoinBlocks()
	srv.batchFrom = batchFrom
	if srv.blocking { // a cluster node's room
		srv.batchFrom = clusterBatchFrom
	}
	// Experiment knobs for the benchmarks of docs/BENCHMARKS.md.
	if v, err := strconv.ParseFloat(os.Getenv("NETCHAT_FLUSH_FACTOR"), 64); err == nil {
		srv.flushFactor = v
	}
	if v, err := time.ParseDuration(os.Getenv("NETCHAT_FLUSH_WINDOW")); err == nil {
		srv.flushWindow = v
	}
	return srv
}

// ioFor picks the poller and the flusher for a new connection, creating
// one poller per CPU and one flusher per two CPUs on first use. The poller is nil where polling is
// unavailable ("use a reader goroutine").
func (s *Server) ioFor() (*poller, *flusher) {
	s.ioOnce.Do(func() {
		// One flusher per two CPUs: on two cores one flusher writes more
		// cheaply than two (its writes do not compete with the other
		// core's input and fan-out), measured in docs/BENCHMARKS.md.
		n := runtime.GOMAXPROCS(0)
		nf := max(n/2, 1)
		if v, err := strconv.Atoi(os.Getenv("NETCHAT_FLUSHERS")); err == nil && v > 0 {
			nf = v // an experiment knob (docs/BENCHMARKS.md)
		}
		for range nf {
			f := newFlusher(s)
			s.flushers = append(s.flushers, f)
			go f.run()
		}
		for range n {
			if !sysio.Available {
				continue
			}
			p, err := newPoller(s.log)
			if err != nil {
				s.log.Debug("no poller, using a goroutine per connection", "err", err)
				continue
			}
			s.pollers = append(s.pollers, p)
			go p.run()
		}
	})
	i := s.ioNext.Add(1)
	var p *poller
	if len(s.pollers) > 0 {
		p = s.pollers[i%uint32(len(s.pollers))]
	}
	return p, s.flushers[i%uint32(len(s.flushers))]
}

// ipKey is what the per-IP limit counts a client address by: the address,
// or for IPv6 its network of Config.IPv6PrefixLen bits.
func (s *Server) ipKey(ip netip.Addr) netip.Prefix {
	bits := ip.BitLen()
	if ip.Is6() {
		bits = s.cfg.IPv6PrefixLen
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// sweep enforces the nickname and idle timeouts. One sweeper for all
// connections costs far less than a timer per connection, and its
// resolution (a fraction of the shortest timeout) is all the limits need.
func (s *Server) sweep() {
	shortest := s.cfg.NickTimeout
	if s.cfg.IdleTimeout > 0 && (shortest <= 0 || s.cfg.IdleTimeout < shortest) {
		shortest = s.cfg.IdleTimeout
	}
	if shortest <= 0 {
		return
	}
	tick := min(max(shortest/8, 5*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	var conns []*session
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		s.mu.Lock()
		conns = conns[:0]
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		now := time.Now()
		for _, c := range conns {
			switch {
			case c.isJoined.Load():
				if s.cfg.IdleTimeout > 0 && now.Sub(time.Unix(0, c.lastIn.Load())) >= s.cfg.IdleTimeout {
					c.expire(expireIdle)
				}
			case s.cfg.NickTimeout > 0 && now.Sub(c.since) >= s.cfg.NickTimeout:
				c.expire(expireNick)
			}
		}
		clear(conns)
	}
}

// Room is the room this server serves.
func (s *Server) Room() *chat.Room { return s.room }

// Listen opens a TCP listener on addr with the configured keepalive, for
// Serve. An empty host listens on every address, IPv4 and IPv6.
func (s *Server) Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{}
	if s.cfg.KeepAlive > 0 {
		lc.KeepAliveConfig = net.KeepAliveConfig{
			Enable:   true,
			Idle:     s.cfg.KeepAlive,
			Interval: s.cfg.KeepAlive / 4,
			Count:    4,
		}
		if lc.KeepAliveConfig.Interval < time.Second {
			lc.KeepAliveConfig.Interval = time.Second
		}
	} else {
		lc.KeepAlive = -1
	}
	return lc.Listen(ctx, "tcp", addr)
}

// Serve accepts connections on ln until Shutdown or Close, and always
// returns a non-nil error (ErrServerClosed after a shutdown). ln may be a
// TLS listener; the same room is served on every listener.
func (s *Server) Serve(ln net.Listener) error {
	if !s.trackListener(ln, true) {
		// Shut down already: the listener must not stay open with
		// clients queueing on it that nobody will serve.
		_ = ln.Close()
		return ErrServerClosed
	}
	defer s.trackListener(ln, false)

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: wait and retry,
				// as net/http does, rather than spin or give up.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.accept(nc)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) trackListener(ln net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.inShutdown.Load() {
			return false
		}
		s.listeners[ln] = struct{}{}
	} else {
		delete(s.listeners, ln)
	}
	return true
}

// accept admits or rejects a new connection. It runs on the accept loop, so
// it does only bookkeeping; the session runs elsewhere.
func (s *Server) accept(nc net.Conn) {
	c := newTCPConn(s, nc)
	ip := addrIP(nc.RemoteAddr())
	sess, _, msg := s.admit(c, ip, nc.RemoteAddr().String(), func(sess *session) { s.prepareTCP(c, sess) })
	if sess == nil {
		if s.rejecting.Add(1) > maxRejecting {
			// A storm of refused connections: hang up without a word
			// rather than spend a goroutine on each.
			s.rejecting.Add(-1)
			_ = nc.Close()
			return
		}
		go func() {
			reject(nc, msg)
			s.rejecting.Add(-1)
		}()
		return
	}
	c.start()
}

// prepareTCP gives a new TCP connection its poller and flusher.
func (s *Server) prepareTCP(c *tcpConn, sess *session) {
	poll, fl := s.ioFor()
	if c.rc != nil {
		c.poll = poll
	}
	c.attach(sess, fl)
}

// admit applies the connection limits to a new client at ip and, if it
// is admitted, registers a session for it on transport t; otherwise it
// returns the line that tells the client why not.
func (s *Server) admit(t transport, ip netip.Addr, remote string, prepare func(*session)) (sess *session, reason, msg string) {
	s.m.connAccepted()
	key := s.ipKey(ip)
	// Wired up before it is registered: from then on a Shutdown may end it
	// and write its last line at any moment.
	sess = newSession(s, t, key, remote)
	if prepare != nil {
		prepare(sess)
	}
	s.mu.Lock()
	switch {
	case s.inShutdown.Load():
		reason, msg = "shutdown", "! server shutting down"
	case s.cfg.MaxConns > 0 && len(s.conns) >= s.cfg.MaxConns:
		reason, msg = "server_full", "! server full, try again later"
	case s.cfg.MaxConnsPerIP > 0 && s.perIP[key] >= s.cfg.MaxConnsPerIP:
		reason, msg = "per_ip_limit", "! too many connections from your address"
	}
	if reason != "" {
		s.mu.Unlock()
		s.m.rejected(reason)
		s.log.Info("connection rejected", "remote", remote, "reason", reason)
		return nil, reason, msg
	}
	s.conns[sess] = struct{}{}
	s.perIP[key]++
	s.mu.Unlock()
	s.active.Add(1)
	s.m.connOpened()
	s.sweepOnce.Do(func() { go s.sweep() })
	return sess, "", ""
}

func (s *Server) forget(c *session) {
	// Counted down first, so that Conns is 0 once Shutdown has returned.
	s.active.Add(-1)
	s.m.connClosed()
	s.mu.Lock()
	delete(s.conns, c)
	if n := s.perIP[c.ipKey] - 1; n > 0 {
		s.perIP[c.ipKey] = n
	} else {
		delete(s.perIP, c.ipKey)
	}
	if len(s.conns) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

// Conns is the number of open connections (joined or not).
func (s *Server) Conns() int { return int(s.active.Load()) }

// Shutdown stops accepting, sends "* server shutting down" to every
// connection, lets each flush what it has queued, and closes it. It returns
// when all connections are gone or ctx is done; in the latter case the
// remaining connections are closed hard and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	var idle chan struct{}
	conns := s.stopAccepting(func() {
		switch {
		case s.idle != nil:
			idle = s.idle // a concurrent Shutdown waits for the same
		case len(s.conns) > 0:
			idle = make(chan struct{})
			s.idle = idle
		}
	})

	s.stopBackground()
	// The notice goes to everybody before any session ends, so that it is
	// everybody's last line: nobody sees the others leave.
	for _, c := range conns {
		c.deliverLast([]byte("* server shutting down"))
	}
	for _, c := range conns {
		c.expire(expireShutdown)
	}
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		}
	}
	s.closePollers()
	return nil
}

// Close closes all listeners and connections immediately.
func (s *Server) Close() error {
	conns := s.stopAccepting(nil)
	s.stopBackground()
	for _, c := range conns {
		c.out.kill("server closed")
	}
	s.closePollers()
	return nil
}

// stopAccepting closes the listeners and returns the open connections;
// also, if not nil, runs with s.mu held.
func (s *Server) stopAccepting(also func()) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inShutdown.Store(true)
	for ln := range s.listeners {
		_ = ln.Close()
		delete(s.listeners, ln)
	}
	conns := make([]*session, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	if also != nil {
		also()
	}
	return conns
}

func (s *Server) stopBackground() {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.mu.Unlock()
}

// closePollers stops the pollers once no connection needs them. A poller
// that still has connections (Close does not wait for them) is closed all
// the same: those connections are already dead.
func (s *Server) closePollers() {
	s.ioOnce.Do(func() {}) // no pollers may be created after this
	for _, p := range s.pollers {
		p.close()
	}
	s.ioClosed.Do(func() { close(s.ioDone) })
}

func addrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// reject tells a refused client why and hangs up. It runs on its own
// goroutine: on a TLS listener the write performs the handshake, which must
// not hold up the accept loop.
func reject(nc net.Conn, msg string) {
	// Both directions: on TLS the write first reads the ClientHello, and a
	// client that never sends one must not hold this goroutine forever.
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = nc.Write([]byte(msg + "\r\n"))
	closeGracefully(nc)
}

// closeGracefully sends FIN, drains what the peer still sends for a short
// while, then closes. Closing a socket that has unread input makes the
// kernel send RST, which can destroy the last lines we wrote before the
// peer reads them.
func closeGracefully(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		_ = nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		var buf [512]byte
		for range 64 {
			if _, err := nc.Read(buf[:]); err != nil {
				break
			}
		}
	}
	_ = nc.Close()
}
