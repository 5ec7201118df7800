//go:build !linux

package loadgen

import (
	"errors"
	"net"
)

// sock: without epoll pollers, connections stay net.Conns.
type sock struct{}

func detach(*net.TCPConn) (*sock, error) { return nil, errors.ErrUnsupported }

func (*sock) write([]byte) error       { return errors.ErrUnsupported }
func (*sock) tryWrite([]byte) int      { return 0 }
func (*sock) recv([]byte) (int, error) { return 0, errors.ErrUnsupported }
func (*sock) shutdown()                {}
func (*sock) close()                   {}
