package mcast

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"netchat/internal/mcast/mcasttest"
)

// TestListenerGetsOnlyItsOwnJoins: a socket bound to a group's port that
// joined nothing itself must not receive the group's traffic because some
// other socket joined it (Linux's IP_MULTICAST_ALL default). The listener
// that joined gets the datagram; the one that did not gets nothing.
func TestListenerGetsOnlyItsOwnJoins(t *testing.T) {
	t.Parallel()
	mcasttest.Loopback(t)
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
	_ = pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, from, err := pc.ReadFrom(buf); err == nil {
		t.Fatalf("a socket that joined nothing received %q from %v", buf[:n], from)
	}
}
