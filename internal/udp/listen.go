package udp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// DefaultListenPort is where `udp listen` binds when not told otherwise.
const DefaultListenPort = 41235

// Listener prints every datagram its sockets receive.
type Listener struct {
	conns []*net.UDPConn
}

// NewListener binds addr (see ListenAll for the empty-host case). Setting
// SO_BROADCAST is not needed to receive broadcasts; binding the wildcard
// address is: a socket bound to 127.0.0.1 does not get datagrams sent to
// 127.255.255.255.
func NewListener(ctx context.Context, addr string) (*Listener, error) {
	conns, err := ListenAll(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &Listener{conns: conns}, nil
}

// Addrs returns the bound addresses.
func (l *Listener) Addrs() []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(l.conns))
	for _, c := range l.conns {
		out = append(out, c.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	return out
}

// Close closes the sockets; Print returns when they are closed.
func (l *Listener) Close() error {
	var errs []error
	for _, c := range l.conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Print writes one line per datagram to out (see FormatDatagram) until ctx
// is done or, when count > 0, count datagrams were printed. It closes the
// listener before returning.
func (l *Listener) Print(ctx context.Context, out io.Writer, asHex bool, count int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		printed int
		wg      sync.WaitGroup
		errs    = make([]error, len(l.conns))
	)
	for i, c := range l.conns {
		wg.Go(func() {
			buf := make([]byte, maxDatagram)
			var line []byte
			for {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					if errors.Is(err, syscall.ECONNREFUSED) {
						continue
					}
					if !errors.Is(err, net.ErrClosed) {
						errs[i] = err
						cancel()
					}
					return
				}
				line = AppendDatagram(line[:0], from, buf[:n], asHex)
				mu.Lock()
				done := count > 0 && printed >= count
				if !done {
					_, err = out.Write(line)
					printed++
					done = count > 0 && printed >= count
				}
				mu.Unlock()
				if err != nil {
					errs[i] = err
					cancel()
					return
				}
				if done {
					cancel()
					return
				}
			}
		})
	}
	<-ctx.Done()
	l.Close()
	wg.Wait()
	return errors.Join(errs...)
}
