package sysio

import "syscall"

// call3 makes a system call that cannot block (see the package comment).
func call3(trap, a1, a2, a3 uintptr) (uintptr, syscall.Errno) {
	r, _, e := syscall.RawSyscall(trap, a1, a2, a3)
	return r, e
}
