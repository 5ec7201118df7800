package loadgen

import (
	"bytes"
	"math"
	"strconv"
)

var (
	benchTag = []byte("BENCH ")
	readyTag = []byte("BENCHREADY ")
	// netchat's error notices ("! slow down", "! nickname taken").
	errorPrefix = []byte("! ")
	// netchat's welcome is "* Welcome, NICK! ..."; node-ws-chat's and
	// node-chat's "* welcome NICK! ...": the case is not compared.
	welcomeTag = []byte("* welcome")
)

// parseBench parses "<sender> <seq> <unixnano>" at the start of b, the part
// of a received line after "BENCH ". The last number must end the line or
// be followed by a space (padding) or line end. It runs once per received
// line, so it parses by hand rather than allocate a string for strconv.
func parseBench(b []byte) (sender int, seq, sentAt int64, ok bool) {
	var f [3]int64
	for k := range f {
		v, n, good := parseUint(b)
		if !good {
			return 0, 0, 0, false
		}
		f[k] = v
		b = b[n:]
		if k < 2 {
			if len(b) == 0 || b[0] != ' ' {
				return 0, 0, 0, false
			}
			b = b[1:]
		}
	}
	if len(b) > 0 && b[0] != ' ' && b[0] != '\r' && b[0] != '\n' {
		return 0, 0, 0, false
	}
	if f[0] > math.MaxInt32 {
		return 0, 0, 0, false
	}
	return int(f[0]), f[1], f[2], true
}

// parseUint parses the leading decimal digits of b. It fails on no digits
// and on values that overflow int64, which a peer could send on purpose.
func parseUint(b []byte) (v int64, n int, ok bool) {
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		d := int64(b[n] - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, 0, false
		}
		v = v*10 + d
		n++
	}
	return v, n, n > 0
}

// appendBench appends "BENCH <sender> <seq> <now>", then a space and 'x'
// padding so that the line is exactly payload bytes including the newline,
// then the newline. A payload too small for the token gives the bare token.
func appendBench(buf []byte, sender int, seq, now int64, payload int) []byte {
	start := len(buf)
	buf = append(buf, benchTag...)
	buf = strconv.AppendInt(buf, int64(sender), 10)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, seq, 10)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, now, 10)
	if pad := payload - (len(buf) - start) - 1; pad > 0 {
		buf = append(buf, ' ')
		for range pad - 1 {
			buf = append(buf, 'x')
		}
	}
	return append(buf, '\n')
}

// isWelcome reports whether line accepts the nickname.
func isWelcome(line []byte) bool {
	return len(line) >= len(welcomeTag) && bytes.EqualFold(line[:len(welcomeTag)], welcomeTag)
}
