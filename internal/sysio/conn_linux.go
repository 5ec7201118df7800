package sysio

import (
	"io"
	"net"
	"os"
	"syscall"
)

// WrapConn returns c with its Read and Write made as raw system calls on
// its non-blocking socket, waiting in Go's network poller (and so
// honouring the deadlines) when the socket has nothing to read or no
// room. Everything else is c's own. A connection that is not TCP comes
// back as it is.
func WrapConn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &conn{TCPConn: tc, rc: rc}
}

type conn struct {
	*net.TCPConn
	rc syscall.RawConn
}

func (c *conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = Read(fd, b)
			if rerr != syscall.EINTR {
				return rerr != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case rerr != nil:
		return 0, c.opError("read", os.NewSyscallError("read", rerr))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *conn) Write(b []byte) (int, error) {
	done := 0
	var werr error
	err := c.rc.Write(func(fd uintptr) bool {
		for done < len(b) {
			n, e := Write(fd, b[done:])
			switch e {
			case nil:
				done += n
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until the socket has room
			default:
				werr = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return done, c.opError("write", err)
	case werr != nil:
		return done, c.opError("write", os.NewSyscallError("write", werr))
	}
	return done, nil
}

// opError dresses err the way net.Conn's own methods do, so that callers
// that look for a timeout or a closed connection find it.
func (c *conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err // RawConn's "raw-read": say "read" as net.Conn does
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
