package loadgen

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/textproto"
	"strings"
)

// WebSocket (RFC 6455) as the bench needs it: the chat's line protocol,
// one text frame per line in each direction, as chatload --proto ws and
// netchat's /ws speak it.
//
// The handshake and the frame reader are written here rather than taken
// from github.com/coder/websocket: the receivers are read from epoll sets
// over the raw socket (poller_linux.go), which needs the socket and every
// byte that arrived after the 101 response, and coder/websocket keeps
// both inside its Conn. Reading through coder/websocket instead costs a
// goroutine per client and, per received 64-byte line, about ten times
// the CPU and one 512-byte allocation (BenchmarkWSReadFrame*, same stream
// over loopback: 1.4-2.0 µs and 1 alloc per frame against 0.13 µs and
// none).

// Opcodes (RFC 6455 section 5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

const (
	wsCloseNormal   = 1000
	wsCloseProtocol = 1002
	wsGUID          = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

var errWSProtocol = errors.New("websocket protocol error")

func wsAcceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsHandshake sends the opening handshake for path to host ("HOST:PORT",
// the Host header) over w and checks the answer read from br. Origin is
// http://host, so servers that accept only same-origin requests (netchat,
// coder/websocket by default) accept it. No extension or subprotocol is
// offered. Frames the server sends right after its answer stay in br.
func wsHandshake(w io.Writer, br *bufio.Reader, host, path string) error {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := "GET " + path + " HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"Origin: http://" + host + "\r\n" +
		"User-Agent: netchat-bench\r\n\r\n"
	if _, err := io.WriteString(w, req); err != nil {
		return fmt.Errorf("sending the WebSocket handshake: %w", err)
	}
	tp := textproto.NewReader(br)
	status, err := tp.ReadLine()
	if err != nil {
		return fmt.Errorf("no answer to the WebSocket handshake: %w", err)
	}
	// The status line decides; a server that is no WebSocket server (a
	// line-protocol chat greets instead) would never end the headers.
	version, code, _ := strings.Cut(status, " ")
	code, _, _ = strings.Cut(code, " ")
	if !strings.HasPrefix(version, "HTTP/1.") || code != "101" {
		return fmt.Errorf("server answered %.80q to the WebSocket upgrade of %s (want 101 Switching Protocols)", status, path)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return fmt.Errorf("bad WebSocket handshake answer: %w", err)
	}
	switch {
	case !strings.EqualFold(hdr.Get("Upgrade"), "websocket"):
		return fmt.Errorf("WebSocket handshake answer has Upgrade %q, want websocket", hdr.Get("Upgrade"))
	case hdr.Get("Sec-WebSocket-Accept") != wsAcceptKey(key):
		return fmt.Errorf("WebSocket handshake answer has a wrong Sec-WebSocket-Accept %q", hdr.Get("Sec-WebSocket-Accept"))
	case hdr.Get("Sec-WebSocket-Extensions") != "":
		return fmt.Errorf("server chose WebSocket extensions %q that were not offered", hdr.Get("Sec-WebSocket-Extensions"))
	}
	return nil
}

// appendWSFrame appends one final, masked client frame (RFC 6455 5.3:
// every client frame is masked, with a fresh key).
func appendWSFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], mrand.Uint32())
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, payload...)
	for i := range payload {
		b[start+i] ^= key[i&3]
	}
	return b
}

// appendWSClose appends a close frame with a status code.
func appendWSClose(b []byte, code uint16) []byte {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], code)
	return appendWSFrame(b, wsClose, p[:])
}

// wsReader parses the server's frames from a byte stream that arrives in
// arbitrary pieces, without allocating per frame: a data frame whose
// payload is whole in the piece being parsed is handed over in place;
// only payloads split across reads, or fragmented messages, are copied,
// and no more than maxMsg bytes of one message are kept (the rest is
// dropped, as an over-long line is in line mode).
type wsReader struct {
	hdr    [14]byte
	nh     int   // header bytes collected
	remain int64 // payload bytes of the current frame still to come
	op     byte  // opcode of the current frame
	fin    bool
	msgOp  byte   // opcode of the data message in progress; 0: none
	msg    []byte // its payload so far, if it could not be handed over in place
	over   bool   // the message outgrew maxMsg
	ctrl   []byte // payload of the control frame in progress
}

// wsEvents receives what a wsReader parses.
type wsEvents interface {
	// message is one whole data message (text or binary), possibly cut
	// to maxMsg bytes. It is valid only during the call.
	message(payload []byte)
	// control is a whole ping, pong or close frame.
	control(op byte, payload []byte)
}

// feed parses p. It returns an error wrapping errWSProtocol when the
// server breaks RFC 6455: a masked frame, reserved bits or opcodes, a
// control frame that is fragmented or too long, or a broken fragment
// sequence; the connection must then be failed.
func (r *wsReader) feed(p []byte, maxMsg int, ev wsEvents) error {
	for len(p) > 0 {
		if r.nh < r.hdrLen() {
			// Collect the header, which may be split across reads. (nh
			// stays at the header's length while its payload is read.)
			for len(p) > 0 && r.nh < r.hdrLen() {
				r.hdr[r.nh] = p[0]
				r.nh++
				p = p[1:]
			}
			if r.nh < r.hdrLen() {
				return nil
			}
			if err := r.startFrame(); err != nil {
				return err
			}
			if r.remain == 0 {
				r.endFrame(ev)
			}
			continue
		}
		k := int(min(r.remain, int64(len(p))))
		chunk := p[:k]
		p = p[k:]
		r.remain -= int64(k)
		switch {
		case r.op >= wsClose:
			r.ctrl = append(r.ctrl, chunk...)
		case r.remain == 0 && r.fin && len(r.msg) == 0 && !r.over:
			// The common case: a whole single-frame message in this
			// piece, handed over without a copy.
			r.msgOp = 0
			r.nh = 0
			ev.message(chunk[:min(len(chunk), maxMsg)])
			continue
		default:
			room := maxMsg - len(r.msg)
			if len(chunk) > room {
				chunk, r.over = chunk[:max(room, 0)], true
			}
			r.msg = append(r.msg, chunk...)
		}
		if r.remain == 0 {
			r.endFrame(ev)
		}
	}
	return nil
}

// hdrLen is the length of the frame header being collected, known once
// its first two bytes are.
func (r *wsReader) hdrLen() int {
	if r.nh < 2 {
		return 2
	}
	n := 2
	switch r.hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if r.hdr[1]&0x80 != 0 {
		n += 4
	}
	return n
}

func (r *wsReader) startFrame() error {
	b0, b1 := r.hdr[0], r.hdr[1]
	r.fin = b0&0x80 != 0
	r.op = b0 & 0x0f
	if b0&0x70 != 0 {
		return fmt.Errorf("%w: reserved bits set in a frame header", errWSProtocol)
	}
	if b1&0x80 != 0 {
		return fmt.Errorf("%w: the server masked a frame", errWSProtocol)
	}
	var n uint64
	switch l := b1 & 0x7f; l {
	case 126:
		n = uint64(binary.BigEndian.Uint16(r.hdr[2:4]))
	case 127:
		n = binary.BigEndian.Uint64(r.hdr[2:10])
		if n>>63 != 0 {
			return fmt.Errorf("%w: frame length out of range", errWSProtocol)
		}
	default:
		n = uint64(l)
	}
	switch r.op {
	case wsText, wsBinary:
		if r.msgOp != 0 {
			return fmt.Errorf("%w: a new message inside a fragmented one", errWSProtocol)
		}
		r.msgOp, r.msg, r.over = r.op, r.msg[:0], false
	case wsContinuation:
		if r.msgOp == 0 {
			return fmt.Errorf("%w: a continuation frame outside a message", errWSProtocol)
		}
	case wsClose, wsPing, wsPong:
		if !r.fin || n > 125 {
			return fmt.Errorf("%w: a fragmented or over-long control frame", errWSProtocol)
		}
		r.ctrl = r.ctrl[:0]
	default:
		return fmt.Errorf("%w: reserved opcode %#x", errWSProtocol, r.op)
	}
	r.remain = int64(n)
	return nil
}

// endFrame handles a frame whose payload is complete.
func (r *wsReader) endFrame(ev wsEvents) {
	r.nh = 0
	if r.op >= wsClose {
		ev.control(r.op, r.ctrl)
		return
	}
	if r.fin {
		r.msgOp = 0
		ev.message(r.msg)
		r.msg = r.msg[:0]
		if cap(r.msg) > 64<<10 {
			r.msg = nil // do not keep a rare big message's buffer per client
		}
	}
}
