package telnet

import (
	"bytes"
	"fmt"
	"testing"
)

// process runs a fresh Filter over the chunks and returns the concatenated
// data, replies and events.
func process(chunks ...[]byte) (data, reply []byte, ev Event) {
	var f Filter
	for _, c := range chunks {
		c = bytes.Clone(c)
		d, e := f.Process(c, &reply)
		data = append(data, d...)
		ev |= e
	}
	return data, reply, ev
}

func b(s ...any) []byte {
	var out []byte
	for _, x := range s {
		switch v := x.(type) {
		case string:
			out = append(out, v...)
		case int:
			out = append(out, byte(v))
		case rune:
			out = append(out, byte(v))
		default:
			panic(fmt.Sprintf("bad %T", x))
		}
	}
	return out
}

// The bytes a real telnet client sends on connect, and its later NAWS
// subnegotiation (80x24).
var (
	telnetConnect = b(255, 251, 31, 255, 251, 32, 255, 251, 24, 255, 251, 39, 255, 253, 1, 255, 251, 3, 255, 253, 3)
	telnetNAWS    = b(255, 250, 31, 0, 80, 0, 24, 255, 240)
)

func TestProcess(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		data  []byte
		reply []byte
		ev    Event
	}{
		{"plain", b("hello\r\n"), b("hello\r\n"), nil, 0},
		{"empty", nil, nil, nil, 0},
		{"IAC IAC", b("a", 255, 255, "b"), b("a", 255, "b"), nil, 0},
		{"IAC IAC twice", b(255, 255, 255, 255), b(255, 255), nil, 0},
		{"WILL", b("a", 255, 251, 1, "b"), b("ab"), b(255, 254, 1), 0},
		{"DO", b("a", 255, 253, 3, "b"), b("ab"), b(255, 252, 3), 0},
		{"WONT", b("a", 255, 252, 1, "b"), b("ab"), nil, 0},
		{"DONT", b("a", 255, 254, 1, "b"), b("ab"), nil, 0},
		{"WILL IAC option", b(255, 251, 255, "x"), b("x"), b(255, 254, 255), 0},
		{"repeated WILL answered once", b(255, 251, 1, 255, 251, 1), nil, b(255, 254, 1), 0},
		{"WILL after acknowledgement answered again",
			b(255, 251, 1, 255, 252, 1, 255, 251, 1), nil, b(255, 254, 1, 255, 254, 1), 0},
		{"WILL and DO same option", b(255, 251, 1, 255, 253, 1), nil, b(255, 254, 1, 255, 252, 1), 0},
		{"AYT", b("a", 255, 246, "b"), b("ab"), nil, EventAYT},
		{"IP", b("a", 255, 244, "b"), b("ab"), nil, EventIP},
		{"IP and AYT", b(255, 244, 255, 246), nil, nil, EventIP | EventAYT},
		{"two-byte commands", b("a", 255, 241, 255, 242, 255, 243, 255, 245, 255, 247, 255, 248, 255, 249, 255, 240, "b"),
			b("ab"), nil, 0},
		{"IAC non-command keeps the byte", b("a", 255, 'x', "b"), b("axb"), nil, 0},
		{"SB", b("a", 255, 250, 24, 0, "xterm", 255, 240, "b"), b("ab"), nil, 0},
		{"SB with IAC IAC", b("a", 255, 250, 24, 255, 255, 1, 255, 240, "b"), b("ab"), nil, 0},
		{"SB with data-looking content", b(255, 250, 1, "hello\r\n", 255, 240), nil, nil, 0},
		{"empty SB", b(255, 250, 255, 240, "x"), b("x"), nil, 0},
		{"SB cut short by a command", b(255, 250, 1, 2, 255, 246, "x"), b("x"), nil, EventAYT},
		{"SB cut short by WILL", b(255, 250, 1, 2, 255, 251, 5, "x"), b("x"), b(255, 254, 5), 0},
		{"unterminated SB eats the rest", b(255, 250, 1, "abc"), nil, nil, 0},
		{"telnet connect", telnetConnect, nil,
			b(255, 254, 31, 255, 254, 32, 255, 254, 24, 255, 254, 39, 255, 252, 1, 255, 254, 3, 255, 252, 3), 0},
		{"telnet connect, NAWS, line",
			append(append(bytes.Clone(telnetConnect), telnetNAWS...), "alice\r\n"...), b("alice\r\n"),
			b(255, 254, 31, 255, 254, 32, 255, 254, 24, 255, 254, 39, 255, 252, 1, 255, 254, 3, 255, 252, 3), 0},
		{"dangling IAC", b("a", 255), b("a"), nil, 0},
		{"dangling WILL", b("a", 255, 251), b("a"), nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, reply, ev := process(tt.in)
			if !bytes.Equal(data, tt.data) {
				t.Errorf("data = %q, want %q", data, tt.data)
			}
			if !bytes.Equal(reply, tt.reply) {
				t.Errorf("reply = % x, want % x", reply, tt.reply)
			}
			if ev != tt.ev {
				t.Errorf("ev = %b, want %b", ev, tt.ev)
			}
			// Every split into two reads must give the same result.
			for i := 0; i <= len(tt.in); i++ {
				d2, r2, e2 := process(tt.in[:i], tt.in[i:])
				if !bytes.Equal(d2, data) || !bytes.Equal(r2, reply) || e2 != ev {
					t.Errorf("split at %d: got %q % x %b, want %q % x %b", i, d2, r2, e2, data, reply, ev)
				}
			}
		})
	}
}

func TestProcessSplitEverywhere(t *testing.T) {
	in := b("hi", 255, 255, 255, 251, 1, 255, 250, 31, 0, 80, 255, 255, 0, 24, 255, 240, "x",
		255, 246, 255, 253, 3, "yz", 255, 244, 255, 241, "\r\n")
	wantData, wantReply := b("hi", 255, "xyz\r\n"), b(255, 254, 1, 255, 252, 3)
	data, reply, ev := process(in)
	if !bytes.Equal(data, wantData) || !bytes.Equal(reply, wantReply) || ev != EventAYT|EventIP {
		t.Fatalf("got %q % x %b", data, reply, ev)
	}
	for i := 0; i <= len(in); i++ {
		for j := i; j <= len(in); j++ {
			d, r, e := process(in[:i], in[i:j], in[j:])
			if !bytes.Equal(d, data) || !bytes.Equal(r, reply) || e != ev {
				t.Errorf("split at %d,%d: got %q % x %b", i, j, d, r, e)
			}
		}
	}
	// One byte per read, as from a slow link.
	chunks := make([][]byte, len(in))
	for i := range in {
		chunks[i] = in[i : i+1]
	}
	if d, r, e := process(chunks...); !bytes.Equal(d, data) || !bytes.Equal(r, reply) || e != ev {
		t.Errorf("bytewise: got %q % x %b", d, r, e)
	}
}

func TestLongSBAcrossReads(t *testing.T) {
	var f Filter
	var reply []byte
	if d, _ := f.Process(b("before", 255, 250, 24), &reply); string(d) != "before" {
		t.Fatalf("got %q", d)
	}
	chunk := bytes.Repeat(b("junk", 255, 255), 1000)
	for range 1000 {
		if d, ev := f.Process(bytes.Clone(chunk), &reply); len(d) != 0 || ev != 0 {
			t.Fatalf("SB content leaked: %q %b", d, ev)
		}
	}
	if d, _ := f.Process(b(255, 240, "after"), &reply); string(d) != "after" {
		t.Fatalf("got %q", d)
	}
	if reply != nil {
		t.Fatalf("reply = % x", reply)
	}
}

func TestFastPathUntouched(t *testing.T) {
	var f Filter
	p := []byte("plain text\r\n")
	d, ev := f.Process(p, nil)
	if &d[0] != &p[0] || len(d) != len(p) || ev != 0 {
		t.Fatal("fast path did not return p itself")
	}
}

func TestNilReply(t *testing.T) {
	var f Filter
	if d, _ := f.Process(b(255, 251, 1, "x"), nil); string(d) != "x" {
		t.Fatalf("got %q", d)
	}
}

func TestProcessAllocs(t *testing.T) {
	var f Filter
	reply := make([]byte, 0, 64)
	in := b("hello", 255, 255, 255, 246, "world\r\n")
	buf := make([]byte, len(in))
	n := testing.AllocsPerRun(100, func() {
		copy(buf, in)
		reply = reply[:0]
		f.Process(buf, &reply)
	})
	if n != 0 {
		t.Fatalf("%v allocs per Process", n)
	}
}

func BenchmarkFilterPlain(b *testing.B) {
	var f Filter
	var reply []byte
	p := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789abcdefghij\n"), 64)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		f.Process(p, &reply)
	}
}

func BenchmarkFilterIAC(b *testing.B) {
	var f Filter
	reply := make([]byte, 0, 64)
	line := []byte("the quick brown fox jumps over the lazy dog 0123456789abcdefghij\n")
	line[10] = 255
	line[11] = 255 // IAC IAC: forces the copying path
	src := bytes.Repeat(line, 64)
	p := make([]byte, len(src))
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		copy(p, src)
		f.Process(p, &reply)
	}
}
