//go:build unix

package server

import (
	"syscall"
	"unsafe"
)

// rawIO says whether the raw, non-blocking socket calls below work here:
// the poller, the flushers and the early greeting use them.
const rawIO = true

// sysRead and sysWrite are the raw, non-blocking socket calls used by the
// poller, the flushers and greetNow.
func sysRead(fd uintptr, b []byte) (int, error)  { return syscall.Read(int(fd), b) }
func sysWrite(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }

// sysWritev writes the vectors of iov (at most maxIov, none empty) with
// one system call. On error it returns 0 and the error.
func sysWritev(fd uintptr, iov [][]byte) (int, error) {
	if len(iov) == 1 {
		n, err := syscall.Write(int(fd), iov[0])
		if err != nil {
			return 0, err
		}
		return n, nil
	}
	var vecs [maxIov]syscall.Iovec
	for i, b := range iov {
		vecs[i].Base = &b[0]
		vecs[i].SetLen(len(b))
	}
	n, _, errno := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&vecs[0])), uintptr(len(iov)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
