//go:build unix

package sysio

import "syscall"

// Available says whether the calls below work on this system.
const Available = true

// MaxIov bounds the vectors of one Writev (the kernel's IOV_MAX is 1024).
const MaxIov = 64

// Read reads from the non-blocking descriptor fd into b. It returns
// syscall.EAGAIN when nothing is there yet, and (0, nil) at end of file.
func Read(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return result(read(fd, b))
}

// Write writes what the non-blocking descriptor fd takes of b, returning
// syscall.EAGAIN when it takes nothing.
func Write(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return result(write(fd, b))
}

// Writev writes the vectors of iov (at most MaxIov, none empty) with one
// system call, like Write.
func Writev(fd uintptr, iov [][]byte) (int, error) {
	if len(iov) == 1 {
		return Write(fd, iov[0])
	}
	if len(iov) == 0 {
		return 0, nil
	}
	var vecs [MaxIov]syscall.Iovec
	n := min(len(iov), MaxIov)
	for i, b := range iov[:n] {
		vecs[i].Base = &b[0]
		vecs[i].SetLen(len(b))
	}
	return result(writev(fd, vecs[:n]))
}

func result(n uintptr, errno syscall.Errno) (int, error) {
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
