//go:build unix && !linux

package sysio

import (
	"syscall"
	"unsafe"
)

// The calls, made the ordinary way: raw calls were measured on Linux only.
// As there, each pointer becomes a uintptr in the system call's own
// argument list (package unsafe, rule 4).

func read(fd uintptr, b []byte) (uintptr, syscall.Errno) {
	n, _, e := syscall.Syscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return n, e
}

func write(fd uintptr, b []byte) (uintptr, syscall.Errno) {
	n, _, e := syscall.Syscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return n, e
}

func writev(fd uintptr, vecs []syscall.Iovec) (uintptr, syscall.Errno) {
	n, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&vecs[0])), uintptr(len(vecs)))
	return n, e
}
