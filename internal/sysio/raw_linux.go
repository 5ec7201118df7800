package sysio

import (
	"syscall"
	"unsafe"
)

// The calls, made raw (see the package comment). Each pointer becomes a
// uintptr in the argument list of the system call itself, the one place
// where Go keeps what it points to alive and in place (package unsafe,
// rule 4): converted anywhere else, a stack-allocated buffer could move
// before the kernel reads it.

func read(fd uintptr, b []byte) (uintptr, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return n, e
}

func write(fd uintptr, b []byte) (uintptr, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return n, e
}

func writev(fd uintptr, vecs []syscall.Iovec) (uintptr, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&vecs[0])), uintptr(len(vecs)))
	return n, e
}
