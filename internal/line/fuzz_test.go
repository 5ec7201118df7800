package line

import (
	"bytes"
	"slices"
	"testing"
	"unicode/utf8"
)

// splitAll feeds the chunks to a new Splitter and returns the emitted lines,
// checking the per-line and memory bounds as it goes.
func splitAll(t *testing.T, max int, chunks ...[]byte) []string {
	s := NewSplitter(max)
	var out []string
	emit := func(l []byte) error {
		if len(l) > max {
			t.Fatalf("line of %d bytes > max %d", len(l), max)
		}
		if bytes.ContainsAny(l, "\r\n") {
			t.Fatalf("line %q contains CR or LF", l)
		}
		out = append(out, string(l))
		return nil
	}
	tooLong := func() error { out = append(out, tooLongMark); return nil }
	for _, c := range chunks {
		if err := s.Feed(c, emit, tooLong); err != nil {
			t.Fatal(err)
		}
		if s.Buffered() > max || cap(s.buf) > max {
			t.Fatalf("buffered %d (cap %d) > max %d", s.Buffered(), cap(s.buf), max)
		}
	}
	if err := s.Flush(emit); err != nil {
		t.Fatal(err)
	}
	return out
}

func FuzzSplitter(f *testing.F) {
	f.Add([]byte("hello\r\nworld\n"), uint8(8), uint16(3), uint16(9))
	f.Add([]byte("a\rb\r\x00c\r\nd"), uint8(4), uint16(2), uint16(3))
	f.Add([]byte("123456\nok\n"), uint8(5), uint16(6), uint16(7))
	f.Add([]byte("\n\r\n\r\r"), uint8(1), uint16(1), uint16(2))
	f.Fuzz(func(t *testing.T, in []byte, max uint8, i, j uint16) {
		m := int(max) + 1
		a := int(i) % (len(in) + 1)
		b := a + int(j)%(len(in)-a+1)
		want := splitAll(t, m, in)
		got := splitAll(t, m, in[:a], in[a:b], in[b:])
		if !slices.Equal(got, want) {
			t.Fatalf("split at %d,%d: %q, unsplit %q", a, b, got, want)
		}
	})
}

func FuzzSanitize(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte("\x1b[2J\x1b[31mred"))
	f.Add([]byte("a世\b\x7f\xff\xfe\u0085\t"))
	f.Add([]byte("\xed\xa0\x80\xc0\xaf\xf4\x90\x80\x80"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := Sanitize(nil, in)
		if !utf8.Valid(out) {
			t.Fatalf("invalid UTF-8 %q", out)
		}
		for _, r := range string(out) {
			if (r < 0x20 && r != '\t') || (r >= 0x7F && r <= 0x9F) {
				t.Fatalf("control %U in %q", r, out)
			}
		}
		if again := Sanitize(nil, out); !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q", out, again)
		}
		if len(out) > 3*len(in) {
			t.Fatalf("output %d bytes for %d input", len(out), len(in))
		}
		if IsBlank(out) != (len(bytes.Trim(out, " \t")) == 0) {
			t.Fatalf("IsBlank(%q) wrong", out)
		}
	})
}
