package server

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"netchat/internal/chat"
	"netchat/internal/syncbuf"
)

// Integration tests for SPEC §2.3 (input hygiene, telnet) and the
// per-connection limits of §2.4, all over loopback TCP.

// readRaw reads exactly n bytes that are not part of a line protocol (telnet
// replies), failing the test after waitTimeout.
func (c *client) readRaw(n int) []byte {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(waitTimeout))
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		c.t.Fatalf("%s: reading %d raw bytes: %v (got % x)", c.name, n, err, b)
	}
	return b
}

// writeSlowly writes b in pieces of at most n bytes, one write each, so
// that the server sees many reads (TCP_NODELAY is on by default in Go).
func (c *client) writeSlowly(b []byte, n int) {
	c.t.Helper()
	for len(b) > 0 {
		k := min(n, len(b))
		c.write(b[:k])
		b = b[k:]
	}
}

// keepWriting writes data every period until the returned stop function is
// called (it may be called more than once).
func (c *client) keepWriting(period time.Duration, data string) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				_ = c.c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := io.WriteString(c.c, data); err != nil {
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

func captureLogs(sc *Config) *syncbuf.Buffer {
	buf := &syncbuf.Buffer{}
	sc.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return buf
}

// pair joins alice and bob and consumes bob's join notice.
func (s *testServer) pair(t *testing.T) (alice, bob *client) {
	t.Helper()
	alice = s.join(t, "alice")
	bob = s.join(t, "bob")
	alice.expect("* bob joined (2 online)")
	return alice, bob
}

const (
	iacB  = 255
	dontB = 254
	doB   = 253
	wontB = 252
	willB = 251
	sbB   = 250
	aytB  = 246
	ipB   = 244
	nopB  = 241
	seB   = 240
)

// What a Linux/BSD telnet client sends right after connecting.
var (
	telnetConnect = []byte{iacB, willB, 31, iacB, willB, 32, iacB, willB, 24, iacB, willB, 39,
		iacB, doB, 1, iacB, willB, 3, iacB, doB, 3}
	telnetConnectReply = []byte{iacB, dontB, 31, iacB, dontB, 32, iacB, dontB, 24, iacB, dontB, 39,
		iacB, wontB, 1, iacB, dontB, 3, iacB, wontB, 3}
	telnetNAWS = []byte{iacB, sbB, 31, 0, 80, 0, 24, iacB, seB}
)

func TestTelnetClientConnect(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	bob := s.join(t, "bob")
	// Whole, as telnet usually sends it.
	alice := s.dial(t)
	alice.name = "alice"
	alice.write(telnetConnect)
	if got := alice.readRaw(len(telnetConnectReply)); !bytes.Equal(got, telnetConnectReply) {
		t.Fatalf("refusals: got % x, want % x", got, telnetConnectReply)
	}
	alice.write(telnetNAWS)
	alice.write([]byte("alice\r\n"))
	alice.expectPrefix("* Welcome, alice! 2 users online.")
	bob.expect("* alice joined (2 online)")

	// Byte by byte: every sequence is split across reads.
	carol := s.dial(t)
	carol.name = "carol"
	all := append(append(append([]byte{}, telnetConnect...), telnetNAWS...), "carol\r\n"...)
	carol.writeSlowly(all, 1)
	if got := carol.readRaw(len(telnetConnectReply)); !bytes.Equal(got, telnetConnectReply) {
		t.Fatalf("refusals (byte by byte): got % x, want % x", got, telnetConnectReply)
	}
	carol.expectPrefix("* Welcome, carol! 3 users online.")
	bob.expect("* carol joined (3 online)")
	alice.expect("* carol joined (3 online)")

	// A repeated offer is not answered twice (no negotiation loop), and
	// a NAWS update mid-line does not disturb the line.
	alice.write(append([]byte{iacB, willB, 31}, "hel"...))
	alice.write(append(append([]byte{}, telnetNAWS...), "lo\r\n"...))
	bob.expect("alice: hello")
	carol.expect("alice: hello")
	alice.expectNothing()
}

func TestTelnetSubnegotiationAcrossReads(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice, bob := s.pair(t)
	// A long subnegotiation (terminal type, environment...) spanning many
	// reads, with IAC IAC inside, then text: none of it is data.
	sub := []byte{iacB, sbB, 24, 0}
	for i := range 20000 {
		sub = append(sub, byte('a'+i%26))
		if i%1000 == 0 {
			sub = append(sub, iacB, iacB, '\r', '\n')
		}
	}
	sub = append(sub, iacB, seB)
	alice.write([]byte("be"))
	alice.writeSlowly(sub, 777)
	alice.write([]byte("fore and after\r\n"))
	bob.expect("alice: before and after")
	bob.expectNothing()
	alice.expectNothing()
}

func TestTelnetLiteralIACAndCommands(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(rc *chat.Config, _ *Config) { rc.History = 0 })
	alice, bob := s.pair(t)

	// IAC IAC is a literal 0xFF: invalid UTF-8, so U+FFFD for others.
	// Two-byte commands (NOP, GA...) vanish. No IAC reaches bob.
	alice.write([]byte{'a', iacB, iacB, 'b', iacB, nopB, 'c', iacB, 249, '\r', '\n'})
	bob.expect("alice: a\uFFFDbc")

	// AYT, even split from its IAC, gets "* yes" (and nothing is relayed).
	alice.write([]byte{iacB})
	alice.write([]byte{aytB})
	alice.expect("* yes")
	bob.expectNothing()

	// AYT before joining works too; a plain nc user never gets IAC bytes.
	c := s.dial(t)
	c.write([]byte{iacB, aytB})
	c.expect("* yes")
	c.send("carol")
	c.expectPrefix("* Welcome, carol!")
	alice.expect("* carol joined (3 online)")
	bob.expect("* carol joined (3 online)")
	alice.send("plain")
	for _, x := range []*client{bob, c} {
		l := x.readLine()
		if l != "alice: plain" || strings.ContainsRune(l, 0xFF) {
			t.Fatalf("%s: got %q", x.name, l)
		}
	}
}

func TestTelnetInterruptQuits(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice, bob := s.pair(t)
	// Text before the IP in the same write is still relayed; IP ends the
	// session like /quit.
	alice.write([]byte("last words\r\n"))
	alice.write([]byte{iacB, ipB})
	bob.expect("alice: last words")
	if lines := alice.expectClosed(); strings.Join(lines, "|") != "* bye" {
		t.Fatalf("alice got %q, want [* bye]", lines)
	}
	bob.expect("* alice left (1 online)")
	bob.expectNothing()

	// Before joining, IP just hangs up.
	c := s.dial(t)
	c.write([]byte{iacB, ipB})
	if lines := c.expectClosed(); len(lines) != 0 {
		t.Fatalf("got %q, want nothing", lines)
	}
	bob.expectNothing()
}

func TestInputHygiene(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice, bob := s.pair(t)
	for _, tc := range []struct{ name, in, want string }{
		{"invalid utf-8", "caf\xe9 \xfe\xc0 ok", "caf\uFFFD \uFFFD ok"},
		{"truncated rune", "x\xe2\x82", "x\uFFFD"},
		{"ansi clear screen", "\x1b[2J\x1b[Hhi", "[2J[Hhi"},
		{"ansi colours", "\x1b[31mred\x1b[0m", "[31mred[0m"},
		{"osc title", "\x1b]0;pwned\x07x", "]0;pwnedx"},
		{"c1 csi", "\u009b31mx\u0085y", "31mxy"},
		{"nul bell vt ff", "a\x00b\x07c\x0bd\x0ce", "abcde"},
		{"tab kept", "a\tb", "a\tb"},
		{"backspace", "helo\bl\bllo", "helllo"},
		{"del", "abx\x7fc", "abc"},
		{"erase multibyte", "né\b\x7fo", "o"},
		{"erase past start", "\b\b\x7fab", "ab"},
		{"unicode kept", "日本語 ✓ ÄÖ", "日本語 ✓ ÄÖ"},
	} {
		alice.write([]byte(tc.in + "\r\n"))
		got := bob.readLine()
		if got != "alice: "+tc.want {
			t.Errorf("%s: %q -> %q, want %q", tc.name, tc.in, got, "alice: "+tc.want)
		}
	}
	// A line that is nothing but controls is empty after cleaning: ignored.
	alice.write([]byte("\x1b\x07\x00\r\n"))
	alice.expectNothing()
	bob.expectNothing()
	// Controls are removed from the nickname too, and from /me and /msg.
	alice.send("/me waves\x1b[5m", "/msg bob \x1b[1mbold")
	bob.expect("* alice waves[5m")
	bob.expect("[private] alice: [1mbold")
	alice.expect("[private to bob] [1mbold")
}

// TestNoControlBytesReachOthers sends every byte value and checks what a
// plain client receives: valid lines with no control bytes at all.
func TestNoControlBytesReachOthers(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice, bob := s.pair(t)
	var all []byte
	for i := range 256 {
		// Not the terminators, not IAC (telnet), not BS and DEL (they
		// erase the previous character).
		if i != '\r' && i != '\n' && i != iacB && i != '\b' && i != 0x7F {
			all = append(all, byte(i))
		}
	}
	alice.write(append(all, "\r\n"...))
	got := bob.readLine()
	for _, r := range got {
		if r < 0x20 && r != '\t' || r >= 0x7F && r <= 0x9F {
			t.Fatalf("control %U reached bob: %q", r, got)
		}
	}
	if !strings.HasPrefix(got, "alice: \t !\"#") || !strings.HasSuffix(got, "xyz{|}~\uFFFD") {
		t.Fatalf("unexpected line %q", got)
	}
}

func TestMaxLine(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(_ *chat.Config, sc *Config) { sc.MaxLine = 64 })
	alice, bob := s.pair(t)

	exact := strings.Repeat("x", 64)
	alice.send(exact)
	bob.expect("alice: " + exact)

	alice.send(exact+"y", "after")
	alice.expect("! line too long (max 64 bytes)")
	bob.expect("alice: after")

	// A huge line arriving in small pieces is reported once, as soon as it
	// is too long (before its end arrives), and never relayed.
	alice.writeSlowly([]byte(strings.Repeat("z", 100)), 7)
	alice.expect("! line too long (max 64 bytes)")
	alice.writeSlowly([]byte(strings.Repeat("z", 5000)), 333)
	alice.write([]byte("\nok\n"))
	bob.expect("alice: ok")
	alice.expectNothing()
	bob.expectNothing()

	// The limit counts bytes, not characters, and applies before joining.
	c := s.dial(t)
	c.send(strings.Repeat("é", 33))
	c.expect("! line too long (max 64 bytes)")
}

func TestMaxLineDefault(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice, bob := s.pair(t)
	alice.send(strings.Repeat("a", 4096), strings.Repeat("b", 4097))
	bob.expect("alice: " + strings.Repeat("a", 4096))
	alice.expect("! line too long (max 4096 bytes)")
	bob.expectNothing()
}

func TestMaxConns(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(_ *chat.Config, sc *Config) { sc.MaxConns = 2 })
	alice := s.join(t, "alice")
	anon := s.dial(t) // not joined: still counts
	for range 2 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cl := &client{t: t, name: "third", c: c, r: newReader(c)}
		if lines := cl.expectClosed(); strings.Join(lines, "|") != "! server full, try again later" {
			t.Fatalf("third connection got %q", lines)
		}
	}
	if n := s.Conns(); n != 2 {
		t.Fatalf("Conns() = %d, want 2", n)
	}
	// A slot frees up when a connection ends.
	_ = anon.c.Close()
	waitFor(t, "the anonymous connection to go", func() bool { return s.Conns() == 1 })
	bob := s.join(t, "bob")
	alice.expect("* bob joined (2 online)")
	bob.send("/who")
	bob.expect("* 2 online: alice, bob")
}

func TestMaxConnsPerIP(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(_ *chat.Config, sc *Config) { sc.MaxConnsPerIP = 2 })
	s.dial(t)
	s.dial(t)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := &client{t: t, name: "third", c: c, r: newReader(c)}
	if lines := cl.expectClosed(); strings.Join(lines, "|") != "! too many connections from your address" {
		t.Fatalf("third connection from 127.0.0.1 got %q", lines)
	}
	// Another loopback address is another client.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: waitTimeout}
	other, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	defer other.Close()
	ocl := &client{t: t, name: "other", c: other, r: newReader(other)}
	ocl.expectPrefix("Welcome to netchat (test)!")
}

func TestNickTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(_ *chat.Config, sc *Config) { sc.NickTimeout = 300 * time.Millisecond })
	alice := s.join(t, "alice") // joined in time
	slow := s.dial(t)
	slow.send("", "  ") // blank lines are no nickname and do not extend the deadline
	if lines := slow.expectClosed(); strings.Join(lines, "|") != "! nickname timeout" {
		t.Fatalf("got %q, want [! nickname timeout]", lines)
	}
	// alice joined before slow connected, so her nickname deadline has
	// passed too; she is unaffected, and nobody saw a leave notice.
	alice.send("/who")
	alice.expect("* 1 online: alice")
	alice.expectNothing()
}

func TestNickTimeoutPartialNick(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(_ *chat.Config, sc *Config) { sc.NickTimeout = 200 * time.Millisecond })
	// Trickling bytes does not keep an unjoined connection alive.
	c := s.dial(t)
	defer c.keepWriting(20*time.Millisecond, "a")()
	lines := c.expectClosed()
	if len(lines) != 1 || lines[0] != "! nickname timeout" {
		t.Fatalf("got %q", lines)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(_ *chat.Config, sc *Config) { sc.IdleTimeout = 300 * time.Millisecond })
	alice := s.join(t, "alice")
	bob := s.join(t, "bob")
	// Bob is never silent: a blank line every 30ms counts as activity
	// without producing any output.
	stopBob := bob.keepWriting(30*time.Millisecond, "\r\n")
	defer stopBob()

	lines := alice.expectClosed()
	want := []string{"* bob joined (2 online)", "* disconnected: idle for 300ms"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("alice got %q, want %q", lines, want)
	}
	bob.expect("* alice left (1 online)")
	bob.send("/who")
	bob.expect("* 1 online: bob")
	stopBob()
	if lines := bob.expectClosed(); strings.Join(lines, "|") != "* disconnected: idle for 300ms" {
		t.Fatalf("bob got %q", lines)
	}
	waitFor(t, "all connections to end", func() bool { return s.Conns() == 0 })
}

// TestMsgRateFlood: lines sent at once beyond the burst and a burst's
// worth of lag are dropped with "! slow down", and the third drop within
// 10s is flooding (SPEC §2.4): the lagged lines are never relayed.
func TestMsgRateFlood(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(rc *chat.Config, sc *Config) {
		// One token a second: 3 at once, 3 lagged, then drops.
		rc.MsgRate, rc.MsgBurst = 1, 3
		sc.Metrics = newTestMetrics()
	})
	alice, bob := s.pair(t)
	// Blank lines are free.
	alice.send("", "", "", "", "")
	alice.send("1", "2", "3", "4", "5", "6", "7", "8", "9")
	for _, want := range []string{"alice: 1", "alice: 2", "alice: 3", "* alice left (1 online)"} {
		bob.expect(want)
	}
	lines := alice.expectClosed()
	want := []string{"! slow down", "! slow down", "! flooding"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("alice got %q, want %q", lines, want)
	}
	bob.send("/who")
	bob.expect("* 1 online: bob")
	if got := counterValue(t, s.cfg.Metrics.floods); got != 1 {
		t.Fatalf("flood disconnects = %v, want 1", got)
	}
}

// TestMsgRateLagsThenDrops: a small excess is lagged and relayed in order,
// more is dropped with "! slow down", and two drops are not flooding.
func TestMsgRateLagsThenDrops(t *testing.T) {
	t.Parallel()
	// 10 lines/s, a burst of 2: 2 at once, 2 lagged by 100 and 200 ms.
	s := startServer(t, func(rc *chat.Config, _ *Config) { rc.MsgRate, rc.MsgBurst = 10, 2 })
	alice, bob := s.pair(t)
	alice.send("1", "2", "3", "4", "5", "6")
	alice.expect("! slow down")
	alice.expect("! slow down")
	for _, want := range []string{"alice: 1", "alice: 2", "alice: 3", "alice: 4"} {
		bob.expect(want)
	}
	// Alice was not cut off: she can still leave, and she is the one
	// leaving.
	alice.send("/quit")
	if lines := alice.expectClosed(); strings.Join(lines, "|") != "* bye" {
		t.Fatalf("alice got %q, want [* bye]", lines)
	}
	bob.expect("* alice left (1 online)")
}

// TestPasteArrivesWhole: with the default limits (10/s, burst 20) a
// 30-line paste is relayed whole and in order, while 200 lines at once
// still end in "! flooding" with most of them never relayed.
func TestPasteArrivesWhole(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(rc *chat.Config, _ *Config) { rc.MsgRate, rc.MsgBurst, rc.History = 10, 20, 0 })
	alice, bob := s.pair(t)
	var paste strings.Builder
	for i := range 30 {
		paste.WriteString("log line " + itoa(i) + "\n")
	}
	alice.write([]byte(paste.String()))
	for i := range 30 {
		bob.expect("alice: log line " + itoa(i))
	}
	alice.send("/whoami")
	if l := alice.readLine(); !strings.HasPrefix(l, "* you are alice") {
		t.Fatalf("alice got %q after her paste, want her /whoami reply (nothing dropped)", l)
	}

	carol := s.join(t, "carol")
	alice.expect("* carol joined (3 online)")
	bob.expect("* carol joined (3 online)")
	var flood strings.Builder
	for i := range 200 {
		flood.WriteString("spam " + itoa(i) + "\n")
	}
	carol.write([]byte(flood.String()))
	lines := carol.expectClosed()
	if len(lines) < 3 || lines[0] != "! slow down" || lines[len(lines)-1] != "! flooding" {
		t.Fatalf("the flooder got %q, want ! slow down … ! flooding", lines)
	}
	relayed := 0
	for {
		l := bob.readLine()
		if l == "* carol left (2 online)" {
			break
		}
		if l != "carol: spam "+itoa(relayed) {
			t.Fatalf("bob got %q, want spam %d or the leave notice", l, relayed)
		}
		relayed++
	}
	if relayed > 100 {
		t.Fatalf("%d of 200 flood lines relayed, want most of them dropped", relayed)
	}
}

func TestMsgRateOffByDefaultInRoom(t *testing.T) {
	t.Parallel()
	// --msg-rate 0 disables the limit: 500 lines at once all arrive.
	s := startServer(t, func(rc *chat.Config, _ *Config) { rc.MsgRate, rc.MsgBurst = 0, 20 })
	alice, bob := s.pair(t)
	var b strings.Builder
	for i := range 500 {
		b.WriteString("m")
		b.WriteString(itoa(i))
		b.WriteString("\n")
	}
	alice.write([]byte(b.String()))
	for i := range 500 {
		bob.expect("alice: m" + itoa(i))
	}
	alice.expectNothing()
}

// TestHalfCloseFlushesLargeOutput checks that after the client's EOF every
// reply is written, however much there is, before the server closes.
func TestHalfCloseFlushesLargeOutput(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	c := s.dial(t)
	var in strings.Builder
	in.WriteString("alice\n")
	for range 300 {
		in.WriteString("/help\n")
	}
	in.WriteString("/who") // unterminated last line: still answered
	c.write([]byte(in.String()))
	_ = c.c.(*net.TCPConn).CloseWrite()
	lines := c.expectClosed()
	help := chat.HelpLines()
	if want := 1 + 300*len(help) + 1; len(lines) != want {
		t.Fatalf("got %d lines, want %d", len(lines), want)
	}
	if lines[len(lines)-1] != "* 1 online: alice" {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
	for i := range 300 {
		for j, h := range help {
			if l := lines[1+i*len(help)+j]; l != h {
				t.Fatalf("line %d: %q, want %q", 1+i*len(help)+j, l, h)
			}
		}
	}
}

func TestHalfCloseWithQuitAndLeaveNotice(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	bob := s.join(t, "bob")
	c := s.dial(t)
	c.write([]byte("alice\nhello\n"))
	_ = c.c.(*net.TCPConn).CloseWrite()
	if lines := c.expectClosed(); len(lines) != 1 || !strings.HasPrefix(lines[0], "* Welcome, alice!") {
		t.Fatalf("got %q", lines)
	}
	bob.expect("* alice joined (2 online)")
	bob.expect("alice: hello")
	bob.expect("* alice left (1 online)")
	bob.expectNothing()
}

func TestSessionPanicIsContained(t *testing.T) {
	t.Parallel()
	var logs *syncbuf.Buffer
	s := startServer(t, func(_ *chat.Config, sc *Config) {
		logs = captureLogs(sc)
		sc.testHookLine = func(l []byte) {
			if string(l) == "boom" {
				panic("test panic")
			}
		}
	})
	alice, bob := s.pair(t)
	carol := s.join(t, "carol")
	alice.expect("* carol joined (3 online)")
	bob.expect("* carol joined (3 online)")

	bob.send("boom")
	bob.expectClosed()
	alice.expect("* bob left (2 online)")
	carol.expect("* bob left (2 online)")
	waitFor(t, "the panic to be logged", func() bool {
		return strings.Contains(logs.String(), "session panic") && strings.Contains(logs.String(), "test panic")
	})
	// Everybody else goes on, and the server accepts new users.
	alice.send("still here")
	carol.expect("alice: still here")
	dave := s.join(t, "dave")
	dave.send("/who")
	dave.expectEventually("* 3 online: alice, carol, dave")
	alice.expect("* dave joined (3 online)")
	alice.expectNothing()
}

func itoa(i int) string { return strconv.Itoa(i) }

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func newTestMetrics() *Metrics {
	return NewMetrics(prometheus.NewRegistry(), func() int { return 0 })
}

func counterValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// TestQuitWhileRateLimited: leaving always works, by /quit or telnet IP,
// even when the user has no tokens left.
func TestQuitWhileRateLimited(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		quit []byte
	}{
		{"slash quit", []byte("/quit\r\n")},
		{"telnet IP", []byte{iacB, ipB}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, func(rc *chat.Config, _ *Config) { rc.MsgRate, rc.MsgBurst = 0.1, 1 })
			alice, bob := s.pair(t)
			// a runs, b is lagged by 10s, c is dropped.
			alice.send("a", "b", "c")
			bob.expect("alice: a")
			alice.expect("! slow down")
			alice.write(tc.quit)
			// Leaving is never lagged: the lagged line goes first.
			if lines := alice.expectClosed(); strings.Join(lines, "|") != "* bye" {
				t.Fatalf("alice got %q, want [* bye]", lines)
			}
			bob.expect("alice: b")
			bob.expect("* alice left (1 online)")
			bob.send("/who")
			bob.expect("* 1 online: bob")
		})
	}
}
