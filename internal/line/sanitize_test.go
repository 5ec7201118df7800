package line

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"ascii", "hello, world!", "hello, world!"},
		{"tab kept", "a\tb", "a\tb"},
		{"no trimming", "  hi  ", "  hi  "},
		{"unicode kept", "héllo 世界 🎉", "héllo 世界 🎉"},
		{"U+FFFD kept", "a\uFFFDb", "a\uFFFDb"},
		{"invalid byte", "a\xffb", "a\uFFFDb"},
		{"invalid run is one U+FFFD", "a\xff\xfe\xfdb", "a\uFFFDb"},
		{"truncated rune", "a\xe4\xb8", "a\uFFFD"},
		{"surrogate half", "a\xed\xa0\x80b", "a\uFFFDb"},
		{"overlong", "\xc0\xafx", "\uFFFDx"},
		{"invalid runs split by control", "\xff\x01\xfe", "\uFFFD\uFFFD"},
		{"NUL and C0 removed", "a\x00b\x01c\x1fd\re\nf", "abcdef"},
		{"ESC [2J", "\x1b[2Jx", "[2Jx"},
		{"colour escape", "\x1b[31mred\x1b[0m", "[31mred[0m"},
		{"C1 removed", "a\u0085b\u009bc\u0080d\u009fe", "abcde"},
		{"U+00A0 is not C1", "a\u00a0b", "a\u00a0b"},
		{"BS erases", "abc\bd", "abd"},
		{"DEL erases", "abc\x7fd", "abd"},
		{"BS erases multibyte rune", "a世\b!", "a!"},
		{"BS erases emoji", "a🎉\x7f", "a"},
		{"BS at start", "\bab", "ab"},
		{"more BS than text", "ab\b\b\b\bc", "c"},
		{"BS erases tab", "a\t\bb", "ab"},
		{"BS erases U+FFFD", "a\xff\x08b", "ab"},
		{"BS after removed control", "ab\x1b\bc", "ac"},
		{"BS in fast prefix", "hello world\b\b\b\b\bthere", "hello there"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sanitize(nil, []byte(tt.in))
			if string(got) != tt.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !utf8.Valid(got) {
				t.Errorf("output %q is not valid UTF-8", got)
			}
			// BS must never erase what the caller already had in dst.
			pre := Sanitize([]byte("é"), []byte(tt.in))
			if string(pre) != "é"+tt.want {
				t.Errorf("with prefix: %q, want %q", pre, "é"+tt.want)
			}
		})
	}
}

func TestPrintablePrefix(t *testing.T) {
	base := []byte(strings.Repeat("x", 40))
	if n := printablePrefix(base); n != len(base) {
		t.Fatalf("all printable: %d", n)
	}
	for pos := range base {
		for _, c := range []byte{0x00, 0x08, 0x1f, 0x7f, 0x80, 0xff} {
			p := bytes.Clone(base)
			p[pos] = c
			if n := printablePrefix(p); n != pos {
				t.Fatalf("byte %#x at %d: prefix %d", c, pos, n)
			}
		}
		for _, c := range []byte{' ', '~', '\t'} {
			p := bytes.Clone(base)
			p[pos] = c
			if n := printablePrefix(p); n != len(p) {
				t.Fatalf("byte %#x at %d: prefix %d", c, pos, n)
			}
		}
	}
}

func TestIsBlank(t *testing.T) {
	for in, want := range map[string]bool{
		"": true, " ": true, "\t \t": true, " a ": false, "\u00a0": false, "\r": false,
	} {
		if got := IsBlank([]byte(in)); got != want {
			t.Errorf("IsBlank(%q) = %v", in, got)
		}
	}
}

func TestSanitizeAllocs(t *testing.T) {
	dst := make([]byte, 0, 256)
	ascii := []byte("hello there, how are you?")
	mixed := []byte("héllo \x1b[1m世界\x7f\xff!")
	n := testing.AllocsPerRun(100, func() {
		dst = Sanitize(dst[:0], ascii)
		dst = Sanitize(dst[:0], mixed)
	})
	if n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

func BenchmarkSanitizeASCII(b *testing.B) {
	line := []byte("the quick brown fox jumps over the lazy dog, 0123456789 ABCDEFGHI")
	dst := make([]byte, 0, 256)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		dst = Sanitize(dst[:0], line)
	}
}

func BenchmarkSanitizeMixed(b *testing.B) {
	line := []byte("héllo wörld 世界 🎉 \x1b[31mred\x1b[0m tab\there typo\x7fo \xff end")
	dst := make([]byte, 0, 256)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		dst = Sanitize(dst[:0], line)
	}
}
