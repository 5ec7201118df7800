//go:build !linux

package mcast

import "syscall"

// onlyJoined: other systems deliver only the groups a socket joined.
func onlyJoined(string, syscall.RawConn) error { return nil }
