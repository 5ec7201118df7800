package mcast

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// onlyJoined makes a listening socket receive only the groups it joined
// itself. Linux's default (IP_MULTICAST_ALL on) delivers to a socket bound
// to a group's address the traffic of that group and port joined by any
// socket on any interface, which would defeat --iface.
func onlyJoined(network string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if network == "udp6" {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0)
			if serr == unix.ENOPROTOOPT {
				serr = nil // kernels before 4.20 do not have it for IPv6
			}
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
	})
	if err != nil {
		return err
	}
	return serr
}
