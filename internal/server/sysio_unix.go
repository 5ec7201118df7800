//go:build unix

package server

import "syscall"

// sysRead and sysWrite are the raw, non-blocking socket calls used by the
// poller and by greetNow.
func sysRead(fd uintptr, b []byte) (int, error)  { return syscall.Read(int(fd), b) }
func sysWrite(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
