// Package ipclass tells what kind of IP address a string holds: the family
// (like Node's net.isIP) and, for multicast addresses, the scope.
package ipclass

import "net/netip"

// Family is the address family of a classified string.
type Family int

// Families, in the order of Node's net.isIP results (0, 4, 6).
const (
	NotIP Family = iota
	IPv4
	IPv6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	default:
		return "not an IP address"
	}
}

// Result is what Classify found out about a string.
type Result struct {
	Family Family
	Addr   netip.Addr // zero when Family is NotIP
	// Scope names the multicast scope and its range; empty for unicast.
	Scope string
}

// Classify parses s as a literal IP address. A textual IPv6 form is IPv6
// even when it embeds an IPv4 address (::ffff:1.2.3.4), as in Node.
func Classify(s string) Result {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return Result{}
	}
	r := Result{Addr: a, Family: IPv4}
	if a.Is6() {
		r.Family = IPv6
	}
	r.Scope = MulticastScope(a)
	return r
}

var (
	v4LocalControl = netip.MustParsePrefix("224.0.0.0/24")
	v4AdminScoped  = netip.MustParsePrefix("239.0.0.0/8")
)

// MulticastScope describes the scope of a multicast address, "" for any
// other address. IPv4 follows the tutorial's three ranges (RFC 5771, RFC
// 2365); IPv6 reads the scope field of the address (RFC 4291 §2.7).
func MulticastScope(a netip.Addr) string {
	if !a.IsMulticast() {
		return ""
	}
	if a.Is4() || a.Is4In6() {
		a4 := a.Unmap()
		switch {
		case v4LocalControl.Contains(a4):
			return "multicast, local (224.0.0.0–224.0.0.255, reserved for routing protocols)"
		case v4AdminScoped.Contains(a4):
			return "multicast, administratively scoped (239.0.0.0–239.255.255.255, organisation-local)"
		default:
			return "multicast, globally scoped (224.0.1.0–238.255.255.255)"
		}
	}
	names := [16]string{
		0x1: "interface-local", 0x2: "link-local", 0x3: "realm-local",
		0x4: "admin-local", 0x5: "site-local", 0x8: "organization-local",
		0xe: "global",
	}
	scope := a.As16()[1] & 0x0f
	name := names[scope]
	if name == "" {
		name = "reserved or unassigned"
	}
	return "multicast, " + name + " scope"
}
