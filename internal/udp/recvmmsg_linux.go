//go:build linux

package udp

import (
	"encoding/binary"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// mmsgReader is ReadBatch without allocation: golang.org/x/net allocates
// a *net.UDPAddr and its IP for every datagram it reads, this keeps one
// per batch slot and overwrites it. The addresses are valid until the
// next ReadBatch, which is all the echo loop needs.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	addrs []net.UDPAddr
	ips   [][16]byte

	flags, n int
	errno    syscall.Errno
	readFn   func(fd uintptr) bool // bound once: no closure per call
	zones    map[uint32]string
}

func newMmsgReader(c *net.UDPConn, size int) (*mmsgReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &mmsgReader{
		rc:    rc,
		hdrs:  make([]unix.Mmsghdr, size),
		iovs:  make([]unix.Iovec, size),
		names: make([]unix.RawSockaddrInet6, size),
		addrs: make([]net.UDPAddr, size),
		ips:   make([][16]byte, size),
	}
	r.readFn = r.recvmmsg
	return r, nil
}

func (r *mmsgReader) recvmmsg(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(r.n), uintptr(r.flags), 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e == syscall.EAGAIN {
			return false // wait in the poller for readability
		}
		r.n, r.errno = int(n), e
		return true
	}
}

// ReadBatch reads up to len(ms) datagrams into ms[i].Buffers[0].
func (r *mmsgReader) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	n := min(len(ms), len(r.hdrs))
	for i := range n {
		b := ms[i].Buffers[0]
		r.iovs[i].Base = unsafe.SliceData(b)
		r.iovs[i].SetLen(len(b))
		h := &r.hdrs[i].Hdr
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Namelen = uint32(unsafe.Sizeof(r.names[i]))
		h.Control = nil
		h.SetControllen(0)
		h.Flags = 0
	}
	r.n, r.flags, r.errno = n, flags, 0
	if err := r.rc.Read(r.readFn); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, &net.OpError{Op: "read", Net: "udp", Err: r.errno}
	}
	for i := range r.n {
		ms[i].N = int(r.hdrs[i].Len)
		ms[i].NN = 0
		ms[i].Flags = int(r.hdrs[i].Hdr.Flags)
		ms[i].Addr = r.sockaddr(i)
	}
	return r.n, nil
}

// sockaddr decodes slot i's source address into its reusable UDPAddr.
func (r *mmsgReader) sockaddr(i int) net.Addr {
	raw := &r.names[i]
	a := &r.addrs[i]
	switch raw.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		copy(r.ips[i][:4], sa.Addr[:])
		a.IP = r.ips[i][:4]
		a.Port = int(binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:]))
		a.Zone = ""
	case unix.AF_INET6:
		r.ips[i] = raw.Addr
		a.IP = r.ips[i][:]
		a.Port = int(binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&raw.Port))[:]))
		// Link-local peers need their zone for the reply to be routable.
		a.Zone = ""
		if raw.Scope_id != 0 {
			a.Zone = r.zoneName(raw.Scope_id)
		}
	default:
		return nil
	}
	return a
}

// zoneName maps an interface index to its name, cached: interfaces are
// few, and looking one up allocates.
func (r *mmsgReader) zoneName(index uint32) string {
	if z, ok := r.zones[index]; ok {
		return z
	}
	z := ""
	if ifi, err := net.InterfaceByIndex(int(index)); err == nil {
		z = ifi.Name
	}
	if r.zones == nil {
		r.zones = map[uint32]string{}
	}
	r.zones[index] = z
	return z
}
