//go:build !unix

package client

import "os"

// notifyResize never fires where there is no SIGWINCH; the size read at
// start-up is kept.
func notifyResize() (<-chan os.Signal, func()) {
	return nil, func() {}
}
