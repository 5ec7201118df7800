package loadgen

import (
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sock is a client socket after the handshake, taken out of Go's network
// poller: only the bench's own epoll set watches it. With the net.Conn
// kept, Go's poller would also get an event for every segment the server
// sends (and the server would wake two epoll sets per write instead of
// the one chatload's connections cost it).
//
// The descriptor is in blocking mode, so a sender's write blocks while the
// server does not read, as a net.Conn write would; reads never block, they
// use MSG_DONTWAIT and happen only after epoll reported input.
type sock struct{ fd int }

// detach duplicates c's descriptor, closes c (which takes the original
// out of Go's poller) and returns the duplicate. c is closed in any case.
func detach(c *net.TCPConn) (*sock, error) {
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(orig uintptr) {
		fd, derr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("dup", derr)
	}
	c.Close() // before blocking mode: the original must be out of Go's poller
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	// Receive times, for the read delay; a kernel without them just
	// leaves that figure out.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	return &sock{fd: fd}, nil
}

// write writes all of b, blocking while the socket buffer is full.
func (s *sock) write(b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(s.fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("write", err)
		}
		b = b[n:]
	}
	return nil
}

// tryWrite writes what of b the socket takes now, for control frames that
// must never block the poller, and returns how much that was.
func (s *sock) tryWrite(b []byte) int {
	n, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)),
		unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, 0, 0)
	if errno != 0 {
		return 0
	}
	return int(n)
}

// rxState is a poller's recvmsg scratch: kept off the stack so that the
// pointers handed to the kernel stay put, and reused, so that nothing is
// allocated per read.
type rxState struct {
	msg unix.Msghdr
	iov unix.Iovec
	oob [64]byte
}

// recv reads what is there without waiting (EAGAIN if nothing is) and
// returns, with it, the kernel's receive time of the newest data read
// (wall clock, ns; 0 if the kernel gave none): the difference to the time
// the bench handles the data is how long it waited in the bench's socket.
func (s *sock) recv(b []byte, rx *rxState) (n int, kernelTime int64, err error) {
	rx.iov.Base = unsafe.SliceData(b)
	rx.iov.SetLen(len(b))
	rx.msg.Iov = &rx.iov
	rx.msg.SetIovlen(1)
	rx.msg.Control = &rx.oob[0]
	rx.msg.SetControllen(len(rx.oob))
	for {
		r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&rx.msg)), unix.MSG_DONTWAIT)
		switch e {
		case 0:
			return int(r), rx.kernelTime(), nil
		case unix.EINTR:
			continue
		}
		return 0, 0, e
	}
}

// kernelTime finds the SCM_TIMESTAMPNS message of the last recvmsg.
func (rx *rxState) kernelTime() int64 {
	l := int(rx.msg.Controllen)
	h := unix.CmsgLen(0)
	if l < unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
		return 0
	}
	cm := (*unix.Cmsghdr)(unsafe.Pointer(&rx.oob[0]))
	if cm.Level != unix.SOL_SOCKET || cm.Type != unix.SCM_TIMESTAMPNS {
		return 0
	}
	return (*unix.Timespec)(unsafe.Pointer(&rx.oob[h])).Nano()
}

// shutdown ends the connection both ways and wakes a writer blocked on
// it; the descriptor stays valid until close.
func (s *sock) shutdown() { _ = unix.Shutdown(s.fd, unix.SHUT_RDWR) }

func (s *sock) close() { _ = unix.Close(s.fd) }
