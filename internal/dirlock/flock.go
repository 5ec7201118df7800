//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package dirlock

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Enforced says whether locks exclude other processes on this system.
const Enforced = true

// tryLock takes an exclusive flock without blocking; held reports that
// another open file description has it. flock, unlike fcntl locks, belongs
// to the open file, so a second Acquire in the same process is refused too.
func tryLock(f *os.File) (held bool, err error) {
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}

func unlock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }
