package udp

import (
	"encoding/hex"
	"io"
	"net/netip"
	"strconv"
	"unicode/utf8"
)

// DefaultEchoPort is the tutorial's echo server port.
const DefaultEchoPort = 41234

// Family names the address family of a datagram's source like Node's
// rinfo.family does. IPv4-mapped IPv6 sources are reported as IPv4, since
// that is what the peer actually used.
func Family(a netip.Addr) string {
	if a.Is4() || a.Is4In6() {
		return "IPv4"
	}
	return "IPv6"
}

// FormatDatagram renders one received datagram as a single line:
//
//	from 127.0.0.1:41234 (IPv4, 5 bytes): hello
//
// With asHex the payload is printed in hex. Otherwise bytes that would
// break the one-line format or drive the terminal (control characters,
// invalid UTF-8) are shown as Go escapes, so a hostile sender cannot forge
// lines or send escape sequences to the user's terminal.
func FormatDatagram(from netip.AddrPort, payload []byte, asHex bool) string {
	b := make([]byte, 0, 48+2*len(payload))
	return string(AppendDatagram(b, from, payload, asHex))
}

// AppendDatagram is FormatDatagram appending to b, including the newline.
func AppendDatagram(b []byte, from netip.AddrPort, payload []byte, asHex bool) []byte {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	b = append(b, "from "...)
	b = from.AppendTo(b)
	b = append(b, " ("...)
	b = append(b, Family(from.Addr())...)
	b = append(b, ", "...)
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	// Always "bytes" and always ": " before the payload, also for 1 and 0
	// bytes: SPEC §4 gives the line as a template that scripts match.
	b = append(b, " bytes): "...)
	if asHex {
		b = hex.AppendEncode(b, payload)
	} else {
		b = appendPrintable(b, payload)
	}
	return append(b, '\n')
}

func appendPrintable(b, p []byte) []byte {
	for len(p) > 0 {
		r, size := utf8.DecodeRune(p)
		switch {
		case r == utf8.RuneError && size <= 1:
			b = append(b, `\x`...)
			b = hex.AppendEncode(b, p[:1])
		case r == '\\':
			b = append(b, `\\`...)
		case strconv.IsPrint(r):
			b = append(b, p[:size]...)
		default:
			q := strconv.QuoteRune(r)
			b = append(b, q[1:len(q)-1]...)
		}
		p = p[size:]
	}
	return b
}

// WriteDatagram writes FormatDatagram's line to w.
func WriteDatagram(w io.Writer, from netip.AddrPort, payload []byte, asHex bool) error {
	_, err := w.Write(AppendDatagram(nil, from, payload, asHex))
	return err
}
