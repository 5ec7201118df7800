package loadgen

import (
	"bytes"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseBench(t *testing.T) {
	for _, tc := range []struct {
		in     string
		ok     bool
		sender int
		seq    int64
		at     int64
	}{
		{"0 1 1700000000000000000", true, 0, 1, 1700000000000000000},
		{"3 42 1700000000123456789 xxxxxxxx\r\n", true, 3, 42, 1700000000123456789},
		{"3 42 17\n", true, 3, 42, 17},
		{"3 42 17\r\n", true, 3, 42, 17},
		{"12 9223372036854775807 9223372036854775807", true, 12, 9223372036854775807, 9223372036854775807},
		{"", false, 0, 0, 0},
		{"3", false, 0, 0, 0},
		{"3 42", false, 0, 0, 0},
		{"3 42 ", false, 0, 0, 0},
		{"3  42 17", false, 0, 0, 0},
		{"-3 42 17", false, 0, 0, 0},
		{"3 -42 17", false, 0, 0, 0},
		{"3 42 17x", false, 0, 0, 0},
		{"3 42 1.5", false, 0, 0, 0},
		{"3\t42 17", false, 0, 0, 0},
		{"3 42 9223372036854775808", false, 0, 0, 0}, // int64 overflow
		{"3 99999999999999999999999 17", false, 0, 0, 0},
		{"2147483648 1 17", false, 0, 0, 0}, // sender beyond int32
		{"READY 1 2", false, 0, 0, 0},
	} {
		sender, seq, at, ok := parseBench([]byte(tc.in))
		if ok != tc.ok || sender != tc.sender || seq != tc.seq || at != tc.at {
			t.Errorf("parseBench(%q) = %d, %d, %d, %v; want %d, %d, %d, %v",
				tc.in, sender, seq, at, ok, tc.sender, tc.seq, tc.at, tc.ok)
		}
	}
}

func TestAppendBench(t *testing.T) {
	for _, payload := range []int{0, 10, 33, 34, 35, 64, 1000} {
		line := appendBench(nil, 7, 123, 1700000000123456789, payload)
		token := "BENCH 7 123 1700000000123456789"
		if !bytes.HasPrefix(line, []byte(token)) || line[len(line)-1] != '\n' {
			t.Fatalf("payload %d: %q", payload, line)
		}
		if want := max(payload, len(token)+1); len(line) != want {
			t.Errorf("payload %d: line is %d bytes, want %d", payload, len(line), want)
		}
		s, seq, at, ok := parseBench(line[len(benchTag):])
		if !ok || s != 7 || seq != 123 || at != 1700000000123456789 {
			t.Errorf("payload %d: %q does not parse back: %d %d %d %v", payload, line, s, seq, at, ok)
		}
	}
}

func TestParseBenchDoesNotAllocate(t *testing.T) {
	line := []byte("3 42 1700000000123456789 xxxxxxxxxxxxxxxx\r\n")
	if n := testing.AllocsPerRun(100, func() { parseBench(line) }); n != 0 {
		t.Fatalf("parseBench allocates %v times per line", n)
	}
}

// FuzzParseBench feeds the parser what a server (or anybody on the
// network) may send. Whatever it accepts must be a well-formed token that
// appendBench reproduces.
func FuzzParseBench(f *testing.F) {
	for _, s := range []string{
		"0 1 1700000000000000000 xxxx\r\n", "3 42 17", "", "1 2", "9223372036854775807 1 1",
		"1 2 99999999999999999999", "1 2 3\x00", "１ 2 3",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sender, seq, at, ok := parseBench(b)
		if !ok {
			return
		}
		if sender < 0 || seq < 0 || at < 0 {
			t.Fatalf("negative fields from %q: %d %d %d", b, sender, seq, at)
		}
		want := strconv.Itoa(sender) + " " + strconv.FormatInt(seq, 10) + " " + strconv.FormatInt(at, 10)
		// Leading zeros are the only way two inputs give the same fields.
		if !bytes.HasPrefix(b, []byte(want)) && !bytes.HasPrefix(b, []byte("0")) && !bytes.Contains(b, []byte(" 0")) {
			t.Fatalf("%q parsed as %q", b, want)
		}
		line := appendBench(nil, sender, seq, at, 0)
		s2, seq2, at2, ok2 := parseBench(line[len(benchTag):])
		if !ok2 || s2 != sender || seq2 != seq || at2 != at {
			t.Fatalf("%q does not round-trip via %q", b, line)
		}
	})
}

// FuzzHandleLine drives whole received lines through a receiver's
// accounting: no input may panic it or count a delivery that is not one.
func FuzzHandleLine(f *testing.F) {
	for _, s := range []string{
		"bench0: BENCH 0 1 1700000000000000000 xxxx\r\n", "BENCH 1 5 9000000000000000000\n",
		"BENCH 7 1 9000000000000000000\n", "* bench1 joined (3 online)\r\n", "! slow down\r\n",
		"bench0: BENCHREADY 0 42 0\r\n", "BENCH BENCH 1 1 1", "BENCHREADY 99999999999999999999 1",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		cfg := DefaultConfig()
		cfg.Clients, cfg.Senders = 4, 2
		r := &run{cfg: cfg, base: time.Now(), acked: make([]atomic.Int64, 2), wake: make([]chan struct{}, 2)}
		r.baseNano = r.base.UnixNano()
		for i := range r.wake {
			r.wake[i] = make(chan struct{}, 1)
		}
		c := &client{id: 3, lastSeq: make([]int64, 2)}
		st := new(stats)
		ck := chunk{now: r.now(), mStart: r.baseNano, mEnd: 1 << 62}
		r.handleLine(c, st, line, &ck)
		r.handleLine(c, st, line, &ck)
		st.flush(&ck)
		d := st.delivered.Load()
		if d > 2 || st.measured > d || st.lat.Count() != uint64(st.measured) || st.fresh.Load() > 1 {
			t.Fatalf("%q: delivered %d, measured %d (%d fresh), %d latency samples", line, d, st.measured, st.fresh.Load(), st.lat.Count())
		}
		if d == 2 && st.orderViolations != 1 {
			t.Fatalf("%q delivered twice without an order violation", line)
		}
		if d > 0 && !bytes.Contains(line, benchTag) {
			t.Fatalf("%q counted as a delivery", line)
		}
	})
}
