// Package epoll is an epoll set whose wait parks in Go's own netpoller:
// the set's descriptor is itself registered with the runtime (it is
// readable while events are ready), so no OS thread blocks in epoll_wait.
// The server reads plain TCP clients from such sets, and so does the load
// generator.
package epoll

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Set is one epoll instance.
type Set struct {
	fd   int
	file *os.File
	rc   syscall.RawConn
}

// New creates a set.
func New() (*Set, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	f := os.NewFile(uintptr(fd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Set{fd: fd, file: f, rc: rc}, nil
}

// Ctl is epoll_ctl on the set.
func (s *Set) Ctl(op, fd int, ev *unix.EpollEvent) error {
	if err := unix.EpollCtl(s.fd, op, fd, ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// Wait fills events with what is ready, waiting until something is. It
// fails once the set is closed (os.ErrClosed) or epoll_wait fails.
func (s *Set) Wait(events []unix.EpollEvent) (int, error) {
	var n int
	var werr error
	err := s.rc.Read(func(uintptr) bool {
		n, werr = wait(s.fd, events)
		if werr == unix.EINTR {
			n, werr = 0, nil
		}
		return n > 0 || werr != nil
	})
	if err != nil {
		return 0, err
	}
	if werr != nil {
		return 0, os.NewSyscallError("epoll_wait", werr)
	}
	return n, nil
}

// Close closes the set; a Wait in progress returns.
func (s *Set) Close() error { return s.file.Close() }

// FD is the set's descriptor.
func (s *Set) FD() int { return s.fd }

// wait is epoll_wait with a zero timeout, made as a raw system call: it
// never blocks, so the scheduler need not be told (see package sysio).
// epoll_pwait with no signal mask is epoll_wait on every architecture.
func wait(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(unsafe.SliceData(events))), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
