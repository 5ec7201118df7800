package udp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// ListenAll opens the UDP sockets for a listen address. A literal address
// gives one socket of its family. An empty or unspecified host (":41234")
// gives an IPv4 socket and an IPv6-only socket on the same port rather than
// one dual-stack socket, so that each family then gets its own batch loop with the
// matching golang.org/x/net package, and IPv4 peers are seen as IPv4.
// IPv6 is skipped when the host has no IPv6 stack.
func ListenAll(ctx context.Context, addr string) ([]*net.UDPConn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: bad port %q", addr, portStr)
	}
	var lc net.ListenConfig
	if host != "" {
		network := "udp"
		if ip, err := netip.ParseAddr(host); err == nil {
			network = "udp6"
			if ip.Is4() {
				network = "udp4"
			}
		}
		c, err := lc.ListenPacket(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return []*net.UDPConn{c.(*net.UDPConn)}, nil
	}
	// With port 0 the kernel picks the IPv4 port and that port may be taken
	// for IPv6, so try a few times.
	for attempt := 0; ; attempt++ {
		c4, err := lc.ListenPacket(ctx, "udp4", net.JoinHostPort("0.0.0.0", portStr))
		if err != nil {
			return nil, err
		}
		p := c4.LocalAddr().(*net.UDPAddr).Port
		c6, err := lc.ListenPacket(ctx, "udp6", net.JoinHostPort("::", strconv.Itoa(p)))
		switch {
		case err == nil:
			return []*net.UDPConn{c4.(*net.UDPConn), c6.(*net.UDPConn)}, nil
		case errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL):
			return []*net.UDPConn{c4.(*net.UDPConn)}, nil
		case port == 0 && errors.Is(err, syscall.EADDRINUSE) && attempt < 8:
			c4.Close()
		default:
			c4.Close()
			return nil, err
		}
	}
}

// addrPortOf converts a socket address from golang.org/x/net without
// allocating; IPv4-mapped addresses are unmapped.
func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ip, ok := netip.AddrFromSlice(ua.IP)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(ua.Port)), true
}
