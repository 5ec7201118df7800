package line

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

const tooLongMark = "<TOO LONG>"

// collect feeds the chunks to a new Splitter, then flushes, and returns the
// emitted lines with tooLongMark where tooLong was called.
func collect(t testing.TB, max int, chunks ...string) []string {
	t.Helper()
	s := NewSplitter(max)
	var out []string
	emit := func(l []byte) error {
		if len(l) > max {
			t.Fatalf("emitted %d bytes > max %d", len(l), max)
		}
		out = append(out, string(l))
		return nil
	}
	tooLong := func() error { out = append(out, tooLongMark); return nil }
	for _, c := range chunks {
		if err := s.Feed([]byte(c), emit, tooLong); err != nil {
			t.Fatal(err)
		}
		if s.Buffered() > max {
			t.Fatalf("Buffered() = %d > max %d", s.Buffered(), max)
		}
	}
	if err := s.Flush(emit); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSplitter(t *testing.T) {
	tests := []struct {
		name string
		max  int
		in   string
		want []string
	}{
		{"LF", 10, "a\nb\n", []string{"a", "b"}},
		{"CRLF", 10, "a\r\nb\r\n", []string{"a", "b"}},
		{"bare CR", 10, "a\rb\r", []string{"a", "b"}},
		{"CR NUL", 10, "a\r\x00b\r\x00", []string{"a", "b"}},
		{"CR CR is an empty line", 10, "a\r\rb\n", []string{"a", "", "b"}},
		{"LF CR", 10, "a\n\rb\n", []string{"a", "", "b"}},
		{"CR LF LF", 10, "a\r\n\nb\n", []string{"a", "", "b"}},
		{"NUL not after CR is data", 10, "a\x00b\n", []string{"a\x00b"}},
		{"empty lines", 10, "\n\r\n\r\n", []string{"", "", ""}},
		{"unterminated flushed", 10, "a\nbc", []string{"a", "bc"}},
		{"exactly max", 5, "12345\n", []string{"12345"}},
		{"max+1", 5, "123456\nok\n", []string{tooLongMark, "ok"}},
		{"max+1 with CRLF", 5, "123456\r\nok\r\n", []string{tooLongMark, "ok"}},
		{"long line once", 5, strings.Repeat("x", 100) + "\nok\n", []string{tooLongMark, "ok"}},
		{"two long lines", 3, "aaaa\nbbbb\rc\n", []string{tooLongMark, tooLongMark, "c"}},
		{"long unterminated not flushed", 3, "ok\nabcdef", []string{"ok", tooLongMark}},
		{"exactly max unterminated flushed", 3, "abc", []string{"abc"}},
		{"utf-8 counted in bytes", 4, "ééé\néé\n", []string{tooLongMark, "éé"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := collect(t, tt.max, tt.in); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for i := 0; i <= len(tt.in); i++ {
				for j := i; j <= len(tt.in); j++ {
					got := collect(t, tt.max, tt.in[:i], tt.in[i:j], tt.in[j:])
					if !slices.Equal(got, tt.want) {
						t.Fatalf("split at %d,%d: got %q, want %q", i, j, got, tt.want)
					}
				}
			}
		})
	}
}

func TestCRAtEndOfFeed(t *testing.T) {
	for _, next := range []string{"\nb\n", "\x00b\n"} {
		got := collect(t, 10, "a\r", next)
		if want := []string{"a", "b"}; !slices.Equal(got, want) {
			t.Errorf("next %q: got %q, want %q", next, got, want)
		}
	}
	// The swallow must survive an empty Feed in between.
	if got := collect(t, 10, "a\r", "", "\nb\n"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("got %q", got)
	}
}

func TestEmitAliasesInputWhenPossible(t *testing.T) {
	s := NewSplitter(100)
	p := []byte("hello\nworld\n")
	var ptrs []*byte
	s.Feed(p, func(l []byte) error { ptrs = append(ptrs, &l[0]); return nil }, nil)
	if len(ptrs) != 2 || ptrs[0] != &p[0] || ptrs[1] != &p[6] {
		t.Fatal("lines inside p were copied")
	}
}

func TestEmitErrorStopsFeed(t *testing.T) {
	stop := errors.New("quit")
	for _, chunks := range [][]string{{"a\nquit\nb\n"}, {"a\nqu", "it\nb\n"}} {
		s := NewSplitter(10)
		var got []string
		var err error
		for _, c := range chunks {
			err = s.Feed([]byte(c), func(l []byte) error {
				got = append(got, string(l))
				if string(l) == "quit" {
					return stop
				}
				return nil
			}, nil)
			if err != nil {
				break
			}
		}
		if err != stop || !slices.Equal(got, []string{"a", "quit"}) {
			t.Errorf("%q: err %v, lines %q", chunks, err, got)
		}
		if s.Buffered() != 0 {
			t.Errorf("%q: %d bytes still buffered", chunks, s.Buffered())
		}
	}
}

func TestTooLongErrorStopsFeed(t *testing.T) {
	stop := errors.New("stop")
	s := NewSplitter(3)
	var got []string
	err := s.Feed([]byte("abcd\nx\n"), func(l []byte) error { got = append(got, string(l)); return nil },
		func() error { return stop })
	if err != stop || len(got) != 0 {
		t.Fatalf("err %v, lines %q", err, got)
	}
}

// A 20 MB line without a newline must never be held beyond max, whether it
// arrives in 64 KiB chunks or byte by byte.
func TestHugeLineBounded(t *testing.T) {
	const max = 4096
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for _, size := range []int{64 << 10, 1} {
		s := NewSplitter(max)
		calls := 0
		var lines []string
		emit := func(l []byte) error { lines = append(lines, string(l)); return nil }
		tooLong := func() error { calls++; return nil }
		fed := 0
		limit := 20 << 20
		if size == 1 {
			limit = 100_000 // bytewise: a prefix is enough to cross max many times over
		}
		for fed < limit {
			p := chunk[:min(size, limit-fed)]
			if err := s.Feed(p, emit, tooLong); err != nil {
				t.Fatal(err)
			}
			fed += len(p)
			if s.Buffered() > max || cap(s.buf) > max {
				t.Fatalf("size %d: buffered %d, cap %d after %d bytes", size, s.Buffered(), cap(s.buf), fed)
			}
		}
		if err := s.Feed([]byte("\nnext\n"), emit, tooLong); err != nil {
			t.Fatal(err)
		}
		if calls != 1 || !slices.Equal(lines, []string{"next"}) {
			t.Fatalf("size %d: tooLong called %d times, lines %q", size, calls, lines)
		}
		if s.buf != nil {
			t.Fatalf("size %d: big buffer kept after the line (cap %d)", size, cap(s.buf))
		}
	}
}

func TestLazyBuffer(t *testing.T) {
	s := NewSplitter(1 << 20)
	s.Feed([]byte("whole line\n"), func([]byte) error { return nil }, nil)
	if s.buf != nil {
		t.Fatal("buffer allocated for a line inside one Feed")
	}
	s.Feed(bytes.Repeat([]byte("y"), 10000), nil, nil)
	s.Feed([]byte("\n"), func([]byte) error { return nil }, nil)
	if s.buf != nil || s.Buffered() != 0 {
		t.Fatal("big buffer not released when emptied")
	}
}

func TestSplitterAllocs(t *testing.T) {
	s := NewSplitter(4096)
	emit := func([]byte) error { return nil }
	tooLong := func() error { return nil }
	p := []byte("hello\r\nworld\npartial")
	q := []byte(" line\r")
	n := testing.AllocsPerRun(100, func() {
		s.Feed(p, emit, tooLong)
		s.Feed(q, emit, tooLong)
	})
	if n != 0 {
		t.Fatalf("%v allocs per round", n)
	}
}

func TestNewSplitterPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for max 0")
		}
	}()
	NewSplitter(0)
}

func BenchmarkSplitter(b *testing.B) {
	line := strings.Repeat("x", 62) + "\r\n"
	stream := []byte(strings.Repeat(line, 1000))
	const chunk = 4096
	s := NewSplitter(4096)
	n := 0
	emit := func(l []byte) error { n += len(l); return nil }
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for p := stream; len(p) > 0; {
			k := min(chunk, len(p))
			s.Feed(p[:k], emit, nil)
			p = p[k:]
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/line")
}
