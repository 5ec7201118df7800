package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/term"
)

// Prompts tell the user what the line being typed will be taken for.
const (
	promptNick = "nickname> "
	promptChat = "> "
)

// Interactive is the client for a human at a terminal. tty is the terminal
// (keys in, output out) and fd its descriptor, which is put in raw mode for
// the session and restored however the session ends. Lines from the server
// appear above the line being typed without disturbing it. Ctrl-D on an
// empty line half-closes the connection (the server then finishes and
// closes); Ctrl-C closes it at once. Interactive closes conn before it
// returns; a normal end by the server, or Ctrl-C, returns nil.
func Interactive(ctx context.Context, conn net.Conn, nick string, tty io.ReadWriter, fd int) (err error) {
	defer conn.Close()
	old, err := term.MakeRaw(fd)
	if err != nil {
		return fmt.Errorf("cannot put the terminal into raw mode: %v", err)
	}
	defer func() {
		// Erase the prompt line so the shell's prompt starts on a clean one.
		_, _ = io.WriteString(tty, "\r\x1b[K")
		if rerr := term.Restore(fd, old); rerr != nil && err == nil {
			err = fmt.Errorf("cannot restore the terminal: %v", rerr)
		}
	}()
	resize, stop := notifyResize()
	defer stop()
	return converse(ctx, conn, nick, tty, func() (int, int, error) { return term.GetSize(fd) }, resize)
}

// converse runs the session on a terminal that is already in raw mode (or
// is not a real terminal at all, in tests). size reports the window size
// and resize signals when it changed.
func converse(ctx context.Context, conn net.Conn, nick string, tty io.ReadWriter,
	size func() (w, h int, err error), resize <-chan os.Signal) error {
	ed := newEditor(tty, tty, promptNick)
	setSize := func() {
		if w, _, err := size(); err == nil && w > 0 {
			ed.setSize(w)
		}
	}
	setSize()

	how := "TCP"
	if tc, ok := conn.(*tls.Conn); ok {
		how = tls.VersionName(tc.ConnectionState().Version)
	}
	notice(ed, fmt.Sprintf("-- connected to %s (%s); Ctrl-D ends your input, Ctrl-C quits", conn.RemoteAddr(), how))

	out := newSender(conn)
	defer out.closeInput() // lets the sender goroutine end
	srvDone := make(chan error, 1)
	go func() { srvDone <- terminalFromServer(conn, nick, ed, out) }()

	inputs := make(chan input)
	quit := make(chan struct{})
	defer close(quit)
	go readKeys(ed, inputs, quit)

	// abort ends the session from this side and waits for the reader, so
	// that nothing writes to the terminal after we return.
	abort := func() {
		conn.Close()
		<-srvDone
	}
	for {
		select {
		case in := <-inputs:
			var tty ttyError
			switch {
			case errors.Is(in.err, errCtrlC):
				abort()
				return nil
			case errors.As(in.err, &tty):
				abort()
				return fmt.Errorf("cannot read the terminal: %v", tty.err)
			case in.err == io.EOF: // Ctrl-D on an empty line
				if out.closeInput() {
					ed.setPrompt("")
					notice(ed, "-- input closed; waiting for the server to finish (Ctrl-C quits)")
				}
			case !out.send(in.line):
				notice(ed, "-- not sent: your input is closed or the server is not reading")
			}
		case err := <-srvDone:
			if err == nil {
				notice(ed, "-- the server closed the connection")
			}
			return err
		case <-ctx.Done():
			abort()
			return errInterrupted
		case <-resize:
			setSize()
		}
	}
}

// notice shows a line from the client itself; they start with "-- " so
// they cannot be mistaken for the server's "* " and "! " lines.
func notice(ed *editor, s string) {
	_, _ = ed.Write([]byte(s + "\n"))
}

// terminalFromServer shows the server's lines above the prompt until the
// connection ends, answering the greeting with nick if one was given.
func terminalFromServer(conn net.Conn, nick string, ed *editor, out *sender) error {
	st := joinState{nick: nick}
	lr := newLineReader(conn)
	hint := newTLSHint(conn)
	var buf []byte
	for {
		line, err := lr.next()
		if line != nil {
			if herr := hint.line(line); herr != nil {
				return herr
			}
			var refused bool
			switch st.observe(line) {
			case evGreeting:
				if nick != "" {
					out.send(nick)
				}
			case evJoined:
				ed.setPrompt(promptChat)
			case evNickRejected:
				// The user picks another one at the prompt.
				ed.setPrompt(promptNick)
			case evRefused:
				refused = true
			}
			buf = append(Neutralize(buf[:0], line), '\n')
			if _, werr := ed.Write(buf); werr != nil {
				return fmt.Errorf("cannot write to the terminal: %v", werr)
			}
			if refused {
				return refusedError(line)
			}
		}
		if herr := hint.end(err); herr != nil {
			return herr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return readError(err)
		}
	}
}

// input is the outcome of one readLine.
type input struct {
	line string
	err  error // io.EOF (Ctrl-D), errCtrlC or a ttyError
}

// readKeys reads lines until the terminal fails or Ctrl-C. It cannot be
// cancelled while blocked in a read; quit only stops it from delivering.
func readKeys(ed *editor, inputs chan<- input, quit <-chan struct{}) {
	for {
		line, err := ed.readLine()
		select {
		case inputs <- input{line: line, err: err}:
		case <-quit:
			return
		}
		var tty ttyError
		if errors.Is(err, errCtrlC) || errors.As(err, &tty) {
			return
		}
	}
}

// sender writes typed lines to the server on its own goroutine, so that a
// server that stops reading cannot freeze the keyboard (Ctrl-C must always
// work), and half-closes after the last line once input is closed.
type sender struct {
	mu     sync.Mutex
	q      chan string
	closed bool
}

func newSender(conn net.Conn) *sender {
	s := &sender{q: make(chan string, 256)}
	go func() {
		for l := range s.q {
			if sendLine(conn, l) != nil {
				// The reader reports why; drain so send never blocks.
				for range s.q {
				}
				return
			}
		}
		_ = closeWrite(conn)
	}()
	return s
}

// send queues a line; false if input is closed or the queue is full.
func (s *sender) send(line string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	select {
	case s.q <- line:
		return true
	default:
		return false
	}
}

// closeInput half-closes after the queued lines; false if already done.
func (s *sender) closeInput() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closed = true
	close(s.q)
	return true
}
