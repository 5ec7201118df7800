// Package line cuts a client's byte stream into bounded lines and cleans them
// before they are relayed to other users (SPEC 2 and 2.3).
package line

import "bytes"

// keepCap is the largest buffer kept while empty: a buffer grown for one long
// line is given back so that thousands of idle connections hold nothing, while
// a client in character mode keeps reusing a small one.
const keepCap = 512

// Splitter cuts a byte stream into lines. A line ends at LF, CR LF or a bare
// CR; a LF or NUL right after a CR is swallowed, even in the next Feed call.
// At most max bytes of one line are ever buffered. The zero value is not
// usable; a Splitter must not be used concurrently.
type Splitter struct {
	buf        []byte // a partial line carried over from earlier Feeds
	max        int
	discarding bool // the current line grew past max; drop up to its end
	afterCR    bool // the last terminator was CR; swallow one LF or NUL
}

// NewSplitter returns a Splitter for lines of at most max bytes (terminator
// excluded). It panics if max < 1.
func NewSplitter(max int) *Splitter {
	if max < 1 {
		panic("line: NewSplitter: max must be positive")
	}
	return &Splitter{max: max}
}

// Buffered reports how many bytes of an unfinished line are held.
func (s *Splitter) Buffered() int { return len(s.buf) }

// Feed consumes p. For each complete line it calls emit with the line
// without its terminator; the slice is valid only during the call and aliases
// p or the internal buffer. A line longer than max bytes is not emitted:
// tooLong is called once, as soon as the line is known to be too long, and the
// line is dropped up to its terminator. If emit or tooLong returns an error,
// Feed returns it at once and the rest of p is dropped.
func (s *Splitter) Feed(p []byte, emit func(line []byte) error, tooLong func() error) error {
	// nextLF and nextCR are offsets into p of the next terminator of each
	// kind, or len(p) if none; each is searched again only once passed, so
	// input of bare-CR lines costs one scan of p, not one per line.
	nextLF, nextCR := -1, -1
	pos := 0
	for pos < len(p) {
		if s.afterCR {
			s.afterCR = false
			if c := p[pos]; c == '\n' || c == 0 {
				pos++
				continue
			}
		}
		if nextLF < pos {
			nextLF = indexFrom(p, pos, '\n')
		}
		if nextCR < pos {
			nextCR = indexFrom(p, pos, '\r')
		}
		end := min(nextLF, nextCR)
		seg := p[pos:end]
		terminated := end < len(p)
		pos = end
		if terminated {
			pos++
			s.afterCR = p[end] == '\r'
		}

		switch {
		case s.discarding:
			s.discarding = !terminated
		case len(s.buf)+len(seg) > s.max:
			s.reset()
			s.discarding = !terminated
			if err := tooLong(); err != nil {
				return err
			}
		case !terminated:
			s.hold(seg)
		case len(s.buf) == 0:
			if err := emit(seg); err != nil {
				return err
			}
		default:
			s.hold(seg)
			err := emit(s.buf)
			s.reset()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Flush emits the final unterminated line, if any and not being discarded,
// and resets the Splitter for reuse. Call it at EOF.
func (s *Splitter) Flush(emit func(line []byte) error) error {
	var err error
	if len(s.buf) > 0 && !s.discarding {
		err = emit(s.buf)
	}
	s.reset()
	s.discarding, s.afterCR = false, false
	return err
}

func indexFrom(p []byte, from int, c byte) int {
	i := bytes.IndexByte(p[from:], c)
	if i < 0 {
		return len(p)
	}
	return from + i
}

// hold appends seg to the buffer; the caller has checked that the result fits
// in max. The capacity is capped at max too, so the buffer's memory, not
// only its length, is bounded.
func (s *Splitter) hold(seg []byte) {
	if len(seg) == 0 {
		return
	}
	need := len(s.buf) + len(seg)
	if need > cap(s.buf) {
		c := min(max(2*cap(s.buf), need, 128), s.max)
		nb := make([]byte, len(s.buf), c)
		copy(nb, s.buf)
		s.buf = nb
	}
	s.buf = append(s.buf, seg...)
}

func (s *Splitter) reset() {
	if cap(s.buf) > keepCap {
		s.buf = nil
	} else {
		s.buf = s.buf[:0]
	}
}
