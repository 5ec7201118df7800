package client

import "unicode/utf8"

// Neutralize appends a printable form of one received line (without its
// line terminator) to dst and returns the extended slice.
//
// Whatever a server sends is shown to a human on a terminal, and a
// terminal obeys control characters: ESC starts sequences that clear the
// screen, move the cursor, set the window title or, on some terminals,
// write files or answer back into the input. So nothing that a terminal
// interprets survives, but it stays visible rather than silently removed,
// which would hide that the server tried:
//
//   - C0 controls except TAB, and DEL, become caret notation (ESC is "^[",
//     CR is "^M", DEL is "^?"); an escape sequence thus prints as harmless
//     text such as "^[[2J".
//   - C1 controls (U+0080–U+009F, which some terminals treat like ESC plus
//     a letter) become U+FFFD.
//   - Each maximal run of invalid UTF-8 becomes one U+FFFD, so a raw 0x9B
//     byte (the 8-bit CSI) cannot reach a terminal in a legacy mode.
func Neutralize(dst, line []byte) []byte {
	inInvalid := false
	for i := 0; i < len(line); {
		c := line[i]
		if c < utf8.RuneSelf {
			i++
			inInvalid = false
			switch {
			case c == '\t' || (c >= 0x20 && c < 0x7F):
				dst = append(dst, c)
			case c == 0x7F:
				dst = append(dst, '^', '?')
			default:
				dst = append(dst, '^', c+'@')
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
		if r <= 0x9F {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, line[i:i+n]...)
		}
		i += n
	}
	return dst
}
