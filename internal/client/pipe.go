package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
)

// Pipe is the client for scripts: every line of in is sent to the server,
// and every line from the server is written to out (neutralised, ending in
// LF). When in ends, the client half-closes the connection and keeps
// printing until the server closes it; that normal end returns nil.
//
// With a nick, the client answers the greeting with it and sends nothing
// from in until the server has accepted it, so that a refused nickname
// cannot turn the first input line into a nickname attempt; a refusal is
// returned as an error. Pipe closes conn before it returns.
func Pipe(ctx context.Context, conn net.Conn, nick string, in io.Reader, out io.Writer) error {
	defer conn.Close()
	joined := make(chan struct{})
	srvDone := make(chan error, 1)
	go func() { srvDone <- pipeFromServer(conn, nick, out, joined) }()

	inDone := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		if nick != "" {
			select {
			case <-joined:
			case <-stop:
				return
			}
		}
		inDone <- pipeToServer(conn, in)
	}()

	for {
		select {
		case err := <-srvDone:
			return err
		case err := <-inDone:
			if err != nil {
				conn.Close()
				<-srvDone
				return fmt.Errorf("cannot read standard input: %v", unwrapOp(err))
			}
			inDone = nil
		case <-ctx.Done():
			conn.Close()
			<-srvDone
			return errInterrupted
		}
	}
}

func pipeFromServer(conn net.Conn, nick string, out io.Writer, joined chan<- struct{}) error {
	st := joinState{nick: nick}
	lr := newLineReader(conn)
	bw := bufio.NewWriter(out)
	hint := newTLSHint(conn)
	var buf []byte
	accepted := false
	for {
		line, err := lr.next()
		if line != nil {
			if herr := hint.line(line); herr != nil {
				return herr
			}
			ev := st.observe(line)
			buf = append(Neutralize(buf[:0], line), '\n')
			if _, werr := bw.Write(buf); werr != nil {
				return fmt.Errorf("cannot write output: %v", unwrapOp(werr))
			}
			switch ev {
			case evGreeting:
				if nick != "" {
					// A failed write shows up as a read error just after.
					_ = sendLine(conn, nick)
				}
			case evJoined:
				accepted = true
				close(joined)
			case evRefused:
				_ = bw.Flush()
				return refusedError(line)
			case evNickRejected:
				_ = bw.Flush()
				return fmt.Errorf("the server refused the nickname %q: %s", nick, serverMessage(line))
			}
			if lr.buffered() {
				continue
			}
		}
		if ferr := bw.Flush(); ferr != nil {
			return fmt.Errorf("cannot write output: %v", unwrapOp(ferr))
		}
		if herr := hint.end(err); herr != nil {
			return herr
		}
		if err == io.EOF {
			if nick != "" && !accepted {
				// Nothing of stdin was sent: not a normal end.
				return fmt.Errorf("the server closed the connection before accepting the nickname %q", nick)
			}
			return nil
		}
		if err != nil {
			return readError(err)
		}
	}
}

// pipeToServer sends in as it arrives, so a slow producer (tail -f) is
// relayed line by line, and half-closes at its end. Write errors are not
// reported: the server went away, and the reader says how.
func pipeToServer(conn net.Conn, in io.Reader) error {
	lt := &lastByte{r: in}
	if _, err := io.Copy(conn, lt); err != nil {
		if lt.err != nil {
			return lt.err
		}
		return nil
	}
	if lt.n > 0 && lt.last != '\n' {
		// An unterminated last line is still a line.
		if _, err := conn.Write([]byte{'\n'}); err != nil {
			return nil
		}
	}
	_ = closeWrite(conn)
	return nil
}

// lastByte remembers the last byte read and any read error, which io.Copy
// does not tell apart from write errors.
type lastByte struct {
	r    io.Reader
	n    int64
	last byte
	err  error
}

func (l *lastByte) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if n > 0 {
		l.n += int64(n)
		l.last = p[n-1]
	}
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}
