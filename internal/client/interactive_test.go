package client

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ptyClient is the client running interactively on a pseudo-terminal: the
// test types into the master side and reads the screen output from it.
type ptyClient struct {
	t      *testing.T
	ptmx   *os.File
	tty    *os.File
	screen *syncBuffer
	before unix.Termios
	wait   func() error
}

func startPTY(t *testing.T, ctx context.Context, cfg Config) *ptyClient {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	// The master is closed first: that hangs up the terminal, which ends
	// the client's key reader if it is still blocked.
	t.Cleanup(func() { tty.Close() })
	t.Cleanup(func() { ptmx.Close() })
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyClient{t: t, ptmx: ptmx, tty: tty, screen: newSyncBuffer(), before: *before}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			p.screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	cfg.Timeout = waitTimeout
	p.wait = runAsync(t, func() error { return Run(ctx, cfg, tty, tty) })
	return p
}

func (p *ptyClient) typeKeys(s string) {
	p.t.Helper()
	if _, err := p.ptmx.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// after returns the screen output after the last occurrence of marker.
func (p *ptyClient) after(marker string) string {
	s := p.screen.String()
	i := strings.LastIndex(s, marker)
	if i < 0 {
		return ""
	}
	return s[i+len(marker):]
}

// checkRestored fails unless the terminal modes are what they were before
// the client started.
func (p *ptyClient) checkRestored() {
	p.t.Helper()
	now, err := unix.IoctlGetTermios(int(p.tty.Fd()), unix.TCGETS)
	if err != nil {
		p.t.Fatal(err)
	}
	if *now != p.before {
		p.t.Errorf("terminal not restored:\nbefore %+v\nafter  %+v", p.before, *now)
	}
	if now.Lflag&unix.ICANON == 0 || now.Lflag&unix.ECHO == 0 {
		p.t.Errorf("terminal left in raw mode: lflag %#x", now.Lflag)
	}
}

// TestInteractiveTyping drives the terminal UI through a pty: incoming
// lines appear above a half-typed line, which is redrawn intact and then
// sent; Ctrl-D half-closes, the server finishes, and the client exits
// cleanly with the terminal restored.
func TestInteractiveTyping(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice := s.join(t, "alice")
	p := startPTY(t, t.Context(), Config{Addr: s.addr, Nick: "bob"})

	p.screen.waitContains(t, "* Welcome, bob! 2 users online.")
	alice.waitFor("* bob joined")
	p.typeKeys("hel")
	p.screen.waitContains(t, "> hel")

	alice.send("incoming while you type")
	p.screen.waitContains(t, "alice: incoming while you type\r\n")
	// The line went above the prompt, and the prompt came back with the
	// half-typed text after it.
	waitScreen(t, p, func() bool { return strings.Contains(p.after("alice: incoming while you type"), "> hel") })

	p.typeKeys("lo\r")
	alice.waitFor("bob: hello")

	p.typeKeys("\x04") // Ctrl-D on an empty line
	p.screen.waitContains(t, "-- input closed")
	alice.waitFor("* bob left")
	if err := p.wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Written before Run returned, but the pty may hand it over later.
	p.screen.waitContains(t, "-- the server closed the connection")
	p.checkRestored()
}

// TestInteractiveCtrlC quits at once, with a half-typed line, and restores
// the terminal.
func TestInteractiveCtrlC(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice := s.join(t, "alice")
	p := startPTY(t, t.Context(), Config{Addr: s.addr, Nick: "carol"})
	p.screen.waitContains(t, "* Welcome, carol!")
	p.typeKeys("not sent")
	p.screen.waitContains(t, "> not sent")
	p.typeKeys("\x03")
	if err := p.wait(); err != nil {
		t.Fatalf("Run after Ctrl-C: %v", err)
	}
	alice.waitFor("* carol left")
	p.checkRestored()
}

// TestInteractiveNickRetry: a taken --nick is shown, and the user types
// another at the nickname prompt.
func TestInteractiveNickRetry(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice := s.join(t, "alice")
	p := startPTY(t, t.Context(), Config{Addr: s.addr, Nick: "Alice"})
	p.screen.waitContains(t, "! nickname taken: Alice")
	waitScreen(t, p, func() bool { return strings.Contains(p.after("! nickname taken: Alice"), promptNick) })
	p.typeKeys("dave\r")
	p.screen.waitContains(t, "* Welcome, dave!")
	alice.waitFor("* dave joined")
	p.typeKeys("\x03")
	if err := p.wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	p.checkRestored()
}

// TestInteractiveSignal: a signal (here the context the CLI cancels on
// SIGTERM) ends the session with the terminal restored.
func TestInteractiveSignal(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	p := startPTY(t, ctx, Config{Addr: s.addr, Nick: "erin"})
	p.screen.waitContains(t, "* Welcome, erin!")
	cancel()
	if err := p.wait(); !errors.Is(err, errInterrupted) {
		t.Fatalf("err = %v, want interrupted", err)
	}
	p.checkRestored()
}

// TestInteractiveServerGone: the server going away ends the session, with
// the terminal restored.
func TestInteractiveServerGone(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	p := startPTY(t, t.Context(), Config{Addr: s.addr, Nick: "frank"})
	p.screen.waitContains(t, "* Welcome, frank!")
	s.srv.Close()
	if err := p.wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	p.checkRestored()
}

func waitScreen(t *testing.T, p *ptyClient, cond func() bool) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for !cond() {
		select {
		case <-p.screen.changed:
		case <-deadline:
			t.Fatalf("screen never matched; got:\n%q", p.screen.String())
		}
	}
}
