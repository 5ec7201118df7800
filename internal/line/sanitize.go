package line

import (
	"encoding/binary"
	"unicode/utf8"
)

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// Sanitize appends the cleaned form of one received line to dst and returns
// the extended slice. dst must not overlap line.
//
//   - Each maximal run of invalid UTF-8 becomes one U+FFFD, as with
//     bytes.ToValidUTF8, so garbage cannot be inflated threefold per byte.
//   - BS (0x08) and DEL (0x7F) erase the previous rune written by this call,
//     if any, as a client in character mode expects.
//   - Every other control character is removed: C0 except TAB, and C1
//     (U+0080–U+009F). Hence no ANSI/VT escape sequence survives: its ESC is
//     gone and the rest, such as "[2J", is harmless text.
//   - Nothing else changes; in particular nothing is trimmed.
//
// The output is valid UTF-8 without control characters other than TAB, and
// Sanitize leaves its own output unchanged.
func Sanitize(dst, line []byte) []byte {
	i := printablePrefix(line)
	dst = append(dst, line[:i]...)
	if i == len(line) {
		return dst
	}
	return sanitizeSlow(dst, line, i)
}

// printablePrefix returns the length of the longest prefix of p made of
// printable ASCII and TAB, testing eight bytes at a time.
func printablePrefix(p []byte) int {
	i := 0
	for ; i+8 <= len(p); i += 8 {
		x := binary.LittleEndian.Uint64(p[i:])
		// A byte below 0x20 or above 0x7E sets its high bit in one of the
		// two terms (the classic haszero-style tests, exact for "any").
		below := (x - lsb*0x20) &^ x & msb
		above := (x + lsb*(127-0x7E) | x) & msb
		if below|above != 0 {
			break
		}
	}
	for ; i < len(p); i++ {
		if c := p[i]; (c < 0x20 && c != '\t') || c > 0x7E {
			break
		}
	}
	return i
}

func sanitizeSlow(dst, line []byte, i int) []byte {
	base := len(dst) - i // erasing must not reach into the caller's dst
	inInvalid := false
	for i < len(line) {
		c := line[i]
		if c < utf8.RuneSelf {
			i++
			inInvalid = false
			switch {
			case c == '\b' || c == 0x7F:
				if len(dst) > base {
					_, n := utf8.DecodeLastRune(dst[base:])
					dst = dst[:len(dst)-n]
				}
			case c >= 0x20 || c == '\t':
				dst = append(dst, c)
			}
			continue
		}
		r, n := utf8.DecodeRune(line[i:])
		if r == utf8.RuneError && n == 1 {
			i++
			if !inInvalid {
				dst = utf8.AppendRune(dst, utf8.RuneError)
				inInvalid = true
			}
			continue
		}
		inInvalid = false
		if r > 0x9F { // C1 controls are U+0080–U+009F
			dst = append(dst, line[i:i+n]...)
		}
		i += n
	}
	return dst
}

// IsBlank reports whether b is empty or made only of spaces and tabs.
func IsBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}
