//go:build !linux

package sysio

import "net"

// WrapConn returns c: raw calls are made on Linux only.
func WrapConn(c net.Conn) net.Conn { return c }
