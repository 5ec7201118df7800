package client

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// maxLine bounds the memory one server line can take; a longer line is
// shown in pieces rather than buffered without limit.
const maxLine = 64 << 10

// lineReader splits the server's output into lines. The server ends lines
// with CR LF; a bare LF is accepted too.
type lineReader struct {
	br  *bufio.Reader
	err error // returned after a last unterminated line
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, maxLine)}
}

// next returns the next line without its terminator. The slice is valid
// until the next call. At the end of the stream a last unterminated line
// is returned first, then (nil, err).
func (r *lineReader) next() ([]byte, error) {
	if r.err != nil {
		// Not read again: after a reset the socket reads as a clean EOF.
		return nil, r.err
	}
	b, err := r.br.ReadSlice('\n')
	switch {
	case err == nil:
		b = b[:len(b)-1]
		return bytes.TrimSuffix(b, []byte{'\r'}), nil
	case errors.Is(err, bufio.ErrBufferFull):
		return b, nil
	case len(b) > 0:
		r.err = err
		return b, nil
	}
	return nil, err
}

// buffered reports whether more input is already waiting, so output can be
// flushed once per burst instead of once per line.
func (r *lineReader) buffered() bool { return r.br.Buffered() > 0 }

// phase is how far the client has got in joining (SPEC §2.1).
type phase int

const (
	phaseGreeting phase = iota // nothing received yet
	phaseNickSent              // our --nick was sent; waiting for the verdict
	phaseChoosing              // the user types the nickname
	phaseJoined
)

// event is what a server line means for the join.
type event int

const (
	evNone event = iota
	evGreeting
	evRefused // the server turned the connection away before the greeting
	evNickRejected
	evJoined
)

// joinState follows the join handshake through the lines the server sends.
type joinState struct {
	nick  string
	phase phase
}

func (s *joinState) observe(line []byte) event {
	isError := bytes.HasPrefix(line, []byte("! "))
	switch s.phase {
	case phaseGreeting:
		if isError {
			return evRefused
		}
		// Any first line counts as the greeting, so --nick also works with
		// a server whose greeting reads differently.
		if s.nick != "" {
			s.phase = phaseNickSent
		} else {
			s.phase = phaseChoosing
		}
		return evGreeting
	case phaseNickSent, phaseChoosing:
		switch {
		case bytes.HasPrefix(line, []byte("* Welcome, ")):
			s.phase = phaseJoined
			return evJoined
		case isError:
			rejected := s.phase == phaseNickSent
			s.phase = phaseChoosing
			if rejected {
				return evNickRejected
			}
		}
	}
	return evNone
}

// serverMessage is the text of a "! ..." line, neutralised for an error
// message.
func serverMessage(line []byte) string {
	return string(Neutralize(nil, bytes.TrimPrefix(line, []byte("! "))))
}

// refusedError reports a connection the server turned away.
func refusedError(line []byte) error {
	return fmt.Errorf("the server refused the connection: %s", serverMessage(line))
}

// sendLine writes one line to the server.
func sendLine(w io.Writer, s string) error {
	_, err := io.WriteString(w, s+"\n")
	return err
}

// tlsHint reads the start of a session for the mark of a TLS port reached
// without --tls: a chat server speaks first (its greeting), a TLS server
// never does. So a TLS record where the greeting should be (an alert,
// 0x15, after our first line looked like a broken handshake), or a close
// without any greeting (Go's TLS server drops a plain first line without
// an alert), gets a hint instead of an empty, successful-looking session.
type tlsHint struct {
	plain   bool // not connected with TLS
	addr    string
	gotLine bool
}

func newTLSHint(conn net.Conn) *tlsHint {
	_, isTLS := conn.(*tls.Conn)
	return &tlsHint{plain: !isTLS, addr: conn.RemoteAddr().String()}
}

// line checks a line from the server; non-nil means the session is over.
func (h *tlsHint) line(l []byte) error {
	first := !h.gotLine
	h.gotLine = true
	if h.plain && first && looksLikeTLSRecord(l) {
		return fmt.Errorf("the server at %s answered with a TLS record, not a greeting: this looks like a TLS port: try --tls", h.addr)
	}
	return nil
}

// end turns the end of the connection (EOF or a read error) into the hint
// when not a single line came first.
func (h *tlsHint) end(err error) error {
	if h.plain && !h.gotLine && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
		return fmt.Errorf("the server at %s closed the connection without a greeting: this looks like a TLS port: try --tls", h.addr)
	}
	return nil
}

// looksLikeTLSRecord reports whether b starts like a TLS record header: an
// alert (0x15) or handshake (0x16) record of a TLS 1.x version (3, 1–4).
func looksLikeTLSRecord(b []byte) bool {
	return len(b) >= 3 && (b[0] == 0x15 || b[0] == 0x16) && b[1] == 0x03 && b[2] <= 0x04
}
