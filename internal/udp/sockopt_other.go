//go:build !unix

package udp

import (
	"errors"
	"net"
)

func setBroadcast(_ *net.UDPConn, on bool) error {
	if !on {
		return nil
	}
	return errors.New("SO_BROADCAST is not supported on this platform")
}
