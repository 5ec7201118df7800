package mcast

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"netchat/internal/mcast/mcasttest"
)

// TestMulticastListenerGetsOnlyItsOwnJoins: a socket bound to a group's
// port that joined nothing itself must not receive the group's traffic
// because some other socket joined it (Linux's IP_MULTICAST_ALL default).
// The listener that joined gets the datagram. Then the other socket joins
// too and a marker follows: the first datagram it reads must be the
// marker, which proves the earlier one never reached it, without waiting
// for "nothing" to arrive.
func TestMulticastListenerGetsOnlyItsOwnJoins(t *testing.T) {
	t.Parallel()
	lo := mcasttest.Loopback(t)
	group := mcasttest.GroupV4(t)
	joined, err := Listen(context.Background(), ListenerConfig{Group: group, Iface: "lo"})
	if err != nil {
		t.Fatal(err)
	}
	defer joined.Close()
	gaddr, err := ParseGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	lc := net.ListenConfig{Control: func(nw, addr string, rc syscall.RawConn) error {
		if err := reuseAddr(nw, addr, rc); err != nil {
			return err
		}
		return onlyJoined("udp4", rc)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", gaddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	s, err := NewSender(SenderConfig{Group: group, Iface: "lo", Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Send([]byte("for the joined one")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = joined.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := joined.ReadFrom(buf); err != nil || string(buf[:n]) != "for the joined one" {
		t.Fatalf("joined listener: %q, %v", buf[:n], err)
	}
	if err := ipv4.NewPacketConn(pc.(*net.UDPConn)).JoinGroup(lo, &net.UDPAddr{IP: gaddr.Addr().AsSlice()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Send([]byte("marker")); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, from, err := pc.ReadFrom(buf); err != nil || string(buf[:n]) != "marker" {
		t.Fatalf("the socket that joined late read %q from %v (%v) first, want the marker: it got the group's traffic before it joined", buf[:n], from, err)
	}
}
