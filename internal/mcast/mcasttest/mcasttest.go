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
	"testing"
	"time"

	"golang.org/x/net/ipv6"
)

// Loopback returns the loopback interface, or skips the test when it
// cannot carry multicast. CI enables it with `ip link set lo multicast on`.
func Loopback(t testing.TB) *net.Interface {
	t.Helper()
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no interface named lo (%v): multicast tests need Linux loopback", err)
	}
	if ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagUp == 0 {
		t.Skip("lo has no MULTICAST flag; enable it with: ip link set lo multicast on")
	}
	return ifi
}

// LoopbackIPv6 is Loopback for IPv6 tests. It skips unless a datagram
// sent to a link-local group on lo actually arrives: many kernels have no
// IPv6 multicast route on lo, or do not loop IPv6 multicast back on it.
func LoopbackIPv6(t testing.TB) *net.Interface {
	t.Helper()
	ifi := Loopback(t)
	group := &net.UDPAddr{IP: net.ParseIP("ff02::7e57:0:1"), Zone: "lo"}
	r, err := net.ListenMulticastUDP("udp6", ifi, group)
	if err != nil {
		t.Skipf("IPv6 multicast unavailable on lo: %v", err)
	}
	defer r.Close()
	s, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("IPv6 unavailable on loopback: %v", err)
	}
	defer s.Close()
	p := ipv6.NewPacketConn(s)
	if err := p.SetMulticastInterface(ifi); err != nil {
		t.Skipf("IPv6 multicast unavailable on lo: %v", err)
	}
	_ = p.SetMulticastLoopback(true)
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	if _, err := s.WriteToUDP(token, &net.UDPAddr{IP: group.IP, Zone: "lo", Port: r.LocalAddr().(*net.UDPAddr).Port}); err != nil {
		t.Skipf("IPv6 multicast cannot be sent on lo (%v); it may need: ip -6 route add multicast ff00::/8 dev lo table local", err)
	}
	_ = r.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 64)
	for {
		n, _, err := r.ReadFromUDP(buf)
		if err != nil {
			t.Skipf("IPv6 multicast sent on lo does not come back on this kernel (%v)", err)
		}
		if string(buf[:n]) == string(token) {
			return ifi
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
