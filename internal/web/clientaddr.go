package web

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr is the address of the client behind r: the TCP peer, unless
// the peer is one of Config.TrustedProxies, in which case X-Forwarded-For
// is read from the right, skipping trusted proxies, and the first address
// that is not one is the client (nginx's real_ip_recursive). If every
// address in the header is a trusted proxy, the left-most one is the
// client. A header that is missing or malformed where it is read gives the
// peer: a bad header never fails a request and never lets an untrusted
// party choose its address.
//
// Addresses from the header usually carry no port; the result then has
// port 0. IPv4-mapped IPv6 addresses are returned as IPv4, and zones are
// dropped, so that per-address limits count one client once.
func (s *Server) ClientAddr(r *http.Request) netip.AddrPort {
	peer := peerAddr(r)
	return clientAddr(peer, r.Header.Values("X-Forwarded-For"), s.proxies)
}

func peerAddr(r *http.Request) netip.AddrPort {
	if c := NetConn(r.Context()); c != nil {
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			return normalize(ap)
		}
	}
	ap, _ := netip.ParseAddrPort(r.RemoteAddr)
	return normalize(ap)
}

func normalize(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is ClientAddr on its parts: the peer, the X-Forwarded-For
// field lines in the order they came, and the (masked) trusted prefixes.
func clientAddr(peer netip.AddrPort, xff []string, proxies []netip.Prefix) netip.AddrPort {
	if !peer.IsValid() || !trusted(peer.Addr(), proxies) {
		return peer
	}
	client := peer
	// Several field lines are one comma-separated list, in order.
	for i := len(xff) - 1; i >= 0; i-- {
		list := xff[i]
		for {
			var elem string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				list, elem = list[:j], list[j+1:]
			} else {
				elem, list = list, ""
			}
			ap, ok := parseForwarded(strings.Trim(elem, " \t"))
			if !ok {
				return peer
			}
			client = ap
			if !trusted(ap.Addr(), proxies) {
				return client
			}
			if list == "" {
				break
			}
		}
	}
	return client
}

// parseForwarded reads one X-Forwarded-For element: an IPv4 or IPv6
// address, optionally with a port (IPv6 then in brackets).
func parseForwarded(s string) (netip.AddrPort, bool) {
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		// Bracketless IPv6 only without brackets at all, and brackets
		// only around IPv6.
		bracketed := strings.HasPrefix(s, "[")
		if bracketed != strings.HasSuffix(s, "]") || bracketed && !a.Is6() {
			return netip.AddrPort{}, false
		}
		return normalize(netip.AddrPortFrom(a, 0)), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap), true
	}
	return netip.AddrPort{}, false
}

// ParsePrefixes reads a --http-trusted-proxy list: comma-separated CIDR
// prefixes (10.0.0.0/8, fd00::/8) or single addresses (taken as /32 or
// /128). Empty elements are ignored.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if a, err := netip.ParseAddr(s); err == nil {
				if a.Zone() != "" {
					return nil, fmt.Errorf("trusted proxy %q: an address with a zone cannot be matched", s)
				}
				a = a.Unmap()
				out = append(out, netip.PrefixFrom(a, a.BitLen()))
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is not an address or CIDR prefix like 10.0.0.0/8 or fd00::/8", s)
			}
			if p.Addr().Is4In6() {
				// ::ffff:10.0.0.0/104 would never match: peers are unmapped.
				bits := p.Bits() - 96
				if bits < 0 {
					return nil, fmt.Errorf("trusted proxy %q: an IPv4-mapped prefix needs at least /96", s)
				}
				p = netip.PrefixFrom(p.Addr().Unmap(), bits)
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
}
