//go:build !linux

package udp

import (
	"errors"
	"net"

	"golang.org/x/net/ipv4"
)

type mmsgReader struct{}

func newMmsgReader(*net.UDPConn, int) (*mmsgReader, error) {
	return nil, errors.New("recvmmsg is Linux only")
}

func (*mmsgReader) ReadBatch([]ipv4.Message, int) (int, error) {
	return 0, errors.New("recvmmsg is Linux only")
}
