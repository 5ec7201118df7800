package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// EchoConfig configures an RFC 862 echo server.
type EchoConfig struct {
	// Addr is the listen address; an empty host listens on IPv4 and IPv6.
	// Default ":41234".
	Addr string
	// AllowLowPorts turns off the rule that datagrams from source ports
	// below 1024 are dropped. That rule exists because well-known UDP
	// services (echo, chargen, daytime, DNS...) answer every datagram: a
	// spoofed datagram "from" one of them would make two servers bounce
	// traffic between each other forever.
	AllowLowPorts bool
	// Rate limits replies per source address per second; 0 means no limit.
	Rate float64
	// Burst is the bucket size of the rate limit; default one second's worth.
	Burst int
	// MaxSources bounds the rate limiter's table (default 65536); sources
	// beyond it are not answered until idle entries expire.
	MaxSources int
	// BatchSize is the number of datagrams read or written per system call
	// (default 64).
	BatchSize int
	// ReadBuffer sets SO_RCVBUF (default 4 MiB, capped by the kernel).
	ReadBuffer int
	// NoGSO turns off UDP generic segmentation offload (used by default
	// where the kernel has it).
	NoGSO  bool
	Logger *slog.Logger
}

// EchoStats counts what an echo server did since it started.
type EchoStats struct {
	Received    uint64 // datagrams read
	Echoed      uint64 // datagrams sent back
	LowPort     uint64 // dropped: source port below 1024
	RateLimited uint64 // dropped: source over its rate
	WriteErrors uint64 // replies the kernel refused
}

// EchoServer echoes datagrams on one or two sockets.
type EchoServer struct {
	cfg   EchoConfig
	conns []*net.UDPConn
	loops []*echoLoop
}

// maxDatagram is larger than any UDP payload (65507 bytes over IPv4, 65527
// over IPv6 without jumbograms), so a datagram is never truncated and the
// reply is always the identical bytes.
const maxDatagram = 65536

// ListenEcho binds the echo server's sockets; Serve runs it.
func ListenEcho(ctx context.Context, cfg EchoConfig) (*EchoServer, error) {
	if cfg.Rate < 0 {
		return nil, fmt.Errorf("rate must not be negative")
	}
	cfg = withDefaults(cfg)
	conns, err := ListenAll(ctx, cfg.Addr)
	if err != nil {
		return nil, err
	}
	// Go turns SO_BROADCAST on for every UDP socket. An echo server must
	// not have it: a datagram whose (spoofed) source is a broadcast
	// address would be answered to every host on that network.
	for _, c := range conns {
		if err := setBroadcast(c, false); err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("udp echo: clear SO_BROADCAST: %w", err)
		}
	}
	s := &EchoServer{cfg: cfg, conns: conns}
	for _, c := range conns {
		// Best effort: a bigger buffer absorbs bursts; the kernel caps it at
		// net.core.rmem_max.
		_ = c.SetReadBuffer(cfg.ReadBuffer)
		s.loops = append(s.loops, newEchoLoop(c, cfg))
	}
	return s, nil
}

func withDefaults(cfg EchoConfig) EchoConfig {
	if cfg.Addr == "" {
		cfg.Addr = ":" + strconv.Itoa(DefaultEchoPort)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 64
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 1 << 16
	}
	if cfg.ReadBuffer <= 0 {
		cfg.ReadBuffer = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Addrs returns the bound addresses (useful with port 0).
func (s *EchoServer) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	return out
}

// Serve echoes until ctx is done, then closes the sockets and returns nil;
// it returns an error if a socket fails.
func (s *EchoServer) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, c := range s.conns {
		s.cfg.Logger.Info("udp echo listening", "addr", c.LocalAddr().String())
	}
	errs := make(chan error, len(s.loops))
	var wg sync.WaitGroup
	for _, l := range s.loops {
		wg.Go(func() {
			err := l.run()
			if err != nil {
				cancel()
			}
			errs <- err
		})
	}
	<-ctx.Done()
	for _, c := range s.conns {
		c.Close()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// Stats sums the counters of all sockets.
func (s *EchoServer) Stats() EchoStats {
	var t EchoStats
	for _, l := range s.loops {
		st := l.stats()
		t.Received += st.Received
		t.Echoed += st.Echoed
		t.LowPort += st.LowPort
		t.RateLimited += st.RateLimited
		t.WriteErrors += st.WriteErrors
	}
	return t
}

func (l *echoLoop) stats() EchoStats {
	return EchoStats{
		Received:    l.received.Load(),
		Echoed:      l.echoed.Load(),
		LowPort:     l.lowPort.Load(),
		RateLimited: l.rateLimited.Load(),
		WriteErrors: l.writeErrors.Load(),
	}
}

// batchConn is what ipv4.PacketConn and ipv6.PacketConn have in common:
// both Message types are aliases of the same x/net type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// splitBatch reads with one implementation and writes with another.
type splitBatch struct {
	r interface {
		ReadBatch(ms []ipv4.Message, flags int) (int, error)
	}
	w batchConn
}

func (s splitBatch) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	return s.r.ReadBatch(ms, flags)
}

func (s splitBatch) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	return s.w.WriteBatch(ms, flags)
}

// echoLoop serves one socket. Its buffers and messages are allocated once
// and the loop does not allocate per datagram: on Linux it reads with its
// own recvmmsg (golang.org/x/net allocates each source address) and
// writes with golang.org/x/net's sendmmsg; elsewhere both are x/net's.
type echoLoop struct {
	conn          batchConn
	log           *slog.Logger
	allowLowPorts bool
	limiter       *sourceLimiter // nil: no rate limit
	start         time.Time
	rms, wms      []ipv4.Message

	// Generic segmentation offload: replies to one destination that have
	// the same size leave in one sendmmsg entry with a UDP_SEGMENT control
	// message, so the kernel routes and builds one packet train instead of
	// one packet per datagram.
	gso    bool
	keep   []int            // indices into rms of the datagrams to answer
	dst    []netip.AddrPort // source of each datagram in rms
	used   []bool
	order  []int    // indices into rms, in the order they are sent
	groups [][2]int // per wms entry: start in order and number of datagrams
	gsoBuf []byte   // coalesced payloads
	oob    []byte   // one UDP_SEGMENT control message per wms entry
	one    []ipv4.Message

	received, echoed, lowPort, rateLimited, writeErrors atomic.Uint64
}

// GSO limits: segments small enough for any path MTU (so the kernel never
// refuses for size), at most 64 of them, the oldest kernels' maximum, and
// at most gsoMaxBytes in all: one send is still one UDP datagram to the
// kernel, which refuses a larger one with EMSGSIZE.
const (
	gsoMaxSegment  = 1200
	gsoMaxSegments = 64
	gsoMaxBytes    = 65507 // largest UDP payload over IPv4
)

func newEchoLoop(c *net.UDPConn, cfg EchoConfig) *echoLoop {
	n := cfg.BatchSize
	l := &echoLoop{
		log:           cfg.Logger,
		allowLowPorts: cfg.AllowLowPorts,
		start:         time.Now(),
		rms:           make([]ipv4.Message, n),
		wms:           make([]ipv4.Message, n),
		gso:           !cfg.NoGSO && gsoSupported(c),
		keep:          make([]int, 0, n),
		dst:           make([]netip.AddrPort, n),
		used:          make([]bool, n),
		order:         make([]int, n),
		groups:        make([][2]int, n),
		one:           []ipv4.Message{{Buffers: make([][]byte, 1)}},
	}
	if c.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
		l.conn = ipv4.NewPacketConn(c)
	} else {
		l.conn = ipv6.NewPacketConn(c)
	}
	if r, err := newMmsgReader(c, n); err == nil {
		l.conn = splitBatch{r, l.conn}
	}
	if cfg.Rate > 0 {
		l.limiter = newSourceLimiter(cfg.Rate, cfg.Burst, cfg.MaxSources)
	}
	// One allocation for every buffer of the batch. Pages the kernel never
	// writes are never touched, so the resident cost follows the traffic.
	mem := make([]byte, n*maxDatagram)
	for i := range l.rms {
		l.rms[i].Buffers = [][]byte{mem[i*maxDatagram : (i+1)*maxDatagram : (i+1)*maxDatagram]}
		l.wms[i].Buffers = make([][]byte, 1)
	}
	if l.gso {
		l.gsoBuf = make([]byte, n*gsoMaxSegment)
		l.oob = make([]byte, n*gsoOOBSize)
	}
	return l
}

func (l *echoLoop) run() error {
	for {
		n, err := l.conn.ReadBatch(l.rms, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("udp echo: read: %w", err)
		}
		if err := l.echo(n); err != nil {
			return err
		}
	}
}

// echo filters the n datagrams just read and writes the replies.
func (l *echoLoop) echo(n int) error {
	now := int64(time.Since(l.start))
	l.keep = l.keep[:0]
	var low, limited uint64
	for i := range n {
		m := &l.rms[i]
		src, ok := addrPortOf(m.Addr)
		if !ok {
			continue
		}
		if src.Port() < 1024 && !l.allowLowPorts {
			low++
			continue
		}
		if l.limiter != nil && !l.limiter.allow(src.Addr(), now) {
			limited++
			continue
		}
		l.dst[i] = src
		l.keep = append(l.keep, i)
	}
	l.received.Add(uint64(n))
	if low > 0 {
		l.lowPort.Add(low)
	}
	if limited > 0 {
		l.rateLimited.Add(limited)
	}
	w := l.plan()
	sent, err := l.send(w)
	l.echoed.Add(uint64(sent))
	for i := range w {
		l.wms[i].Addr = nil // let the address be collected
	}
	return err
}

// plan fills wms with the replies and returns how many entries it used.
// With GSO, each run of equal-sized datagrams to one destination becomes
// one entry. A run ends at the first datagram to that destination with a
// different size, so every destination gets its replies in the order it
// sent them; only replies to different peers may change places.
func (l *echoLoop) plan() int {
	if !l.gso {
		for k, i := range l.keep {
			l.wms[k].Buffers[0] = l.rms[i].Buffers[0][:l.rms[i].N]
			l.wms[k].Addr = l.rms[i].Addr
			l.wms[k].OOB = nil
			l.order[k] = i
			l.groups[k] = [2]int{k, 1}
		}
		return len(l.keep)
	}
	clear(l.used)
	k, pos, bufOff := 0, 0, 0
	for a, i := range l.keep {
		if l.used[i] {
			continue
		}
		l.used[i] = true
		size := l.rms[i].N
		start := pos
		l.order[pos] = i
		pos++
		if size > 0 && size <= gsoMaxSegment {
			for _, j := range l.keep[a+1:] {
				if pos-start == gsoMaxSegments || (pos-start+1)*size > gsoMaxBytes {
					break
				}
				if l.used[j] || l.dst[j] != l.dst[i] {
					continue
				}
				if l.rms[j].N != size {
					break
				}
				l.used[j] = true
				l.order[pos] = j
				pos++
			}
		}
		cnt := pos - start
		wm := &l.wms[k]
		wm.Addr = l.rms[i].Addr
		if cnt == 1 {
			wm.Buffers[0] = l.rms[i].Buffers[0][:size]
			wm.OOB = nil
		} else {
			buf := l.gsoBuf[bufOff : bufOff+cnt*size]
			for s, j := range l.order[start:pos] {
				copy(buf[s*size:], l.rms[j].Buffers[0][:size])
			}
			bufOff += cnt * size
			wm.Buffers[0] = buf
			wm.OOB = segmentCmsg(l.oob[k*gsoOOBSize:], size)
		}
		l.groups[k] = [2]int{start, cnt}
		k++
	}
	return k
}

// send writes wms[:w] and returns the number of datagrams sent.
func (l *echoLoop) send(w int) (int, error) {
	sent := 0
	for off := 0; off < w; {
		k, err := l.conn.WriteBatch(l.wms[off:w], 0)
		for _, g := range l.groups[off : off+max(k, 0)] {
			sent += g[1]
		}
		off += max(k, 0)
		if err == nil && k <= 0 {
			err = errors.New("sendmmsg sent nothing")
		}
		if err == nil {
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return sent, nil
		}
		// sendmmsg reports an error only for the first message it could
		// not send; retry it unsegmented if GSO was the problem, else skip
		// it and carry on with the rest.
		if g := l.groups[off]; g[1] > 1 && gsoRefused(err) {
			l.log.Info("udp echo: the kernel refused segmentation offload; sending datagrams one by one", "err", err)
			l.gso = false
			sent += l.sendEach(l.order[g[0] : g[0]+g[1]])
		} else {
			l.writeErrors.Add(1)
			l.log.Debug("udp echo: write failed", "to", l.wms[off].Addr.String(), "err", err)
		}
		off++
	}
	return sent, nil
}

// sendEach sends the datagrams rms[idx...] individually.
func (l *echoLoop) sendEach(idx []int) int {
	sent := 0
	for _, i := range idx {
		l.one[0].Buffers[0] = l.rms[i].Buffers[0][:l.rms[i].N]
		l.one[0].Addr = l.rms[i].Addr
		if k, err := l.conn.WriteBatch(l.one, 0); err == nil && k == 1 {
			sent++
		} else {
			l.writeErrors.Add(1)
		}
	}
	l.one[0].Addr = nil
	return sent
}
