//go:build !unix

package udp

import (
	"errors"
	"net"
	"syscall"
)

func setBroadcast(_ *net.UDPConn, on bool) error {
	if !on {
		return nil
	}
	return errors.New("SO_BROADCAST is not supported on this platform")
}

// noBroadcastBeforeConnect would turn SO_BROADCAST off before connect(2);
// there is no portable way here, so broadcast is refused (or not) as the
// system decides.
var noBroadcastBeforeConnect func(network, address string, rc syscall.RawConn) error
