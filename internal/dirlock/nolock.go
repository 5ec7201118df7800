//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package dirlock

import "os"

// Enforced says whether locks exclude other processes on this system. Here
// (Windows and other systems without flock) Acquire only records the pid:
// keeping two servers off one directory is the operator's job.
const Enforced = false

func tryLock(*os.File) (bool, error) { return false, nil }

func unlock(*os.File) error { return nil }
