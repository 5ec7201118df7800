// Package mcast sends to and receives from IP multicast groups, with the
// socket options of Node's dgram (setMulticastTTL, setMulticastLoopback,
// addMembership/dropMembership, addSourceSpecificMembership) set through
// golang.org/x/net/ipv4 and ipv6.
package mcast

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ParseGroup parses GROUP:PORT ("239.1.2.3:5000", "[ff02::1234%lo]:5000")
// and rejects anything that is not a multicast address, before any socket
// exists.
func ParseGroup(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("group %q: want GROUP:PORT (IPv6 as [GROUP%%ZONE]:PORT)", s)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("group %q: %q is not an IP address", s, host)
	}
	ip = ip.Unmap()
	if !ip.IsMulticast() {
		return netip.AddrPort{}, fmt.Errorf("group %q: %s is not a multicast address (IPv4 224.0.0.0/4, IPv6 ff00::/8)", s, ip.WithZone(""))
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("group %q: bad port %q", s, port)
	}
	return netip.AddrPortFrom(ip, uint16(p)), nil
}

// LookupInterface finds an interface by name or by one of its addresses;
// "" means none (the system's choice).
func LookupInterface(s string) (*net.Interface, error) {
	if s == "" {
		return nil, nil
	}
	if ifi, err := net.InterfaceByName(s); err == nil {
		return ifi, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return nil, fmt.Errorf("no interface named %q", s)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifs {
		addrs, err := ifs[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if pfx, ok := a.(*net.IPNet); ok {
				if ia, ok := netip.AddrFromSlice(pfx.IP); ok && ia.Unmap() == ip.Unmap().WithZone("") {
					return &ifs[i], nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no interface has address %s", ip)
}

func interfaceIPv4(ifi *net.Interface) (netip.Addr, bool) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		if pfx, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(pfx.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), true
			}
		}
	}
	return netip.Addr{}, false
}

// resolve picks the interface for a group: --iface wins, then the IPv6
// zone. Interface- and link-local IPv6 groups cannot do without one.
func resolve(group netip.AddrPort, iface string) (netip.AddrPort, *net.Interface, error) {
	if iface == "" {
		iface = group.Addr().Zone()
	}
	ifi, err := LookupInterface(iface)
	if err != nil {
		return group, nil, err
	}
	a := group.Addr()
	if a.Is6() {
		scope := a.As16()[1] & 0x0f
		if scope <= 2 {
			if ifi == nil {
				return group, nil, fmt.Errorf("group %s is interface- or link-local: name an interface (--iface or [%s%%IFACE])", a, a)
			}
			a = a.WithZone(ifi.Name)
		} else {
			a = a.WithZone("")
		}
	}
	// No check of the interface's MULTICAST flag here: Linux joins groups
	// and delivers multicast on a loopback without it (common in
	// containers), so only the kernel's answer to the operation itself
	// decides, and its error is what the user sees (kernelRefused).
	return netip.AddrPortFrom(a, group.Port()), ifi, nil
}

// ifaceName names the interface in error messages.
func ifaceName(ifi *net.Interface) string {
	if ifi == nil {
		return "the system's default interface"
	}
	return "interface " + ifi.Name
}

// kernelRefused says which operation the kernel refused on which
// interface, with the kernel's own reason (the errno's text, without the
// Go wrapping around it). The errno stays in the chain for errors.Is.
func kernelRefused(op string, ifi *net.Interface, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno
	}
	return fmt.Errorf("%s on %s: the kernel refused: %w", op, ifaceName(ifi), err)
}

// Options are the multicast socket options as the kernel reports them.
// (The outgoing interface is not among them: Linux reports IP_MULTICAST_IF
// as an address, which is 0.0.0.0 when it was set by interface index.)
type Options struct {
	TTL      int
	Loopback bool
}

// SenderConfig configures NewSender.
type SenderConfig struct {
	Group string // GROUP:PORT
	Iface string // NAME or ADDR; default: the system's choice (routing table)
	// TTL of the datagrams (hop limit for IPv6); 0 means 1, which keeps
	// them on the local network.
	TTL int
	// Loopback delivers the datagrams to listeners on this host too.
	Loopback bool
	// Bind is the local source address (optional, IP:PORT).
	Bind string
}

// Sender sends datagrams to a multicast group.
type Sender struct {
	c   *net.UDPConn
	dst netip.AddrPort
	ifi *net.Interface // nil: the system's choice
	p4  *ipv4.PacketConn
	p6  *ipv6.PacketConn
}

// NewSender opens a socket with the options of cfg applied.
func NewSender(cfg SenderConfig) (*Sender, error) {
	group, err := ParseGroup(cfg.Group)
	if err != nil {
		return nil, err
	}
	group, ifi, err := resolve(group, cfg.Iface)
	if err != nil {
		return nil, err
	}
	return newSender(cfg, group, ifi)
}

// newSender is NewSender for a resolved group and interface.
func newSender(cfg SenderConfig, group netip.AddrPort, ifi *net.Interface) (*Sender, error) {
	var err error
	if cfg.TTL == 0 {
		cfg.TTL = 1
	}
	if cfg.TTL < 0 || cfg.TTL > 255 {
		return nil, fmt.Errorf("ttl %d out of range 1-255", cfg.TTL)
	}
	network := "udp4"
	if group.Addr().Is6() {
		network = "udp6"
	}
	var laddr *net.UDPAddr
	if cfg.Bind != "" {
		if laddr, err = net.ResolveUDPAddr(network, cfg.Bind); err != nil {
			return nil, fmt.Errorf("bind address: %w", err)
		}
	} else if ifi != nil && group.Addr().Is4() {
		// Linux picks the IPv4 source by scope, not by the multicast
		// interface: on lo it would use another interface's address.
		// Receivers use the source to reply or connect, so it must be an
		// address of the interface the datagram leaves by.
		if a, ok := interfaceIPv4(ifi); ok {
			laddr = &net.UDPAddr{IP: a.AsSlice()}
		}
	}
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	s := &Sender{c: c, dst: group, ifi: ifi}
	if group.Addr().Is4() {
		s.p4 = ipv4.NewPacketConn(c)
		err = errors.Join(
			s.p4.SetMulticastTTL(cfg.TTL),
			s.p4.SetMulticastLoopback(cfg.Loopback),
		)
		if err == nil && ifi != nil {
			if err = s.p4.SetMulticastInterface(ifi); err != nil {
				err = kernelRefused("setting the outgoing multicast interface (IP_MULTICAST_IF)", ifi, err)
			}
		}
	} else {
		s.p6 = ipv6.NewPacketConn(c)
		err = errors.Join(
			s.p6.SetMulticastHopLimit(cfg.TTL),
			s.p6.SetMulticastLoopback(cfg.Loopback),
		)
		if err == nil && ifi != nil {
			if err = s.p6.SetMulticastInterface(ifi); err != nil {
				err = kernelRefused("setting the outgoing multicast interface (IPV6_MULTICAST_IF)", ifi, err)
			}
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("multicast socket options: %w", err)
	}
	return s, nil
}

// Send sends one datagram to the group. A refusal names the interface
// and the kernel's reason, e.g. no multicast route on it.
func (s *Sender) Send(p []byte) error {
	if _, err := s.c.WriteToUDPAddrPort(p, s.dst); err != nil {
		return kernelRefused("sending to "+s.dst.String(), s.ifi, err)
	}
	return nil
}

// Group is the destination, with the zone of link-local IPv6 groups.
func (s *Sender) Group() netip.AddrPort { return s.dst }

// LocalAddr is the source address of the datagrams.
func (s *Sender) LocalAddr() netip.AddrPort { return s.c.LocalAddr().(*net.UDPAddr).AddrPort() }

// Options reads the multicast options back from the socket.
func (s *Sender) Options() (Options, error) {
	var o Options
	var err, err2 error
	if s.p4 != nil {
		o.TTL, err = s.p4.MulticastTTL()
		o.Loopback, err2 = s.p4.MulticastLoopback()
	} else {
		o.TTL, err = s.p6.MulticastHopLimit()
		o.Loopback, err2 = s.p6.MulticastLoopback()
	}
	return o, errors.Join(err, err2)
}

// Close closes the socket.
func (s *Sender) Close() error { return s.c.Close() }

// ListenerConfig configures Listen.
type ListenerConfig struct {
	Group string // GROUP:PORT
	Iface string // NAME or ADDR; default: the system's choice
	// Source, when set, joins only for datagrams from this address
	// (source-specific multicast, RFC 4607).
	Source string
}

// Listener is a socket that is a member of a multicast group.
type Listener struct {
	c      *net.UDPConn
	group  netip.AddrPort
	ifi    *net.Interface
	source net.IP
	p4     *ipv4.PacketConn
	p6     *ipv6.PacketConn
}

// Listen binds GROUP:PORT and joins the group. Binding the group address
// rather than the wildcard keeps out unicast datagrams and other groups'
// traffic to the same port; SO_REUSEADDR lets several listeners on one
// host share the group.
func Listen(ctx context.Context, cfg ListenerConfig) (*Listener, error) {
	group, err := ParseGroup(cfg.Group)
	if err != nil {
		return nil, err
	}
	group, ifi, err := resolve(group, cfg.Iface)
	if err != nil {
		return nil, err
	}
	return listen(ctx, cfg, group, ifi)
}

// listen is Listen for a resolved group and interface.
func listen(ctx context.Context, cfg ListenerConfig, group netip.AddrPort, ifi *net.Interface) (*Listener, error) {
	var src net.IP
	if cfg.Source != "" {
		sa, err := netip.ParseAddr(cfg.Source)
		if err != nil || sa.Unmap().Is4() != group.Addr().Is4() {
			return nil, fmt.Errorf("source %q: want an IP address of the group's family", cfg.Source)
		}
		src = net.IP(sa.Unmap().AsSlice())
	}
	network := "udp4"
	if group.Addr().Is6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(nw, addr string, rc syscall.RawConn) error {
		if err := reuseAddr(nw, addr, rc); err != nil {
			return err
		}
		return onlyJoined(network, rc)
	}}
	pc, err := lc.ListenPacket(ctx, network, group.String())
	if err != nil {
		return nil, err
	}
	l := &Listener{c: pc.(*net.UDPConn), group: group, ifi: ifi, source: src}
	gaddr := &net.UDPAddr{IP: net.IP(group.Addr().AsSlice())}
	if group.Addr().Is4() {
		l.p4 = ipv4.NewPacketConn(l.c)
		if src != nil {
			err = l.p4.JoinSourceSpecificGroup(ifi, gaddr, &net.UDPAddr{IP: src})
		} else {
			err = l.p4.JoinGroup(ifi, gaddr)
		}
	} else {
		l.p6 = ipv6.NewPacketConn(l.c)
		if src != nil {
			err = l.p6.JoinSourceSpecificGroup(ifi, gaddr, &net.UDPAddr{IP: src})
		} else {
			err = l.p6.JoinGroup(ifi, gaddr)
		}
	}
	if err != nil {
		l.c.Close()
		err = kernelRefused("joining "+group.Addr().WithZone("").String(), ifi, err)
		if errors.Is(err, syscall.ENODEV) && ifi == nil {
			err = fmt.Errorf("%w (no route for multicast: name an interface with --iface)", err)
		}
		return nil, err
	}
	return l, nil
}

// Group is the joined group and port.
func (l *Listener) Group() netip.AddrPort { return l.group }

// ReadFrom reads one datagram.
func (l *Listener) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	return l.c.ReadFromUDPAddrPort(b)
}

// SetReadDeadline bounds ReadFrom calls.
func (l *Listener) SetReadDeadline(t time.Time) error { return l.c.SetReadDeadline(t) }

// Close leaves the group (dropMembership) and closes the socket.
func (l *Listener) Close() error {
	gaddr := &net.UDPAddr{IP: net.IP(l.group.Addr().AsSlice())}
	var err error
	switch {
	case l.p4 != nil && l.source != nil:
		err = l.p4.LeaveSourceSpecificGroup(l.ifi, gaddr, &net.UDPAddr{IP: l.source})
	case l.p4 != nil:
		err = l.p4.LeaveGroup(l.ifi, gaddr)
	case l.source != nil:
		err = l.p6.LeaveSourceSpecificGroup(l.ifi, gaddr, &net.UDPAddr{IP: l.source})
	default:
		err = l.p6.LeaveGroup(l.ifi, gaddr)
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return errors.Join(err, l.c.Close())
}
