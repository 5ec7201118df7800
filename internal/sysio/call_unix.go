//go:build unix && !linux

package sysio

import "syscall"

// call3 makes a system call the ordinary way: raw calls were measured on
// Linux only.
func call3(trap, a1, a2, a3 uintptr) (uintptr, syscall.Errno) {
	r, _, e := syscall.Syscall(trap, a1, a2, a3)
	return r, e
}
