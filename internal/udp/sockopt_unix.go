//go:build unix

package udp

import (
	"net"
	"syscall"
)

// setBroadcast sets SO_BROADCAST. Go turns it on for every UDP socket;
// netchat turns it off unless asked, as Node does, so that a mistyped
// address cannot broadcast to a whole subnet.
func setBroadcast(c *net.UDPConn, on bool) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, boolInt(on))
	})
	if err != nil {
		return err
	}
	return serr
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// noBroadcastBeforeConnect is a net.Dialer Control that turns SO_BROADCAST
// off before connect(2): the kernel checks it there, and a socket
// connected to a broadcast address while Go's default had it on would
// keep sending to it.
func noBroadcastBeforeConnect(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 0)
	}); err != nil {
		return err
	}
	return serr
}
