//go:build !unix

package server

import "errors"

// Without raw socket calls there is no poller, no flusher and no early
// greeting; the callers fall back to the net.Conn paths.
const rawIO = false

var errNoRawIO = errors.New("raw socket I/O not available on this system")

func sysRead(uintptr, []byte) (int, error)     { return 0, errNoRawIO }
func sysWrite(uintptr, []byte) (int, error)    { return 0, errNoRawIO }
func sysWritev(uintptr, [][]byte) (int, error) { return 0, errNoRawIO }
