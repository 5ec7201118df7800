//go:build !linux

package udp

import "net"

var gsoOOBSize = 0

func gsoSupported(*net.UDPConn) bool { return false }

func segmentCmsg([]byte, int) []byte { panic("UDP GSO is Linux only") }

func gsoRefused(error) bool { return true }
