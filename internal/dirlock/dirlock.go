// Package dirlock gives one process at a time a directory: an exclusive,
// advisory lock on a file in it, released by the kernel however the
// process ends (even kill -9), so a crash never leaves a stale lock.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileName is the lock file inside the directory.
const FileName = "lock"

// ErrHeld is matched (errors.Is) by the error of Acquire when another
// process holds the lock.
var ErrHeld = errors.New("directory is locked")

// HeldError says who holds the lock.
type HeldError struct {
	Dir string
	PID int // 0 if the holder's pid could not be read
}

func (e *HeldError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("data directory %s is in use by another netchat process (pid %d)", e.Dir, e.PID)
	}
	return fmt.Sprintf("data directory %s is in use by another netchat process", e.Dir)
}

func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Lock is a held directory lock.
type Lock struct {
	f *os.File
}

// Acquire creates dir if needed and takes its lock without waiting. When
// another process holds it the error is a *HeldError naming that
// process. The lock file keeps the holder's pid, for that message and for
// operators; it is left in place on Release (removing it would race with
// a process that opened it meanwhile).
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if held {
		pid := readPID(f)
		f.Close()
		return nil, &HeldError{Dir: dir, PID: pid}
	}
	// Only the holder writes the pid. A process that finds the lock held in
	// the instant between truncate and write reads no pid, and its message
	// names none.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up. It is safe to call more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
