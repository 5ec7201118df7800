package mcast

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"netchat/internal/udp"
)

// SendEvery sends message() to the group every interval until ctx is done
// or, when count > 0, count datagrams were sent. It returns how many were
// sent. The first datagram goes out at once. sent, if not nil, sees each
// datagram after the kernel accepted it.
func (s *Sender) SendEvery(ctx context.Context, interval time.Duration, count int, message func() []byte, sent func([]byte)) (int, error) {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	n := 0
	for {
		p := message()
		if err := s.Send(p); err != nil {
			return n, err
		}
		if sent != nil {
			sent(p)
		}
		n++
		if count > 0 && n >= count {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, nil
		case <-t.C:
		}
	}
}

// Print writes one line per datagram (udp.FormatDatagram) until ctx is
// done or count > 0 datagrams were printed, then leaves the group and
// closes the listener.
func (l *Listener) Print(ctx context.Context, out io.Writer, asHex bool, count int) error {
	stop := context.AfterFunc(ctx, func() { _ = l.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 65536)
	var line []byte
	var err error
	for printed := 0; count <= 0 || printed < count; printed++ {
		n, from, rerr := l.ReadFrom(buf)
		if rerr != nil {
			// The past deadline set on cancel ends the read.
			var ne net.Error
			if ctx.Err() == nil || !errors.As(rerr, &ne) || !ne.Timeout() {
				err = rerr
			}
			break
		}
		line = udp.AppendDatagram(line[:0], from, buf[:n], asHex)
		if _, err = out.Write(line); err != nil {
			break
		}
	}
	return errors.Join(err, l.Close())
}
