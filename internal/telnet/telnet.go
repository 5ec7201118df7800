// Package telnet strips telnet protocol commands (RFC 854) from a client's
// byte stream so that the chat server can treat telnet and nc users alike.
//
// The server never negotiates anything: every option the client offers or
// requests is refused, which keeps a telnet client in its default NVT line
// mode with local echo.
package telnet

import "bytes"

// Telnet command bytes (RFC 854).
const (
	iac  = 255
	dont = 254
	do   = 253
	wont = 252
	will = 251
	sb   = 250
	ayt  = 246
	ip   = 244
	se   = 240
)

// Event is a set of telnet commands seen by one Process call that the caller
// must act on.
type Event uint8

const (
	// EventAYT reports IAC AYT (Are You There); the caller answers "* yes".
	EventAYT Event = 1 << iota
	// EventIP reports IAC IP (Interrupt Process, Ctrl-C in telnet); the
	// caller ends the session like /quit.
	EventIP
)

type state uint8

const (
	stData  state = iota
	stIAC         // IAC seen
	stOpt         // IAC WILL/WONT/DO/DONT seen, awaiting the option byte
	stSB          // inside IAC SB ... IAC SE
	stSBIAC       // IAC seen inside a subnegotiation
)

// Filter removes telnet command sequences from a byte stream. Its state
// survives across Process calls so that a sequence may be split anywhere.
// The zero value is ready to use; a Filter must not be used concurrently.
type Filter struct {
	state state
	verb  byte // WILL/WONT/DO/DONT while in stOpt
	// refused records options already refused and not yet acknowledged, per
	// direction ([0]: client's WILL, [1]: client's DO), so that a client
	// repeating an offer in violation of RFC 1143 gets a single answer.
	refused [2][4]uint64
}

// Process filters p in place and returns p[:n], the data bytes; the output is
// never longer than the input. Refusals (IAC DONT x for WILL x, IAC WONT x for
// DO x) are appended to *reply, for the caller to send to the client; reply
// may be nil to drop them. The events seen in p are returned as a bit set.
//
// IAC IAC yields a literal 0xFF data byte. Subnegotiations are discarded
// however long, without buffering. IAC followed by a byte below 240 (not a
// telnet command) is dropped and the byte kept as data, so that a stray 0xFF
// from a raw client cannot eat user text.
func (f *Filter) Process(p []byte, reply *[]byte) (data []byte, ev Event) {
	i := 0
	if f.state == stData {
		i = bytes.IndexByte(p, iac)
		if i < 0 {
			return p, 0
		}
	}
	w := i
	for i < len(p) {
		switch f.state {
		case stData:
			j := bytes.IndexByte(p[i:], iac)
			if j < 0 {
				j = len(p) - i
			}
			if w != i {
				copy(p[w:], p[i:i+j])
			}
			w += j
			i += j
			if i < len(p) {
				i++
				f.state = stIAC
			}
		case stIAC:
			c := p[i]
			i++
			f.state = stData
			switch {
			case c == iac:
				p[w] = iac
				w++
			case c >= will: // WILL, WONT, DO, DONT
				f.verb = c
				f.state = stOpt
			case c == sb:
				f.state = stSB
			case c == ayt:
				ev |= EventAYT
			case c == ip:
				ev |= EventIP
			case c < se:
				p[w] = c
				w++
			}
		case stOpt:
			f.option(f.verb, p[i], reply)
			i++
			f.state = stData
		case stSB:
			j := bytes.IndexByte(p[i:], iac)
			if j < 0 {
				i = len(p)
			} else {
				i += j + 1
				f.state = stSBIAC
			}
		case stSBIAC:
			c := p[i]
			switch c {
			case se:
				i++
				f.state = stData
			case iac:
				i++
				f.state = stSB
			default:
				// A command inside a subnegotiation means the client
				// never sent SE; like BSD telnetd, end the subnegotiation
				// and obey the command rather than swallow the rest of
				// the session.
				f.state = stIAC
			}
		}
	}
	return p[:w], ev
}

func (f *Filter) option(verb, opt byte, reply *[]byte) {
	dir, answer := 0, byte(dont)
	switch verb {
	case do, dont:
		dir, answer = 1, wont
	}
	word, bit := &f.refused[dir][opt>>6], uint64(1)<<(opt&63)
	switch verb {
	case will, do:
		if *word&bit != 0 {
			return
		}
		*word |= bit
		if reply != nil {
			*reply = append(*reply, iac, answer, opt)
		}
	default:
		// WONT/DONT acknowledges the refusal (or announces the default);
		// answering would risk a negotiation loop.
		*word &^= bit
	}
}
