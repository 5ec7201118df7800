//go:build !unix

package sysio

import "errors"

// Available says whether the calls below work on this system: without
// them there is no poller, no flusher and no early greeting, and the
// callers use the net.Conn paths.
const Available = false

// MaxIov bounds the vectors of one Writev.
const MaxIov = 64

var errUnavailable = errors.New("raw socket I/O not available on this system")

func Read(uintptr, []byte) (int, error)     { return 0, errUnavailable }
func Write(uintptr, []byte) (int, error)    { return 0, errUnavailable }
func Writev(uintptr, [][]byte) (int, error) { return 0, errUnavailable }
