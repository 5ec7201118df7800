package client

import (
	"errors"
	"io"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// editor is the prompt line of the interactive client: one line of input
// at the bottom of the terminal, with lines from the server printed above
// it. It replaces golang.org/x/term's Terminal, whose cursor arithmetic
// counts runes, not terminal cells (so CJK text put the cursor in the wrong
// place and left stale text behind), and which ignores the Home/End
// sequences that tmux and many terminals send. x/term still does what it is
// good at: raw mode and the window size.
//
// The line never wraps: when it is wider than the terminal it scrolls
// sideways to keep the cursor in view, so every redraw is "\r", the prompt,
// the visible text, erase to the end of the line, and a cursor move to a
// column computed in cells. Nothing depends on where the terminal's cursor
// was left, so nothing stale can remain.
type editor struct {
	r io.Reader // keys

	mu     sync.Mutex
	w      io.Writer
	prompt string
	buf    []rune
	pos    int // cursor, an index into buf
	off    int // first rune shown, when the line scrolls
	width  int // terminal columns
	out    []byte

	hist    []string
	histIdx int    // len(hist) while editing a new line
	draft   []rune // the new line, kept while browsing history

	keys    []byte // read but not yet decoded (an incomplete sequence)
	afterCR bool   // the last key was CR: a following LF is part of it
}

// Outcomes of readLine other than a line.
var (
	// errCtrlC: the user typed Ctrl-C.
	errCtrlC = errors.New("interrupted by Ctrl-C")
)

// ttyError is a failure reading the terminal itself (including its end).
type ttyError struct{ err error }

func (e ttyError) Error() string { return e.err.Error() }

const maxHistory = 200

func newEditor(keys io.Reader, w io.Writer, prompt string) *editor {
	return &editor{r: keys, w: w, prompt: prompt, width: 80}
}

// setSize sets the terminal width in columns.
func (e *editor) setSize(cols int) {
	if cols <= 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.width = cols
	e.redrawLocked()
}

func (e *editor) setPrompt(p string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.prompt = p
	e.redrawLocked()
}

// Write prints complete lines (LF-terminated, LF becomes CR LF) above the
// prompt line, then draws the prompt line again below them.
func (e *editor) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.out = append(e.out[:0], "\r\x1b[K"...)
	for _, c := range p {
		if c == '\n' {
			e.out = append(e.out, '\r')
		}
		e.out = append(e.out, c)
	}
	e.out = e.render(e.out)
	if _, err := e.w.Write(e.out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// readLine returns the next line typed (Enter), io.EOF for Ctrl-D on an
// empty line, errCtrlC for Ctrl-C, or a ttyError.
func (e *editor) readLine() (string, error) {
	var chunk [256]byte
	for {
		e.mu.Lock()
		line, err, done := e.decodeLocked()
		e.mu.Unlock()
		if done {
			return line, err
		}
		n, rerr := e.r.Read(chunk[:])
		e.mu.Lock()
		e.keys = append(e.keys, chunk[:n]...)
		e.mu.Unlock()
		if rerr != nil && n == 0 {
			return "", ttyError{rerr}
		}
	}
}

// key is one decoded keystroke.
type key int

const (
	keyNone key = iota
	keyRune     // a character to insert
	keyEnter
	keyBackspace
	keyDelete
	keyCtrlD
	keyCtrlC
	keyLeft
	keyRight
	keyWordLeft
	keyWordRight
	keyHome
	keyEnd
	keyUp
	keyDown
	keyKillToStart
	keyKillToEnd
	keyDeleteWord
	keyRedraw
)

// decodeLocked handles the buffered keys until a line is complete or more
// input is needed; e.mu is held.
func (e *editor) decodeLocked() (line string, err error, done bool) {
	changed := false
	defer func() {
		if changed && !done {
			e.redrawLocked()
		}
	}()
	for len(e.keys) > 0 {
		k, r, n := decodeKey(e.keys)
		if n == 0 {
			return "", nil, false // an incomplete sequence: wait for the rest
		}
		e.keys = e.keys[n:]
		if k == keyEnter && e.afterCR && r == '\n' {
			e.afterCR = false
			continue // CR LF is one Enter
		}
		e.afterCR = k == keyEnter && r == '\r'
		switch k {
		case keyEnter:
			return e.submitLocked(), nil, true
		case keyCtrlC:
			return "", errCtrlC, true
		case keyCtrlD:
			if len(e.buf) == 0 {
				return "", io.EOF, true
			}
			e.deleteForward()
		default:
			e.edit(k, r)
		}
		// The scroll offset follows the cursor at once, not only when the
		// line is drawn: a Ctrl-C right after Home returns before any redraw.
		if e.off > e.pos {
			e.off = e.clusterStart(e.pos)
		}
		changed = true
	}
	return "", nil, false
}

// submitLocked ends the line being edited: it stays on the screen, in
// full, above a fresh prompt line.
func (e *editor) submitLocked() string {
	line := string(e.buf)
	e.out = append(e.out[:0], "\r\x1b[K"...)
	e.out = append(e.out, e.prompt...)
	e.out = append(e.out, line...)
	e.out = append(e.out, "\r\n"...)
	e.buf, e.pos, e.off = e.buf[:0], 0, 0
	if line != "" && (len(e.hist) == 0 || e.hist[len(e.hist)-1] != line) {
		if len(e.hist) == maxHistory {
			e.hist = append(e.hist[:0], e.hist[1:]...)
		}
		e.hist = append(e.hist, line)
	}
	e.histIdx, e.draft = len(e.hist), nil
	e.out = e.render(e.out)
	_, _ = e.w.Write(e.out)
	return line
}

func (e *editor) edit(k key, r rune) {
	switch k {
	case keyRune:
		e.buf = append(e.buf, 0)
		copy(e.buf[e.pos+1:], e.buf[e.pos:])
		e.buf[e.pos] = r
		e.pos++
	case keyBackspace:
		if e.pos > 0 {
			start := e.clusterStart(e.pos - 1)
			e.buf = append(e.buf[:start], e.buf[e.pos:]...)
			e.pos = start
		}
	case keyDelete:
		e.deleteForward()
	case keyLeft:
		if e.pos > 0 {
			e.pos = e.clusterStart(e.pos - 1)
		}
	case keyRight:
		e.pos = e.clusterEnd(e.pos)
	case keyWordLeft:
		e.pos = e.wordStart(e.pos)
	case keyWordRight:
		for e.pos < len(e.buf) && unicode.IsSpace(e.buf[e.pos]) {
			e.pos++
		}
		for e.pos < len(e.buf) && !unicode.IsSpace(e.buf[e.pos]) {
			e.pos++
		}
	case keyHome:
		e.pos = 0
	case keyEnd:
		e.pos = len(e.buf)
	case keyKillToStart:
		e.buf = append(e.buf[:0], e.buf[e.pos:]...)
		e.pos = 0
	case keyKillToEnd:
		e.buf = e.buf[:e.pos]
	case keyDeleteWord:
		start := e.wordStart(e.pos)
		e.buf = append(e.buf[:start], e.buf[e.pos:]...)
		e.pos = start
	case keyUp:
		if e.histIdx > 0 {
			if e.histIdx == len(e.hist) {
				e.draft = append(e.draft[:0], e.buf...)
			}
			e.histIdx--
			e.buf = append(e.buf[:0], []rune(e.hist[e.histIdx])...)
			e.pos = len(e.buf)
		}
	case keyDown:
		if e.histIdx < len(e.hist) {
			e.histIdx++
			if e.histIdx == len(e.hist) {
				e.buf = append(e.buf[:0], e.draft...)
			} else {
				e.buf = append(e.buf[:0], []rune(e.hist[e.histIdx])...)
			}
			e.pos = len(e.buf)
		}
	}
}

func (e *editor) deleteForward() {
	if end := e.clusterEnd(e.pos); end > e.pos {
		e.buf = append(e.buf[:e.pos], e.buf[end:]...)
	}
}

// clusterStart moves i back to the character that zero-width runes at i
// (combining marks, joiners) belong to, so that the cursor never stops
// inside what the terminal shows as one character.
func (e *editor) clusterStart(i int) int {
	for i > 0 && i < len(e.buf) && runeWidth(e.buf[i]) == 0 {
		i--
	}
	return i
}

// clusterEnd is the index after the character at i and its zero-width
// runes.
func (e *editor) clusterEnd(i int) int {
	if i >= len(e.buf) {
		return len(e.buf)
	}
	i++
	for i < len(e.buf) && runeWidth(e.buf[i]) == 0 {
		i++
	}
	return i
}

func (e *editor) wordStart(i int) int {
	for i > 0 && unicode.IsSpace(e.buf[i-1]) {
		i--
	}
	for i > 0 && !unicode.IsSpace(e.buf[i-1]) {
		i--
	}
	return i
}

func (e *editor) redrawLocked() {
	e.out = e.render(append(e.out[:0], '\r'))
	_, _ = e.w.Write(e.out)
}

// render appends the prompt line to b: prompt, the part of the text that
// fits, erase to the end of the line, and the cursor put at its cell.
func (e *editor) render(b []byte) []byte {
	pw := stringWidth(e.prompt)
	// The last column stays free: a character written there makes some
	// terminals wrap at once, and the line must stay one row.
	avail := max(e.width-1-pw, 1)
	if e.pos < e.off {
		e.off = e.clusterStart(e.pos)
	}
	for e.off < e.pos && runesWidth(e.buf[e.off:e.pos]) > avail {
		e.off = min(e.clusterEnd(e.off), e.pos)
	}
	end, used := e.off, 0
	for end < len(e.buf) {
		next := e.clusterEnd(end)
		w := runesWidth(e.buf[end:next])
		if used+w > avail {
			break
		}
		used += w
		end = next
	}
	b = append(b, e.prompt...)
	b = append(b, string(e.buf[e.off:end])...)
	b = append(b, "\x1b[K\r"...)
	if col := pw + runesWidth(e.buf[e.off:e.pos]); col > 0 {
		b = append(b, "\x1b["...)
		b = strconv.AppendInt(b, int64(col), 10)
		b = append(b, 'C')
	}
	return b
}

// runeWidth is how many terminal cells r takes: 2 for East Asian wide and
// full-width characters (CJK, most emoji), 0 for combining marks, format
// characters (joiners, bidi controls) and Hangul medial and final jamo,
// 1 otherwise.
func runeWidth(r rune) int {
	switch {
	case r < 0x20 || r >= 0x7f && r < 0xa0:
		return 0
	case r >= 0x1160 && r <= 0x11ff:
		return 0
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		return 0
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

func runesWidth(rs []rune) int {
	n := 0
	for _, r := range rs {
		n += runeWidth(r)
	}
	return n
}

func stringWidth(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

// decodeKey decodes the keystroke at the start of b. n is the number of
// bytes it took; 0 means b holds only the start of a sequence.
func decodeKey(b []byte) (k key, r rune, n int) {
	c := b[0]
	switch c {
	case '\r', '\n':
		return keyEnter, rune(c), 1
	case 0x7f, 0x08:
		return keyBackspace, 0, 1
	case 0x01:
		return keyHome, 0, 1
	case 0x05:
		return keyEnd, 0, 1
	case 0x02:
		return keyLeft, 0, 1
	case 0x06:
		return keyRight, 0, 1
	case 0x03:
		return keyCtrlC, 0, 1
	case 0x04:
		return keyCtrlD, 0, 1
	case 0x0b:
		return keyKillToEnd, 0, 1
	case 0x15:
		return keyKillToStart, 0, 1
	case 0x17:
		return keyDeleteWord, 0, 1
	case 0x0c:
		return keyRedraw, 0, 1
	case 0x10:
		return keyUp, 0, 1
	case 0x0e:
		return keyDown, 0, 1
	case 0x1b:
		return decodeEscape(b)
	}
	if c < 0x20 {
		return keyNone, 0, 1 // other control keys (TAB included) do nothing
	}
	if c < utf8.RuneSelf {
		return keyRune, rune(c), 1
	}
	if !utf8.FullRune(b) {
		return keyNone, 0, 0
	}
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError && size == 1 || r < 0xa0 {
		return keyNone, 0, size // invalid UTF-8 or a C1 control
	}
	return keyRune, r, size
}

// decodeEscape decodes a sequence starting with ESC: CSI (ESC [), SS3
// (ESC O) and Alt+key. The Home and End keys alone come as ESC [ H, ESC [ F,
// ESC [ 1 ~, ESC [ 4 ~, ESC [ 7 ~, ESC [ 8 ~, ESC O H and ESC O F depending
// on the terminal and its mode.
func decodeEscape(b []byte) (key, rune, int) {
	if len(b) < 2 {
		return keyNone, 0, 0
	}
	switch b[1] {
	case '[':
		// Parameters 0x30–0x3F, intermediates 0x20–0x2F, final 0x40–0x7E.
		i := 2
		for i < len(b) && b[i] >= 0x30 && b[i] <= 0x3f {
			i++
		}
		params := string(b[2:i])
		for i < len(b) && b[i] >= 0x20 && b[i] <= 0x2f {
			i++
		}
		if i == len(b) {
			return keyNone, 0, 0
		}
		final := b[i]
		if final < 0x40 || final > 0x7e {
			return keyNone, 0, i // not a sequence after all: drop it
		}
		return csiKey(params, final), 0, i + 1
	case 'O':
		if len(b) < 3 {
			return keyNone, 0, 0
		}
		switch b[2] {
		case 'H':
			return keyHome, 0, 3
		case 'F':
			return keyEnd, 0, 3
		case 'A':
			return keyUp, 0, 3
		case 'B':
			return keyDown, 0, 3
		case 'C':
			return keyRight, 0, 3
		case 'D':
			return keyLeft, 0, 3
		}
		return keyNone, 0, 3
	case 'b', 'B':
		return keyWordLeft, 0, 2
	case 'f', 'F':
		return keyWordRight, 0, 2
	case 0x7f, 0x08:
		return keyDeleteWord, 0, 2
	case 0x1b:
		return keyNone, 0, 1 // ESC ESC: the first is a lone Escape
	}
	// Alt with another key, or a lone Escape before a key: the key itself
	// is kept.
	return keyNone, 0, 1
}

func csiKey(params string, final byte) key {
	// A modifier (";5" for Ctrl, ";3" for Alt...) turns arrows into word
	// moves; Home and End stay Home and End.
	modified := false
	for i := 0; i < len(params); i++ {
		if params[i] == ';' {
			modified = true
		}
	}
	switch final {
	case 'A':
		return keyUp
	case 'B':
		return keyDown
	case 'C':
		if modified {
			return keyWordRight
		}
		return keyRight
	case 'D':
		if modified {
			return keyWordLeft
		}
		return keyLeft
	case 'H':
		return keyHome
	case 'F':
		return keyEnd
	case '~':
		num := params
		for i := 0; i < len(params); i++ {
			if params[i] == ';' {
				num = params[:i]
				break
			}
		}
		switch num {
		case "1", "7":
			return keyHome
		case "4", "8":
			return keyEnd
		case "3":
			return keyDelete
		}
	}
	return keyNone // function keys, bracketed paste markers, focus...
}
