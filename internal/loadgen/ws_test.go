package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsRelay is a small chat room over WebSocket, written with
// github.com/coder/websocket as netchat's /ws is: a greeting, a nickname,
// "* Welcome, NICK!", then every text frame goes to every other member,
// one frame per line. It records how each connection was closed.
type wsRelay struct {
	mu      sync.Mutex
	members map[*websocket.Conn]bool
	// Closes by status code (from the client's close frame).
	closes sync.Map // websocket.StatusCode -> *atomic.Int64
	pongs  atomic.Int64
	// pingEach makes the relay ping every new member and wait for its pong
	// before it welcomes it.
	pingEach bool
	// split sends the welcome in two fragments and packs two lines into
	// one message for every relayed line: the bench must join fragments
	// and split messages into lines.
	split bool
}

func startWSRelay(t *testing.T, rel *wsRelay) string {
	t.Helper()
	rel.members = map[*websocket.Conn]bool{}
	srv := httptest.NewServer(http.HandlerFunc(rel.serve))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func (rel *wsRelay) closeCount(code websocket.StatusCode) int64 {
	v, ok := rel.closes.Load(code)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func (rel *wsRelay) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ws" {
		http.NotFound(w, r)
		return
	}
	// Accept checks that Origin matches Host, as netchat's /ws does.
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 20)
	ctx := r.Context()
	defer func() {
		rel.mu.Lock()
		delete(rel.members, c)
		rel.mu.Unlock()
		c.CloseNow()
	}()
	record := func(err error) {
		code := websocket.CloseStatus(err)
		v, _ := rel.closes.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("Welcome to the relay! Please enter a nickname:")); err != nil {
		return
	}
	// Reads run in their own goroutine, so that Ping (which needs a
	// reader to see the pong) works while the handshake waits.
	msgs := make(chan []byte, 64)
	go func() {
		defer close(msgs)
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				record(err)
				return
			}
			msgs <- p
		}
	}()
	nick, ok := <-msgs
	if !ok {
		return
	}
	if rel.pingEach {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.Ping(pctx)
		cancel()
		if err != nil {
			return
		}
		rel.pongs.Add(1)
	}
	welcome := []byte("* Welcome, " + string(nick) + "!")
	if rel.split {
		wr, err := c.Writer(ctx, websocket.MessageText)
		if err != nil {
			return
		}
		// Two writes with a flush between them: two frames.
		_, _ = wr.Write(welcome[:5])
		_, _ = wr.Write(welcome[5:])
		if wr.Close() != nil {
			return
		}
	} else if c.Write(ctx, websocket.MessageText, welcome) != nil {
		return
	}
	rel.mu.Lock()
	rel.members[c] = true
	rel.mu.Unlock()
	for p := range msgs {
		line := append([]byte(string(nick)+": "), p...)
		if rel.split {
			line = append(append(line, '\n'), "* a second line in the same message"...)
		}
		rel.mu.Lock()
		for o := range rel.members {
			if o != c {
				_ = o.Write(ctx, websocket.MessageText, line)
			}
		}
		rel.mu.Unlock()
	}
}

func TestBenchWebSocket(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rel  *wsRelay
	}{
		{"plain", &wsRelay{}},
		{"pings, fragments and two lines per message", &wsRelay{pingEach: true, split: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := startWSRelay(t, tc.rel)
			cfg := smallConfig(addr)
			cfg.WSPath = "/ws"
			cfg.Clients, cfg.Senders, cfg.Rate = 8, 3, 50
			cfg.Duration = 500 * time.Millisecond
			res, err := Run(t.Context(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkPerfect(t, res)
			if res.WSPath != "/ws" {
				t.Errorf("result ws_path %q", res.WSPath)
			}
			if tc.rel.pingEach && tc.rel.pongs.Load() != int64(cfg.Clients) {
				t.Errorf("%d pongs for %d clients", tc.rel.pongs.Load(), cfg.Clients)
			}
			// Every client ended with the close handshake (status 1000),
			// which the relay saw before the bench closed TCP.
			deadline := time.Now().Add(10 * time.Second)
			for tc.rel.closeCount(websocket.StatusNormalClosure) < int64(cfg.Clients) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if n := tc.rel.closeCount(websocket.StatusNormalClosure); n != int64(cfg.Clients) {
				t.Errorf("%d of %d clients closed with status 1000 (no status: %d)", n, cfg.Clients, tc.rel.closeCount(-1))
			}
		})
	}
}

// TestBenchWebSocketRefusals: a wrong path is an HTTP error, and a
// server that is not a WebSocket server at all is named as such.
func TestBenchWebSocketRefusals(t *testing.T) {
	t.Parallel()
	addr := startWSRelay(t, &wsRelay{})
	cfg := smallConfig(addr)
	cfg.WSPath = "/nope"
	_, err := Run(t.Context(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), `"HTTP/1.1 404 Not Found"`) {
		t.Errorf("wrong path: %v", err)
	}
	cfg = smallConfig(startServer(t, nil)) // a line-protocol server
	cfg.WSPath = "/ws"
	cfg.GreetingTimeout = 30 * time.Second
	if _, err := Run(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "WebSocket") {
		t.Errorf("line server: %v", err)
	}
	cfg.TLS = &tls.Config{}
	if err := cfg.Validate(); err == nil {
		t.Error("WebSocket over TLS accepted")
	}
}

// TestWSProtocolErrorFailsClient: a server frame that breaks RFC 6455
// (here a masked one) fails the client: close 1002 goes out, and the
// client counts as a read error.
func TestWSProtocolErrorFailsClient(t *testing.T) {
	t.Parallel()
	ours, theirs := net.Pipe()
	defer theirs.Close()
	c := &client{id: 1, conn: ours, raw: ours, ws: true}
	r := &run{cfg: DefaultConfig(), base: time.Now(), maxLine: 4096}
	wrote := make(chan []byte, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := theirs.Read(b)
		wrote <- b[:n]
	}()
	st := new(stats)
	masked := []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}
	if r.consume(c, st, masked, 0) || !errors.Is(c.protoErr, errWSProtocol) {
		t.Fatalf("masked frame accepted (protoErr %v)", c.protoErr)
	}
	frame := <-wrote
	if len(frame) != 8 || frame[0] != 0x88 || frame[1] != 0x82 {
		t.Fatalf("wrote %x, want a masked close frame with a 2-byte status", frame)
	}
	if code := binary.BigEndian.Uint16([]byte{frame[6] ^ frame[2], frame[7] ^ frame[3]}); code != wsCloseProtocol {
		t.Errorf("close status %d, want %d", code, wsCloseProtocol)
	}
	r.readEnded(c, nil)
	if !c.readFailed || c.disconnected || !c.ended.Load() {
		t.Errorf("readFailed %v, disconnected %v, ended %v", c.readFailed, c.disconnected, c.ended.Load())
	}
}

// wsCollect records what a wsReader hands over.
type wsCollect struct {
	msgs  []string
	ctrls []string
}

func (w *wsCollect) message(p []byte) { w.msgs = append(w.msgs, string(p)) }
func (w *wsCollect) control(op byte, p []byte) {
	w.ctrls = append(w.ctrls, fmt.Sprintf("%x:%s", op, p))
}

// serverFrame builds an unmasked server frame.
func serverFrame(fin bool, op byte, p []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(p); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

func TestWSReader(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("y"), 70000)
	stream := bytes.Join([][]byte{
		serverFrame(true, wsText, []byte("hello")),
		serverFrame(true, wsText, nil),
		serverFrame(false, wsText, []byte("frag")),
		serverFrame(true, wsPing, []byte("p1")), // control frames may sit between fragments
		serverFrame(false, wsContinuation, []byte("men")),
		serverFrame(true, wsContinuation, []byte("ted")),
		serverFrame(true, wsBinary, bytes.Repeat([]byte("x"), 300)),
		serverFrame(true, wsText, big),
		serverFrame(true, wsPong, nil),
		serverFrame(true, wsClose, []byte{0x03, 0xe8}),
	}, nil)
	want := wsCollect{
		msgs:  []string{"hello", "", "fragmented", strings.Repeat("x", 300), strings.Repeat("y", 1000)},
		ctrls: []string{"9:p1", "a:", "8:\x03\xe8"},
	}
	// However the stream is cut into reads, the same comes out.
	for _, step := range []int{len(stream), 1, 2, 3, 7, 100, 4096} {
		var got wsCollect
		var r wsReader
		for p := stream; len(p) > 0; {
			k := min(step, len(p))
			if err := r.feed(p[:k], 1000, &got); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			p = p[k:]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("step %d:\n got %.200q\nwant %.200q", step, got, want)
		}
	}
}

func TestWSReaderProtocolErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		stream []byte
	}{
		{"masked", []byte{0x81, 0x81, 0, 0, 0, 0, 'x'}},
		{"reserved bits", []byte{0xc1, 0x00}},
		{"reserved opcode", []byte{0x83, 0x00}},
		{"fragmented ping", []byte{0x09, 0x00}},
		{"long ping", append([]byte{0x89, 126, 0, 200}, make([]byte, 200)...)},
		{"continuation first", []byte{0x80, 0x00}},
		{"text inside a fragmented message", []byte{0x01, 0x00, 0x81, 0x00}},
		{"length with the top bit", []byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}},
	} {
		var r wsReader
		if err := r.feed(tc.stream, 1000, &wsCollect{}); !errors.Is(err, errWSProtocol) {
			t.Errorf("%s: err %v, want a protocol error", tc.name, err)
		}
	}
}

// TestWSFrameRoundTrip: what the bench sends parses back (after
// unmasking) as the payload it was given.
func TestWSFrameRoundTrip(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 125, 126, 65535, 65536} {
		p := bytes.Repeat([]byte{'a'}, n)
		f := appendWSFrame(nil, wsText, p)
		if f[0] != 0x81 || f[1]&0x80 == 0 {
			t.Fatalf("%d: header %x", n, f[:2])
		}
		hl := 2
		switch f[1] & 0x7f {
		case 126:
			hl += 2
		case 127:
			hl += 8
		}
		key, body := f[hl:hl+4], f[hl+4:]
		for i := range body {
			body[i] ^= key[i&3]
		}
		// The same frame unmasked is a server frame.
		f[1] &^= 0x80
		server := append(append([]byte{}, f[:hl]...), body...)
		var got wsCollect
		var r wsReader
		if err := r.feed(server, 1<<20, &got); err != nil || len(got.msgs) != 1 || got.msgs[0] != string(p) {
			t.Fatalf("%d bytes: %v, %d messages", n, err, len(got.msgs))
		}
	}
}

// FuzzWSReader feeds arbitrary server bytes, whole and cut into pieces:
// nothing may panic, and the cut must not change what comes out.
func FuzzWSReader(f *testing.F) {
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, uint8(1))
	f.Add(append(serverFrame(false, wsText, []byte("ab")), serverFrame(true, wsContinuation, []byte("cd"))...), uint8(3))
	f.Add(serverFrame(true, wsText, bytes.Repeat([]byte("z"), 200)), uint8(50))
	f.Add([]byte{0x89, 0x02, 'p', 'q', 0x88, 0x02, 0x03, 0xe8}, uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		var whole, cut wsCollect
		var r1, r2 wsReader
		err1 := r1.feed(stream, 64, &whole)
		var err2 error
		k := max(int(step), 1)
		for p := stream; len(p) > 0 && err2 == nil; {
			n := min(k, len(p))
			err2 = r2.feed(p[:n], 64, &cut)
			p = p[n:]
		}
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("whole: %v, in pieces of %d: %v", err1, k, err2)
		}
		if err1 == nil && fmt.Sprint(whole) != fmt.Sprint(cut) {
			t.Fatalf("whole %q, in pieces of %d %q", whole, k, cut)
		}
		for _, m := range whole.msgs {
			if len(m) > 64 {
				t.Fatalf("message of %d bytes kept, limit 64", len(m))
			}
		}
	})
}

// frameServer is a WebSocket server that, once upgraded, writes n text
// frames of 63-byte payloads (a 64-byte chat line) in blocks of 64 frames
// per write, so that the system calls are few and the readers' own cost
// per frame shows.
func frameServer(b *testing.B, n int) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	block := bytes.Repeat(serverFrame(true, wsText, bytes.Repeat([]byte("x"), 63)), 64)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			wsAcceptKey(req.Header.Get("Sec-WebSocket-Key")))
		for sent := 0; sent < n; sent += 64 {
			if _, err := c.Write(block); err != nil {
				return
			}
		}
	}()
	return ln.Addr().String()
}

type countSink struct{ n int }

func (s *countSink) message([]byte)       { s.n++ }
func (s *countSink) control(byte, []byte) {}

// BenchmarkWSReadFrameOwn: the bench's reader, per received frame.
func BenchmarkWSReadFrameOwn(b *testing.B) {
	addr := frameServer(b, b.N+64)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if err := wsHandshake(c, br, addr, "/ws"); err != nil {
		b.Fatal(err)
	}
	var r wsReader
	sink := &countSink{}
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	if k := br.Buffered(); k > 0 {
		p, _ := br.Peek(k)
		if err := r.feed(p, 4096, sink); err != nil {
			b.Fatal(err)
		}
	}
	for sink.n < b.N {
		k, err := c.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.feed(buf[:k], 4096, sink); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWSReadFrameCoder: github.com/coder/websocket reading the same
// stream, one Read per message.
func BenchmarkWSReadFrameCoder(b *testing.B) {
	addr := frameServer(b, b.N+64)
	c, _, err := websocket.Dial(context.Background(), "ws://"+addr+"/ws", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseNow()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, _, err := c.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
