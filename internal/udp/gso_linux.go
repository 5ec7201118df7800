//go:build linux

package udp

import (
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoOOBSize is the space of one UDP_SEGMENT control message.
var gsoOOBSize = unix.CmsgSpace(2)

// gsoSupported reports whether the kernel knows UDP_SEGMENT (Linux 4.18+).
func gsoSupported(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return false
	}
	return serr == nil
}

// segmentCmsg writes a UDP_SEGMENT control message for segments of size
// bytes into b, which must be gsoOOBSize long and 8-byte aligned.
func segmentCmsg(b []byte, size int) []byte {
	b = b[:gsoOOBSize]
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(size))
	return b
}

// gsoRefused tells whether a send error means "no GSO here" (no checksum
// offload, segment larger than the path MTU, old kernel), after which the
// loop stops coalescing and sends datagrams one by one.
func gsoRefused(err error) bool {
	return errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EINVAL) ||
		errors.Is(err, syscall.ENOPROTOOPT) || errors.Is(err, syscall.EOPNOTSUPP)
}
