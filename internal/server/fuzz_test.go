package server

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"netchat/internal/chat"
)

// recorder is a chat.Session that keeps what it is sent.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) Deliver(l []byte) <-chan struct{} {
	r.mu.Lock()
	r.lines = append(r.lines, string(l))
	r.mu.Unlock()
	return nil
}

// controlFree reports whether s is valid UTF-8 without control characters
// (C0 but TAB, DEL, C1).
func controlFree(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' || r >= 0x7F && r <= 0x9F {
			return false
		}
	}
	return true
}

// FuzzSession feeds arbitrary bytes, split in two writes, through a real
// connection's whole input path (telnet filter, splitter, sanitizer, room)
// and checks what the other user and the client itself receive: control
// characters never reach anybody, every line the client gets ends in CR LF,
// and IAC is sent only to a client that sent IAC, as 3-byte refusals.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"hello\r\n", "\x1b[2J\x1b[31mred\r\n", "c:observer:\x1b]0;x\x07hi\n", "/msg observer \x9b1m\r\n",
		"n:eve\r/me \x00waves\r\n", "abc\b\x7f\x7fz\n" + strings.Repeat("x", 100) + "\nok\n",
		"\xff\xfb\x1f\xff\xfb\x20\xff\xfd\x01\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0hi\r\n",
		"a\xff\xffb\xff\xf6\r\n", "bye\r\n\xff\xf4after\r\n", "/quit \x1b[5mgone\r\nlater\r\n",
		"\xe2\x82\r\n\xc0\xaf\r\n", "//\x07x\r\x00y\r\n", "l\r\n/who\r\nhelp\n",
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		room := chat.NewRoom(chat.Config{Name: "fuzz", History: 3, NoticeBatchAbove: -1})
		cfg := Defaults()
		cfg.MaxLine = 64
		cfg.NickTimeout = 0
		srv := New(room, cfg)
		defer srv.Close()
		obs := &recorder{}
		if _, err := room.Join(obs, "observer", chat.Info{}); err != nil {
			t.Fatal(err)
		}

		cli, sv := net.Pipe()
		srv.accept(sv)
		var received bytes.Buffer
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			_, _ = io.Copy(&received, cli)
		}()
		at := int(split) % (len(in) + 1)
		// The marker ends any telnet sequence and any line, whatever state
		// the input left the filter and the splitter in.
		marker := []byte{iacB, seB, iacB, seB, '\r', '\n'}
		for _, p := range [][]byte{[]byte("mallory\r\n"), in[:at], in[at:], marker} {
			_ = cli.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if _, err := cli.Write(p); err != nil {
				break // the session ended (quit, telnet IP)
			}
		}
		// Every byte written has been read, hence all but the marker
		// processed; closing ends the session, and once the connection is
		// gone nothing more is delivered.
		_ = cli.Close()
		<-readDone
		waitFor(t, "the session to end", func() bool { return srv.Conns() == 0 })

		obs.mu.Lock()
		lines := obs.lines
		obs.mu.Unlock()
		for _, l := range lines {
			if !controlFree(l) {
				t.Fatalf("the other user got %q", l)
			}
		}

		// What the client got: lines ending in CR LF, with telnet
		// refusals (IAC DONT/WONT x) between them only if it sent IAC.
		out := received.Bytes()
		var text []byte
		for i := 0; i < len(out); i++ {
			if out[i] != iacB {
				text = append(text, out[i])
				continue
			}
			if !bytes.Contains(in, []byte{iacB}) {
				t.Fatalf("IAC sent to a client that sent none: %q", out)
			}
			if i+2 >= len(out) || out[i+1] != dontB && out[i+1] != wontB {
				t.Fatalf("bad telnet reply at %d in %q", i, out)
			}
			i += 2
		}
		ls := strings.Split(string(text), "\r\n")
		for i, l := range ls {
			if i == len(ls)-1 {
				// Unterminated only where our Close cut it off, maybe
				// in the middle of a character.
				l = strings.ToValidUTF8(l, "")
			}
			if !controlFree(l) {
				t.Fatalf("the client got line %q", l)
			}
		}
	})
}
