package udp

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// SendConfig configures Send.
type SendConfig struct {
	// Addr is HOST[:PORT] to send to; the port defaults to 41234.
	Addr string
	// Messages are sent one datagram each. When there are none, every line
	// of Stdin (without its line ending) is one datagram.
	Messages []string
	Stdin    io.Reader
	// Count is how many times each datagram is sent (default 1).
	Count int
	// Interval is the pause between two datagrams.
	Interval time.Duration
	// TTL sets the unicast and multicast TTL / hop limit; 0 keeps the
	// system default.
	TTL int
	// Broadcast sets SO_BROADCAST, which the kernel requires before it
	// sends to a broadcast address.
	Broadcast bool
	// Bind is the local address to send from (IP, IP:PORT or :PORT).
	Bind string
	// Wait is how long replies are awaited after the last datagram.
	Wait time.Duration
	// Hex: messages and stdin lines are hex to decode, replies are printed
	// in hex.
	Hex bool
	// Out receives one line per reply (see FormatDatagram).
	Out io.Writer
}

// SendResult counts what Send did.
type SendResult struct {
	Sent, Replies int
}

// Send sends datagrams as cfg says and prints the replies that arrive
// until Wait after the last one. Replies from any address are printed, so
// that answers to a broadcast show every responder.
func Send(ctx context.Context, cfg SendConfig) (res SendResult, err error) {
	if cfg.Count <= 0 {
		cfg.Count = 1
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	dst, err := ResolveUDP(ctx, cfg.Addr, DefaultEchoPort)
	if err != nil {
		return res, err
	}
	network := "udp4"
	if !dst.Addr().Is4() {
		network = "udp6"
	}
	var laddr *net.UDPAddr
	if cfg.Bind != "" {
		b, err := parseBind(cfg.Bind)
		if err != nil {
			return res, err
		}
		laddr = net.UDPAddrFromAddrPort(b)
	}
	// A unicast destination gets a connected socket, as nc -u does: only
	// then does the kernel report an ICMP port unreachable (on every
	// system), so that a closed port is an error rather than silence. Its
	// replies must then come from dst itself. Broadcast and multicast have
	// any number of responders, so those stay unconnected.
	connected := !cfg.Broadcast && !dst.Addr().IsMulticast()
	var c *net.UDPConn
	if connected {
		d := net.Dialer{Control: noBroadcastBeforeConnect}
		if laddr != nil {
			d.LocalAddr = laddr
		}
		var nc net.Conn
		if nc, err = d.DialContext(ctx, network, dst.String()); err == nil {
			c = nc.(*net.UDPConn)
		}
	} else {
		c, err = net.ListenUDP(network, laddr)
	}
	if err != nil {
		switch {
		case connected && errors.Is(err, syscall.EACCES):
			return res, fmt.Errorf("cannot send to %s: %v (sending to a broadcast address needs --broadcast)", dst, unwrapOpError(err))
		case connected:
			return res, fmt.Errorf("cannot send to %s: %w", dst, unwrapOpError(err))
		}
		return res, fmt.Errorf("bind %s: %w", cfg.Bind, err)
	}
	defer c.Close()
	if err := applySendOptions(c, dst.Addr(), cfg.TTL, cfg.Broadcast); err != nil {
		return res, err
	}

	var nReplies atomic.Int64
	gotReply := make(chan struct{}, 1)
	replies := make(chan error, 1)
	readerDone := false
	go func() { replies <- printReplies(c, connected, dst, cfg.Out, cfg.Hex, &nReplies, gotReply) }()
	defer func() {
		c.Close()
		if !readerDone {
			if rerr := <-replies; rerr != nil && err == nil {
				err = rerr
			}
		}
		res.Replies = int(nReplies.Load())
	}()

	srcCtx, cancelSrc := context.WithCancel(ctx)
	defer cancelSrc() // unblocks the source if we stop early
	payloads, readErr := messageSource(srcCtx, cfg)
	first := true
	for p := range payloads {
		for range cfg.Count {
			if !first && cfg.Interval > 0 {
				if err := sleepCtx(ctx, cfg.Interval); err != nil {
					return res, err
				}
			}
			first = false
			select {
			case rerr := <-replies:
				// Port unreachable reported to the reader: further
				// datagrams would go nowhere.
				readerDone = true
				return res, rerr
			default:
			}
			var err error
			if connected {
				_, err = c.Write(p)
			} else {
				_, err = c.WriteToUDPAddrPort(p, dst)
			}
			if err != nil {
				if errors.Is(err, syscall.ECONNREFUSED) {
					return res, refusedError(dst)
				}
				if errors.Is(err, syscall.EACCES) && !cfg.Broadcast {
					err = fmt.Errorf("%w (sending to a broadcast address needs --broadcast)", err)
				}
				return res, err
			}
			res.Sent++
		}
	}
	if err := <-readErr; err != nil {
		return res, err
	}
	// A unicast peer such as an echo server answers each datagram once, so
	// the wait can end early; a broadcast or multicast may have any number
	// of responders, so those always wait the full time.
	oneResponder := !cfg.Broadcast && !dst.Addr().IsMulticast()
	timer := time.NewTimer(cfg.Wait)
	defer timer.Stop()
	for ctx.Err() == nil && cfg.Wait > 0 {
		if oneResponder && nReplies.Load() >= int64(res.Sent) {
			break
		}
		select {
		case <-timer.C:
			return res, nil
		case <-ctx.Done():
		case <-gotReply:
		case rerr := <-replies:
			// The reader stopped early: port unreachable, or a failure.
			readerDone = true
			return res, rerr
		}
	}
	return res, ctx.Err()
}

// refusedError is the ICMP port unreachable that a connected socket
// reports as ECONNREFUSED.
func refusedError(dst netip.AddrPort) error {
	return fmt.Errorf("%s: connection refused (ICMP port unreachable: nothing listens on that UDP port)", dst)
}

func unwrapOpError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// messageSource yields the payloads to send; the error channel gets one
// value once the source is exhausted.
func messageSource(ctx context.Context, cfg SendConfig) (<-chan []byte, <-chan error) {
	out := make(chan []byte)
	errc := make(chan error, 1)
	decode := func(s string) ([]byte, error) {
		if !cfg.Hex {
			return []byte(s), nil
		}
		b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("--hex: %q is not hex: %w", s, err)
		}
		return b, nil
	}
	go func() {
		defer close(out)
		emit := func(s string) error {
			p, err := decode(s)
			if err != nil {
				return err
			}
			select {
			case out <- p:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(cfg.Messages) > 0 {
			for _, m := range cfg.Messages {
				if err := emit(m); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
			return
		}
		if cfg.Stdin == nil {
			errc <- errors.New("no message given and no standard input")
			return
		}
		sc := bufio.NewScanner(cfg.Stdin)
		sc.Buffer(make([]byte, 4096), maxDatagram)
		for sc.Scan() {
			if err := emit(strings.TrimSuffix(sc.Text(), "\r")); err != nil {
				errc <- err
				return
			}
		}
		if errors.Is(sc.Err(), bufio.ErrTooLong) {
			errc <- fmt.Errorf("an input line is longer than the largest datagram (%d bytes)", maxDatagram-1)
			return
		}
		errc <- sc.Err()
	}()
	return out, errc
}

// printReplies prints datagrams until the socket is closed. On a
// connected socket a port unreachable ends it with refusedError.
func printReplies(c *net.UDPConn, connected bool, dst netip.AddrPort, out io.Writer, asHex bool, count *atomic.Int64, notify chan<- struct{}) error {
	buf := make([]byte, maxDatagram)
	line := make([]byte, 0, 256)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				if connected {
					return refusedError(dst)
				}
				// An unconnected socket is not told on most systems; where
				// it is, other responders may still answer.
				continue
			}
			return err
		}
		line = AppendDatagram(line[:0], from, buf[:n], asHex)
		if _, err := out.Write(line); err != nil {
			return err
		}
		count.Add(1)
		select {
		case notify <- struct{}{}:
		default:
		}
	}
}

func applySendOptions(c *net.UDPConn, dst netip.Addr, ttl int, broadcast bool) error {
	if dst.Is4() {
		if err := setBroadcast(c, broadcast); err != nil {
			return fmt.Errorf("set SO_BROADCAST: %w", err)
		}
	}
	if ttl == 0 {
		return nil
	}
	if ttl < 0 || ttl > 255 {
		return fmt.Errorf("ttl %d out of range 1-255", ttl)
	}
	var err error
	if dst.Is4() {
		err = ipv4.NewConn(c).SetTTL(ttl)
		if err == nil {
			err = ipv4.NewPacketConn(c).SetMulticastTTL(ttl)
		}
	} else {
		err = ipv6.NewConn(c).SetHopLimit(ttl)
		if err == nil {
			err = ipv6.NewPacketConn(c).SetMulticastHopLimit(ttl)
		}
	}
	if err != nil {
		return fmt.Errorf("set TTL: %w", err)
	}
	return nil
}

// ResolveUDP turns HOST[:PORT] into an address, using defPort when the
// port is missing. IPv4-mapped results are unmapped so the socket family
// follows what the user meant.
func ResolveUDP(ctx context.Context, addr string, defPort int) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = strings.Trim(addr, "[]"), strconv.Itoa(defPort)
	}
	if host == "" {
		return netip.AddrPort{}, fmt.Errorf("address %q has no host", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q: bad port %q", addr, port)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, lerr := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if lerr != nil {
			return netip.AddrPort{}, fmt.Errorf("resolve %s: %w", host, lerr)
		}
		ip = ips[0]
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
}

// parseBind accepts IP, IP:PORT, [IPv6]:PORT and :PORT.
func parseBind(s string) (netip.AddrPort, error) {
	if ip, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return netip.AddrPortFrom(ip, 0), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bind address %q: %w", s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bind address %q: bad port", s)
	}
	if host == "" {
		return netip.AddrPortFrom(netip.Addr{}, uint16(p)), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bind address %q: not an IP address", s)
	}
	return netip.AddrPortFrom(ip, uint16(p)), nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
