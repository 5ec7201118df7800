//go:build !unix

package mcast

import "syscall"

func reuseAddr(_, _ string, _ syscall.RawConn) error { return nil }
