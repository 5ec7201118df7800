// Package mcasttest gives tests a multicast-capable loopback interface and
// groups of their own, so that no test sends multicast beyond this host and
// parallel tests (even in other packages) do not hear each other.
package mcasttest

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Loopback returns the loopback interface, or skips the test when the
// kernel itself refuses IPv4 multicast on it. The interface's MULTICAST
// flag is not consulted: Linux joins and delivers on a loopback without it
// (containers and VMs often have such a lo), and so do the commands.
func Loopback(t testing.TB) *net.Interface {
	t.Helper()
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no interface named lo (%v): multicast tests need Linux loopback", err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		t.Skip("interface lo is down")
	}
	v4Once.Do(func() { v4Err = roundTrip("udp4", ifi, net.IPv4(239, 255, 126, 87), net.IPv4(127, 0, 0, 1)) })
	if v4Err != nil {
		t.Skipf("the kernel refuses IPv4 multicast on lo: %v", v4Err)
	}
	return ifi
}

// LoopbackIPv6 is Loopback for IPv6 tests. It skips unless the kernel
// lets a datagram to a link-local group go out on lo and come back: many
// have no IPv6 multicast route on lo (sendto: network is unreachable),
// and the tests must not add one.
func LoopbackIPv6(t testing.TB) *net.Interface {
	t.Helper()
	ifi, err := LoopbackIPv6Refused(t)
	if err != nil {
		t.Skipf("the kernel refuses IPv6 multicast on lo: %v", err)
	}
	return ifi
}

// LoopbackIPv6Refused returns lo and, if the kernel refuses IPv6
// multicast on it, its error, for tests that check how a command reports
// that refusal before they skip.
func LoopbackIPv6Refused(t testing.TB) (*net.Interface, error) {
	t.Helper()
	ifi := Loopback(t)
	v6Once.Do(func() { v6Err = roundTrip("udp6", ifi, net.ParseIP("ff02::7e57:0:1"), net.IPv6loopback) })
	return ifi, v6Err
}

var (
	v4Once, v6Once sync.Once
	v4Err, v6Err   error
)

// roundTrip joins group on ifi, sends a random token to it from src and
// reads it back. Loopback delivery happens inside sendto, so the datagram
// is queued when the send returns; the deadline only guards against a
// kernel that drops it.
func roundTrip(network string, ifi *net.Interface, group, src net.IP) error {
	zone := ""
	if group.To4() == nil {
		zone = ifi.Name
	}
	r, err := net.ListenMulticastUDP(network, ifi, &net.UDPAddr{IP: group, Zone: zone})
	if err != nil {
		return fmt.Errorf("join %v: %w", group, err)
	}
	defer r.Close()
	s, err := net.ListenUDP(network, &net.UDPAddr{IP: src})
	if err != nil {
		return err
	}
	defer s.Close()
	if network == "udp6" {
		p := ipv6.NewPacketConn(s)
		if err := p.SetMulticastInterface(ifi); err != nil {
			return err
		}
		_ = p.SetMulticastLoopback(true)
	} else {
		p := ipv4.NewPacketConn(s)
		if err := p.SetMulticastInterface(ifi); err != nil {
			return err
		}
		_ = p.SetMulticastLoopback(true)
	}
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	if _, err := s.WriteToUDP(token, &net.UDPAddr{IP: group, Zone: zone, Port: r.LocalAddr().(*net.UDPAddr).Port}); err != nil {
		return err
	}
	_ = r.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for {
		n, _, err := r.ReadFromUDP(buf)
		if err != nil {
			return fmt.Errorf("a datagram sent to %v on lo did not come back: %w", group, err)
		}
		if string(buf[:n]) == string(token) {
			return nil
		}
	}
}

// GroupV4 returns a random administratively scoped group (239.255.0.0/16,
// the IPv4 organisation-local scope) and a free port, as "GROUP:PORT".
func GroupV4(t testing.TB) string {
	t.Helper()
	var b [2]byte
	for {
		_, _ = rand.Read(b[:])
		if b != [2]byte{80, 88} && b[1] != 0 && b[1] != 255 { // not the discovery group
			break
		}
	}
	return fmt.Sprintf("239.255.%d.%d:%d", b[0], b[1], freePort(t, "udp4"))
}

// GroupV6 returns a random link-local group on lo, "[ff02::X%lo]:PORT".
func GroupV6(t testing.TB) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("[ff02::7e57:%x:%x%%lo]:%d", binary.BigEndian.Uint16(b[:2]), binary.BigEndian.Uint16(b[2:]), freePort(t, "udp6"))
}

func freePort(t testing.TB, network string) int {
	t.Helper()
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Joined reports whether the kernel lists group as joined on interface
// ifname, from /proc/net/igmp or /proc/net/igmp6 (Linux only).
func Joined(t testing.TB, ifname string, group netip.Addr) bool {
	t.Helper()
	group = group.WithZone("")
	if group.Is4() {
		b, err := os.ReadFile("/proc/net/igmp")
		if err != nil {
			t.Skipf("cannot read /proc/net/igmp: %v", err)
		}
		g := group.As4()
		// The kernel prints the address as a native-endian (here: little
		// endian) 32-bit hex number.
		want := fmt.Sprintf("%02X%02X%02X%02X", g[3], g[2], g[1], g[0])
		dev := ""
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			if !strings.HasPrefix(line, "\t") && len(f) >= 2 {
				dev = f[1]
				continue
			}
			if dev == ifname && f[0] == want {
				return true
			}
		}
		return false
	}
	b, err := os.ReadFile("/proc/net/igmp6")
	if err != nil {
		t.Skipf("cannot read /proc/net/igmp6: %v", err)
	}
	g := group.As16()
	want := fmt.Sprintf("%x", g[:])
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == ifname && f[2] == want {
			return true
		}
	}
	return false
}
