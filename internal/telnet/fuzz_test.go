package telnet

import (
	"bytes"
	"testing"
)

func FuzzFilter(f *testing.F) {
	f.Add([]byte("hello\r\n"), uint16(3))
	f.Add(telnetConnect, uint16(7))
	f.Add(append(bytes.Clone(telnetNAWS), "x\r\n"...), uint16(4))
	f.Add([]byte{255, 255, 'a', 255, 246, 255, 244}, uint16(1))
	f.Add([]byte{255, 250, 1, 255, 255, 255, 240, 'z'}, uint16(5))
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		at := int(split) % (len(in) + 1)
		data, reply, ev := process(in)
		d2, r2, e2 := process(in[:at], in[at:])
		if !bytes.Equal(data, d2) || !bytes.Equal(reply, r2) || ev != e2 {
			t.Fatalf("split at %d differs: %q % x %b vs %q % x %b", at, d2, r2, e2, data, reply, ev)
		}
		if len(data) > len(in) {
			t.Fatalf("output %d bytes longer than input %d", len(data), len(in))
		}
		// Each literal 0xFF needs an IAC IAC pair in the input.
		if out, pairs := bytes.Count(data, []byte{255}), bytes.Count(in, []byte{255, 255}); out > pairs {
			t.Fatalf("%d 0xFF bytes out, only %d IAC IAC pairs in", out, pairs)
		}
		if len(reply) > len(in) {
			t.Fatalf("reply %d bytes longer than input %d", len(reply), len(in))
		}
		if len(reply)%3 != 0 {
			t.Fatalf("reply % x is not made of 3-byte commands", reply)
		}
		for i := 0; i < len(reply); i += 3 {
			if reply[i] != iac || (reply[i+1] != dont && reply[i+1] != wont) {
				t.Fatalf("bad reply % x", reply[i:i+3])
			}
		}
		if !bytes.Contains(in, []byte{255}) && !bytes.Equal(data, in) {
			t.Fatalf("input without IAC changed: %q -> %q", in, data)
		}
	})
}
