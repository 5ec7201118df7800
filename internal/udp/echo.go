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
	Logger     *slog.Logger
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

// echoLoop serves one socket. Its buffers and messages are allocated once;
// the loop itself does not allocate (golang.org/x/net's ReadBatch still
// allocates the source address of each datagram).
type echoLoop struct {
	conn          batchConn
	log           *slog.Logger
	allowLowPorts bool
	limiter       *sourceLimiter // nil: no rate limit
	start         time.Time
	rms, wms      []ipv4.Message

	received, echoed, lowPort, rateLimited, writeErrors atomic.Uint64
}

func newEchoLoop(c *net.UDPConn, cfg EchoConfig) *echoLoop {
	l := &echoLoop{
		log:           cfg.Logger,
		allowLowPorts: cfg.AllowLowPorts,
		start:         time.Now(),
		rms:           make([]ipv4.Message, cfg.BatchSize),
		wms:           make([]ipv4.Message, cfg.BatchSize),
	}
	if c.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
		l.conn = ipv4.NewPacketConn(c)
	} else {
		l.conn = ipv6.NewPacketConn(c)
	}
	if cfg.Rate > 0 {
		l.limiter = newSourceLimiter(cfg.Rate, cfg.Burst, cfg.MaxSources)
	}
	// One allocation for every buffer of the batch. Pages the kernel never
	// writes are never touched, so the resident cost follows the traffic.
	mem := make([]byte, cfg.BatchSize*maxDatagram)
	for i := range l.rms {
		l.rms[i].Buffers = [][]byte{mem[i*maxDatagram : (i+1)*maxDatagram : (i+1)*maxDatagram]}
		l.wms[i].Buffers = make([][]byte, 1)
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
	w := 0
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
		wm := &l.wms[w]
		wm.Buffers[0] = m.Buffers[0][:m.N]
		wm.Addr = m.Addr
		w++
	}
	l.received.Add(uint64(n))
	if low > 0 {
		l.lowPort.Add(low)
	}
	if limited > 0 {
		l.rateLimited.Add(limited)
	}
	sent := 0
	for off := 0; off < w; {
		k, err := l.conn.WriteBatch(l.wms[off:w], 0)
		if k > 0 {
			off += k
			sent += k
		}
		if err == nil && k <= 0 {
			err = errors.New("sendmmsg sent nothing")
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// sendmmsg reports an error only for the first message it could
			// not send; skip that one and carry on with the rest.
			l.writeErrors.Add(1)
			l.log.Debug("udp echo: write failed", "to", l.wms[off].Addr.String(), "err", err)
			off++
		}
	}
	l.echoed.Add(uint64(sent))
	for i := range w {
		l.wms[i].Addr = nil // let the address be collected
	}
	return nil
}
