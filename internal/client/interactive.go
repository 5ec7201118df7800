package client

import (
	"bytes"
	"context"
	"crypto/tls"
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
	keys := &keyReader{r: tty}
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{keys, tty}, promptNick)
	setSize := func() {
		if w, h, err := size(); err == nil && w > 0 && h > 0 {
			_ = t.SetSize(w, h)
		}
	}
	setSize()

	how := "TCP"
	if tc, ok := conn.(*tls.Conn); ok {
		how = tls.VersionName(tc.ConnectionState().Version)
	}
	notice(t, fmt.Sprintf("-- connected to %s (%s); Ctrl-D ends your input, Ctrl-C quits", conn.RemoteAddr(), how))

	out := newSender(conn)
	defer out.closeInput() // lets the sender goroutine end
	srvDone := make(chan error, 1)
	go func() { srvDone <- terminalFromServer(conn, nick, t, out) }()

	inputs := make(chan input)
	quit := make(chan struct{})
	defer close(quit)
	go readKeys(t, keys, inputs, quit)

	// abort ends the session from this side and waits for the reader, so
	// that nothing writes to the terminal after we return.
	abort := func() {
		conn.Close()
		<-srvDone
	}
	for {
		select {
		case in := <-inputs:
			switch {
			case in.interrupt:
				abort()
				return nil
			case in.readErr != nil:
				abort()
				return fmt.Errorf("cannot read the terminal: %v", in.readErr)
			case in.err == io.EOF: // Ctrl-D on an empty line
				if out.closeInput() {
					t.SetPrompt("")
					notice(t, "-- input closed; waiting for the server to finish (Ctrl-C quits)")
				}
			case in.err != nil:
				// Only ErrPasteIndicator, and bracketed paste is off.
			case !out.send(in.line):
				notice(t, "-- not sent: your input is closed or the server is not reading")
			}
		case err := <-srvDone:
			if err == nil {
				notice(t, "-- the server closed the connection")
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
func notice(t *term.Terminal, s string) {
	_, _ = t.Write([]byte(s + "\n"))
}

// terminalFromServer shows the server's lines above the prompt until the
// connection ends, answering the greeting with nick if one was given.
func terminalFromServer(conn net.Conn, nick string, t *term.Terminal, out *sender) error {
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
				t.SetPrompt(promptChat)
			case evNickRejected:
				// The user picks another one at the prompt.
				t.SetPrompt(promptNick)
			case evRefused:
				refused = true
			}
			buf = append(Neutralize(buf[:0], line), '\n')
			if _, werr := t.Write(buf); werr != nil {
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

// input is the outcome of one Terminal.ReadLine.
type input struct {
	line      string
	err       error
	interrupt bool  // Ctrl-C was typed
	readErr   error // the terminal itself failed
}

// readKeys runs ReadLine until the terminal fails or Ctrl-C. It cannot be
// cancelled while blocked in a read; quit only stops it from delivering.
func readKeys(t *term.Terminal, keys *keyReader, inputs chan<- input, quit <-chan struct{}) {
	for {
		line, err := t.ReadLine()
		in := input{line: line, err: err}
		if err != nil {
			in.interrupt, in.readErr = keys.state()
		}
		select {
		case inputs <- in:
		case <-quit:
			return
		}
		if in.interrupt || in.readErr != nil {
			return
		}
	}
}

// keyReader watches the raw key stream for what term.Terminal does not
// report: it returns io.EOF for both Ctrl-C and Ctrl-D, and the same
// io.EOF if the terminal itself is gone.
type keyReader struct {
	r         io.Reader
	mu        sync.Mutex
	interrupt bool
	err       error
}

func (k *keyReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	k.mu.Lock()
	if bytes.IndexByte(p[:n], 0x03) >= 0 {
		k.interrupt = true
	}
	if err != nil && k.err == nil {
		k.err = err
	}
	k.mu.Unlock()
	return n, err
}

func (k *keyReader) state() (interrupt bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.interrupt, k.err
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
