package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// screen is a minimal model of a terminal, enough for what the editor and
// the line printing send: printable characters (wide ones take two cells,
// combining marks join the cell before), CR, LF, erase to end of line
// (ESC [ K) and cursor forward (ESC [ n C). Rows do not wrap. Anything
// else fails the test, so the model never silently disagrees; an
// incomplete sequence at the end (output still arriving) is left unread.
type screen struct {
	t    *testing.T
	rows [][]string // cells; "" is the right half of a wide character
	row  int
	col  int
	cols int
}

func newScreen(t *testing.T, cols int) *screen {
	return &screen{t: t, rows: [][]string{nil}, cols: cols}
}

func (s *screen) feed(out string) {
	s.t.Helper()
	for i := 0; i < len(out); {
		switch c := out[i]; {
		case c == '\r':
			s.col = 0
			i++
		case c == '\n':
			s.row++
			if s.row == len(s.rows) {
				s.rows = append(s.rows, nil)
			}
			i++
		case c == 0x1b:
			j := i + 2
			for j < len(out) && out[j] >= '0' && out[j] <= '9' {
				j++
			}
			if j >= len(out) {
				return
			}
			if out[i+1] != '[' {
				s.t.Fatalf("unexpected escape at %d in %q", i, out)
			}
			n, _ := strconv.Atoi(out[i+2 : j])
			switch out[j] {
			case 'K':
				if s.col < len(s.rows[s.row]) {
					s.rows[s.row] = s.rows[s.row][:s.col]
				}
			case 'C':
				s.col = min(s.col+max(n, 1), s.cols-1)
			default:
				s.t.Fatalf("unexpected sequence %q", out[i:j+1])
			}
			i = j + 1
		case c < 0x20:
			s.t.Fatalf("unexpected control %#x at %d in %q", c, i, out)
		default:
			if !utf8.FullRuneInString(out[i:]) {
				return
			}
			r, size := utf8.DecodeRuneInString(out[i:])
			i += size
			line := s.rows[s.row]
			w := runeWidth(r)
			if w == 0 {
				if s.col > 0 && s.col <= len(line) {
					line[s.col-1] += string(r)
				}
				continue
			}
			for len(line) < s.col+w {
				line = append(line, " ")
			}
			line[s.col] = string(r)
			if w == 2 {
				line[s.col+1] = ""
			}
			s.col += w
			s.rows[s.row] = line
		}
	}
}

// text is a row as text, without trailing blanks.
func (s *screen) text(row int) string {
	return strings.TrimRight(strings.Join(s.rows[row], ""), " ")
}

// line is the cursor's row as text.
func (s *screen) line() string { return s.text(s.row) }

// cursorText is the text left of the cursor on its row.
func (s *screen) cursorText() string {
	line := s.rows[s.row]
	if s.col < len(line) {
		line = line[:s.col]
	}
	return strings.Join(line, "")
}

// fakeKeys hands the editor one chunk per Read, like a terminal that
// sends each key sequence in one write.
type fakeKeys struct{ chunks []string }

func (k *fakeKeys) Read(p []byte) (int, error) {
	if len(k.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, k.chunks[0])
	k.chunks[0] = k.chunks[0][n:]
	if k.chunks[0] == "" {
		k.chunks = k.chunks[1:]
	}
	return n, nil
}

type outBuf struct{ strings.Builder }

// TestEditorKeys: typed keys, as chunks a terminal sends (some split
// across reads), give the line that is returned, and the screen shows the
// prompt line with the cursor where the next character goes.
func TestEditorKeys(t *testing.T) {
	t.Parallel()
	const (
		left  = "\x1b[D"
		right = "\x1b[C"
	)
	tests := []struct {
		name   string
		keys   []string
		line   string // returned by readLine
		screen string // the prompt line before Enter
		before string // text left of the cursor before Enter
	}{
		{"plain", []string{"hello"}, "hello", "> hello", "> hello"},
		{"wide characters, insert in the middle", []string{"日本語abc", left, left, left, left, "X"}, "日本X語abc", "> 日本X語abc", "> 日本X"},
		{"wide characters, backspace", []string{"日本語", "\x7f", "x"}, "日本x", "> 日本x", "> 日本x"},
		{"combining mark moves with its letter", []string{"e\u0301a", left, left, "X"}, "Xe\u0301a", "> Xe\u0301a", "> X"},
		{"backspace removes a letter and its mark", []string{"ae\u0301", "\x7f"}, "a", "> a", "> a"},
		{"Home End CSI H F", []string{"bc", "\x1b[H", "a", "\x1b[F", "d"}, "abcd", "> abcd", "> abcd"},
		{"Home End CSI 1~ 4~", []string{"bc", "\x1b[1~", "a", "\x1b[4~", "d"}, "abcd", "> abcd", "> abcd"},
		{"Home End CSI 7~ 8~", []string{"bc", "\x1b[7~", "a", "\x1b[8~", "d"}, "abcd", "> abcd", "> abcd"},
		{"Home End SS3 H F", []string{"bc", "\x1bOH", "a", "\x1bOF", "d"}, "abcd", "> abcd", "> abcd"},
		{"Home End Ctrl-A Ctrl-E", []string{"bc", "\x01", "a", "\x05", "d"}, "abcd", "> abcd", "> abcd"},
		{"Home End with modifiers", []string{"bc", "\x1b[1;2H", "a", "\x1b[1;5F", "d"}, "abcd", "> abcd", "> abcd"},
		{"sequences split across reads", []string{"bc", "\x1b", "[", "1", "~", "a", "\x1bO", "F", "d"}, "abcd", "> abcd", "> abcd"},
		{"UTF-8 split across reads", []string{"\xe6\x97", "\xa5x"}, "日x", "> 日x", "> 日x"},
		{"delete", []string{"abc", "\x1b[H", "\x1b[3~"}, "bc", "> bc", "> "},
		{"Ctrl-D deletes when the line is not empty", []string{"abc", left, "\x04"}, "ab", "> ab", "> ab"},
		{"arrows", []string{"ac", left, "b", right, "d"}, "abcd", "> abcd", "> abcd"},
		{"word moves", []string{"one two", "\x1b[1;5D", "X", "\x1b[1;5C", "Y"}, "one XtwoY", "> one XtwoY", "> one XtwoY"},
		{"Ctrl-W", []string{"one two", "\x17"}, "one ", "> one", "> one "},
		{"Ctrl-U", []string{"one two", left, left, "\x15"}, "wo", "> wo", "> "},
		{"Ctrl-K", []string{"one two", "\x01", "\x1b[C", "\x0b"}, "o", "> o", "> o"},
		{"unknown sequences and controls are ignored", []string{"a", "\x1b[15~", "\x1b[200~", "\t", "\x1b[I", "b"}, "ab", "> ab", "> ab"},
		{"C1 control and invalid UTF-8 are not inserted", []string{"a\u009b\xffb"}, "ab", "> ab", "> ab"},
		{"lone Escape before a key", []string{"a", "\x1b", "x"}, "ax", "> ax", "> ax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out outBuf
			keys := &fakeKeys{chunks: append(tt.keys, "\r")}
			ed := newEditor(keys, &out, promptChat)
			ed.setSize(40)
			// Stop right before Enter to look at the screen.
			enter := keys.chunks[len(keys.chunks)-1]
			keys.chunks = keys.chunks[:len(keys.chunks)-1]
			if _, err := ed.readLine(); err == nil {
				t.Fatal("readLine returned before Enter")
			}
			scr := newScreen(t, 40)
			scr.feed(out.String())
			if got := scr.line(); got != tt.screen {
				t.Errorf("screen %q, want %q", got, tt.screen)
			}
			if got := scr.cursorText(); got != tt.before {
				t.Errorf("text before the cursor %q, want %q", got, tt.before)
			}
			keys.chunks = []string{enter}
			line, err := ed.readLine()
			if err != nil || line != tt.line {
				t.Errorf("readLine = %q, %v; want %q", line, err, tt.line)
			}
		})
	}
}

// TestEditorEnds: Ctrl-D on an empty line is io.EOF, Ctrl-C is errCtrlC,
// the end of the terminal a ttyError; CR LF is one Enter.
func TestEditorEnds(t *testing.T) {
	t.Parallel()
	ed := newEditor(&fakeKeys{chunks: []string{"a\r\nb\r", "\x04", "x\x03"}}, io.Discard, "> ")
	for _, want := range []string{"a", "b"} {
		if l, err := ed.readLine(); l != want || err != nil {
			t.Fatalf("readLine = %q, %v; want %q", l, err, want)
		}
	}
	if _, err := ed.readLine(); err != io.EOF {
		t.Errorf("Ctrl-D: %v, want io.EOF", err)
	}
	if _, err := ed.readLine(); err != errCtrlC {
		t.Errorf("Ctrl-C: %v, want errCtrlC", err)
	}
	if _, err := ed.readLine(); err == nil || err.(ttyError).err != io.EOF {
		t.Errorf("end of terminal: %v, want a ttyError", err)
	}
}

// TestEditorNoStaleText: after a line is sent, and after lines from the
// server arrive while typing, the prompt line shows exactly what is being
// typed, the sent line stays above in full, and nothing is left over.
func TestEditorNoStaleText(t *testing.T) {
	t.Parallel()
	var out outBuf
	keys := &fakeKeys{chunks: []string{"héllo", "\r", "/me waves"}}
	ed := newEditor(keys, &out, promptChat)
	ed.setSize(30)
	if l, err := ed.readLine(); l != "héllo" || err != nil {
		t.Fatalf("readLine = %q, %v", l, err)
	}
	_, _ = ed.readLine() // types "/me waves", then the keys run out
	_, _ = ed.Write([]byte("bob: a line from the server that is longer than the terminal\n"))
	scr := newScreen(t, 30)
	scr.feed(out.String())
	if got := scr.line(); got != "> /me waves" {
		t.Errorf("prompt line %q, want %q", got, "> /me waves")
	}
	if got := scr.cursorText(); got != "> /me waves" {
		t.Errorf("cursor after %q", got)
	}
	var rows []string
	for i := range scr.rows {
		rows = append(rows, scr.text(i))
	}
	if want := []string{"> héllo", "bob: a line from the server that is longer than the terminal", "> /me waves"}; strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Errorf("screen rows %q, want %q", rows, want)
	}
}

// TestEditorScrollsLongLines: a line wider than the terminal scrolls
// sideways, never wraps, and keeps the cursor in view, also with wide
// characters.
func TestEditorScrollsLongLines(t *testing.T) {
	t.Parallel()
	var long strings.Builder
	for i := range 40 {
		long.WriteRune(rune(0x4e00 + i))
	}
	var out outBuf
	keys := &fakeKeys{chunks: []string{long.String()}}
	ed := newEditor(keys, &out, promptChat)
	ed.setSize(20)
	_, _ = ed.readLine()
	scr := newScreen(t, 20)
	scr.feed(out.String())
	if len(scr.rows) != 1 || stringWidth(scr.line()) > 19 || !strings.HasSuffix(scr.line(), string(rune(0x4e00+39))) {
		t.Errorf("end of a long line: rows %d, %q", len(scr.rows), scr.line())
	}
	if scr.cursorText() != scr.line() {
		t.Errorf("cursor not at the end: %q of %q", scr.cursorText(), scr.line())
	}
	keys.chunks = []string{"\x1b[H"}
	_, _ = ed.readLine()
	scr = newScreen(t, 20)
	scr.feed(out.String())
	if want := "> 一丁丂七丄丅丆万"; !strings.HasPrefix(scr.line(), want) || scr.cursorText() != "> " {
		t.Errorf("after Home: %q, cursor after %q", scr.line(), scr.cursorText())
	}
}

// TestInteractiveWideAndKeys drives the real client through a pty: wide
// characters with an insertion in the middle, each Home/End sequence, and
// a line sent after another leave the screen as they should and send
// exactly the edited lines.
func TestInteractiveWideAndKeys(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice := s.join(t, "alice")
	p := startPTY(t, t.Context(), Config{Addr: s.addr, Nick: "bob"})
	p.screen.waitContains(t, "* Welcome, bob! 2 users online.")
	alice.waitFor("* bob joined")

	// check waits until the prompt line, as a terminal would show what
	// the client wrote since the welcome, is want with the cursor after
	// before.
	check := func(want, before string) {
		t.Helper()
		waitScreen(t, p, func() bool {
			scr := newScreen(t, 100)
			scr.feed(p.after("Type /help for commands.\r\n"))
			return scr.line() == want && scr.cursorText() == before
		})
	}
	p.typeKeys("日本語abc")
	p.typeKeys("\x1b[D\x1b[D\x1b[D\x1b[D")
	p.typeKeys("X")
	check("> 日本X語abc", "> 日本X")
	p.typeKeys("\r")
	alice.waitFor("bob: 日本X語abc")

	for _, keys := range [][2]string{
		{"\x1b[H", "\x1b[F"}, {"\x1b[1~", "\x1b[4~"}, {"\x1b[7~", "\x1b[8~"}, {"\x1bOH", "\x1bOF"},
	} {
		p.typeKeys("bc")
		p.typeKeys(keys[0])
		p.typeKeys("a")
		p.typeKeys(keys[1])
		p.typeKeys("d\r")
		if got := alice.waitFor("bob: "); got != "bob: abcd" {
			t.Errorf("Home %q End %q: sent %q, want %q", keys[0], keys[1], got, "bob: abcd")
		}
	}
	p.typeKeys("héllo\r")
	alice.waitFor("bob: héllo")
	p.typeKeys("/me waves")
	check("> /me waves", "> /me waves")
	p.typeKeys("\r")
	alice.waitFor("* bob waves")
	p.typeKeys("\x03")
	if err := p.wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	p.checkRestored()
}

// TestInteractiveInTmux runs `netchat join`'s client in a real terminal
// emulator (tmux) and reads the screen and cursor position tmux reports:
// wide characters and Home/End as tmux sends them.
func TestInteractiveInTmux(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	s := startServer(t)
	alice := s.join(t, "alice")
	sock := t.TempDir() + "/tmux"
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	// The client runs in this test binary (TestHelperJoinProcess), in a
	// pane of a private tmux server.
	client := "'" + os.Args[0] + "' '-test.run=^TestHelperJoinProcess$'; sleep 60"
	tmux("-f", "/dev/null", "new-session", "-d", "-x", "60", "-y", "12",
		"-e", "NETCHAT_TEST_JOIN="+s.addr, client)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", sock, "kill-server").Run() })
	alice.waitFor("* bob joined")

	// await polls tmux until the pane's last non-empty line and the cursor
	// column are as wanted.
	await := func(line string, cursor int) {
		t.Helper()
		deadline := time.Now().Add(2 * waitTimeout)
		var got, cur string
		for time.Now().Before(deadline) {
			rows := strings.Split(strings.TrimRight(tmux("capture-pane", "-p"), "\n"), "\n")
			got = rows[len(rows)-1]
			cur = strings.TrimSpace(tmux("display", "-p", "#{cursor_x}"))
			if got == line && cur == strconv.Itoa(cursor) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("tmux shows %q with the cursor at %s; want %q at %d", got, cur, line, cursor)
	}
	tmux("send-keys", "-l", "日本語abc")
	tmux("send-keys", "Left", "Left", "Left", "Left")
	tmux("send-keys", "-l", "X")
	await("> 日本X語abc", 7)
	tmux("send-keys", "Home")
	await("> 日本X語abc", 2)
	tmux("send-keys", "End")
	await("> 日本X語abc", 12)
	tmux("send-keys", "Enter")
	alice.waitFor("bob: 日本X語abc")
	await(">", 2)
}

// TestHelperJoinProcess is not a test: TestInteractiveInTmux runs it in a
// tmux pane as the interactive client.
func TestHelperJoinProcess(t *testing.T) {
	addr := os.Getenv("NETCHAT_TEST_JOIN")
	if addr == "" {
		t.Skip("helper process")
	}
	if err := Run(context.Background(), Config{Addr: addr, Nick: "bob", Timeout: waitTimeout}, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// FuzzEditorKeys: whatever bytes a terminal (or a paste) sends, the editor
// does not panic, keeps its cursor inside the line, never draws wider than
// the window, and returns lines without control characters.
func FuzzEditorKeys(f *testing.F) {
	for _, seed := range []string{"hello\r", "日本語\x1b[D\x1b[DX\r", "\x1b[1~a\x1b[4~b\r", "\x1bOH\x1bOF", "e\u0301\x7f\x7f", "\x1b[1;5D\x17\x15\x0b", "\x1b[", "\xe6\x97", "\x1b\x1b[200~x\x1b[201~\r", strings.Repeat("x", 300) + "\x1b[H\x03", strings.Repeat("y", 300) + "\x15\x04"} {
		f.Add(seed, uint8(20))
	}
	f.Fuzz(func(t *testing.T, keys string, cols uint8) {
		var out outBuf
		ed := newEditor(&fakeKeys{chunks: []string{keys}}, &out, promptChat)
		ed.setSize(int(cols%120) + 3)
		for range 100 {
			line, err := ed.readLine()
			if err == nil && strings.IndexFunc(line, func(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 }) >= 0 {
				t.Fatalf("line %q has a control character", line)
			}
			if ed.pos < 0 || ed.pos > len(ed.buf) || ed.off < 0 || ed.off > ed.pos {
				t.Fatalf("pos %d off %d len %d", ed.pos, ed.off, len(ed.buf))
			}
			var tty ttyError
			if errors.As(err, &tty) {
				break
			}
		}
		// The prompt line as drawn last: from its last CR-led redraw.
		o := out.String()
		last := o[strings.LastIndex(o, "\r"+promptChat)+1:]
		// One cell of text is always shown, however narrow the window.
		allowed := max(int(cols%120)+2, stringWidth(promptChat)+2)
		if end := strings.Index(last, "\x1b[K"); end >= 0 && stringWidth(last[:end]) > allowed {
			t.Fatalf("drew %q (%d cells) on %d columns", last[:end], stringWidth(last[:end]), int(cols%120)+3)
		}
	})
}
