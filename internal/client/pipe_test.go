package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"localhost", "localhost:8088"},
		{"localhost:9000", "localhost:9000"},
		{"127.0.0.1", "127.0.0.1:8088"},
		{"::1", "[::1]:8088"},
		{"[::1]", "[::1]:8088"},
		{"[::1]:9000", "[::1]:9000"},
		{"fe80::1%lo", "[fe80::1%lo]:8088"},
		{":9000", "localhost:9000"},
		{" chat.example.org ", "chat.example.org:8088"},
	} {
		got, err := ParseAddr(tc.in, DefaultPort)
		if err != nil || got != tc.want {
			t.Errorf("ParseAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "host:", "host:0", "host:99999", "host:http", "a:b:c:"} {
		if got, err := ParseAddr(bad, DefaultPort); err == nil {
			t.Errorf("ParseAddr(%q) = %q, want an error", bad, got)
		}
	}
}

func TestNeutralize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"hello, world", "hello, world"},
		{"tab\tkept", "tab\tkept"},
		{"\x1b[2Jclear", "^[[2Jclear"},
		{"\x1b]0;title\x07", "^[]0;title^G"},
		{"bell\a cr\r bs\b nul\x00 del\x7f", "bell^G cr^M bs^H nul^@ del^?"},
		{"c1 \u009b31m \u0085", "c1 \ufffd31m \ufffd"},
		{"raw csi \x9b31m", "raw csi \ufffd31m"},
		{"bad \xff\xfe\xfd utf8", "bad \ufffd utf8"},
		{"émoji 😀 and 中文", "émoji 😀 and 中文"},
		{"\u00a0nbsp is printable", "\u00a0nbsp is printable"},
	} {
		if got := string(Neutralize(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("Neutralize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzNeutralize(f *testing.F) {
	f.Add([]byte("\x1b[2J\x1b]0;x\x07\x9b\xc2\x9b\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := Neutralize(nil, in)
		if !utf8.Valid(out) {
			t.Fatalf("invalid UTF-8 out of %q", in)
		}
		for _, r := range string(out) {
			if (r < 0x20 && r != '\t') || (r >= 0x7f && r <= 0x9f) {
				t.Fatalf("control %U survives in %q (from %q)", r, out, in)
			}
		}
	})
}

// TestPipeMode is `printf 'hi all\n/who\n' | netchat join --nick bot`
// against a real server: the line reaches another user, the output is the
// server's lines with LF endings, and the client ends by itself with no
// error once the server closes after the half-close.
func TestPipeMode(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice := s.join(t, "alice")
	out := newSyncBuffer()
	cfg := Config{Addr: s.addr, Nick: "bot", Timeout: waitTimeout}
	err := runAsync(t, func() error {
		return Run(t.Context(), cfg, strings.NewReader("hi all\n/who"), out)
	})()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	alice.waitFor("bot: hi all")
	got := out.String()
	for _, want := range []string{
		"Welcome to netchat (test)! 1 users online. Please enter a nickname:\n",
		"* Welcome, bot! 2 users online.",
		"* 2 online: alice, bot\n", // the unterminated last stdin line was sent too
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\r") {
		t.Errorf("output has CR:\n%q", got)
	}
}

// TestPipeKeepsPrinting checks that the client prints what arrives while
// stdin is still open, and after it ends, until the server closes.
func TestPipeKeepsPrinting(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice := s.join(t, "alice")
	pr, pw := io.Pipe()
	out := newSyncBuffer()
	wait := runAsync(t, func() error {
		return Run(t.Context(), Config{Addr: s.addr, Timeout: waitTimeout}, pr, out)
	})
	if _, err := pw.Write([]byte("carol\n")); err != nil {
		t.Fatal(err)
	}
	out.waitContains(t, "* Welcome, carol!")
	alice.send("hello carol")
	out.waitContains(t, "alice: hello carol\n")
	if _, err := pw.Write([]byte("hello alice\n")); err != nil {
		t.Fatal(err)
	}
	alice.waitFor("carol: hello alice")
	pw.Close()
	alice.waitFor("* carol left")
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestPipeNickTaken(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	alice := s.join(t, "alice")
	out := newSyncBuffer()
	err := runAsync(t, func() error {
		return Run(t.Context(), Config{Addr: s.addr, Nick: "ALICE", Timeout: waitTimeout},
			strings.NewReader("must not be sent\n"), out)
	})()
	if err == nil || !strings.Contains(err.Error(), `refused the nickname "ALICE": nickname taken`) {
		t.Fatalf("err = %v, want nickname taken", err)
	}
	// The stdin line must not have become anything: alice's next line is
	// what she asks for, not a join or a message.
	alice.send("/who")
	if l := alice.waitFor("* "); l != "* 1 online: alice" {
		t.Errorf("alice got %q", l)
	}
}

// TestHostileServer checks that escape sequences and other control bytes a
// server sends reach stdout only in a visible, inert form.
func TestHostileServer(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "Welcome to evil!\r\n"+
			"\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\r\n"+
			"bare\rCR and \x9b31m 8-bit CSI and \u009b C1 and \x7f\x08\x00 and \xff\r\n"+
			"no newline at the end \x1b[5m")
	})
	out := newSyncBuffer()
	err := runAsync(t, func() error {
		return Run(t.Context(), Config{Addr: addr, Timeout: waitTimeout}, strings.NewReader(""), out)
	})()
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := out.String()
	for i, r := range got {
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) {
			t.Errorf("raw control %U at %d in output %q", r, i, got)
		}
	}
	if !utf8.ValidString(got) {
		t.Errorf("output is not valid UTF-8: %q", got)
	}
	for _, want := range []string{"^[[2J^[[H^[]0;pwned^G", "bare^MCR", "^?^H^@", "no newline at the end ^[[5m\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q: %q", want, got)
		}
	}
}

func TestServerRefusesConnection(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "! server full, try again later\r\n")
	})
	err := runAsync(t, func() error {
		return Run(t.Context(), Config{Addr: addr, Nick: "x", Timeout: waitTimeout}, strings.NewReader(""), io.Discard)
	})()
	if err == nil || err.Error() != "the server refused the connection: server full, try again later" {
		t.Fatalf("err = %v", err)
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	// Port 1: nothing listens there, and the kernel never hands it out to
	// another test's listener (a port just closed could be).
	addr := "127.0.0.1:1"
	err := Run(t.Context(), Config{Addr: addr, Timeout: waitTimeout}, strings.NewReader(""), io.Discard)
	if err == nil || err.Error() != "cannot connect to "+addr+": connection refused (is a netchat server running there?)" {
		t.Fatalf("err = %v", err)
	}
}

func TestConnectionReset(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "Welcome\r\n")
		// Wait for the client's line, so that closing with it unread and
		// linger 0 sends RST rather than FIN.
		_, _ = bufio.NewReader(c).ReadString('\n')
		_ = c.(*net.TCPConn).SetLinger(0)
	})
	pr, pw := io.Pipe()
	defer pw.Close()
	wait := runAsync(t, func() error {
		return Run(t.Context(), Config{Addr: addr, Timeout: waitTimeout}, pr, io.Discard)
	})
	if _, err := pw.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err == nil || err.Error() != "the connection was reset by the server" {
		t.Fatalf("err = %v", err)
	}
}

func TestPipeInterrupted(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	defer pw.Close()
	out := newSyncBuffer()
	wait := runAsync(t, func() error {
		return Run(ctx, Config{Addr: s.addr, Nick: "dora", Timeout: waitTimeout}, pr, out)
	})
	out.waitContains(t, "* Welcome, dora!")
	cancel()
	if err := wait(); !errors.Is(err, errInterrupted) {
		t.Fatalf("err = %v, want interrupted", err)
	}
}

func TestConnectTimeoutInHandshake(t *testing.T) {
	t.Parallel()
	// A server that accepts but never answers: the TLS handshake, part of
	// connecting, must give up at --timeout.
	release := make(chan struct{})
	addr := fakeServer(t, func(net.Conn) { <-release })
	defer close(release)
	start := time.Now()
	err := Run(t.Context(), Config{Addr: addr, TLS: true, Insecure: true, Timeout: 200 * time.Millisecond},
		strings.NewReader(""), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > waitTimeout {
		t.Errorf("took %v", d)
	}
}

// TestPipeResetAfterPartialLine: a server that resets the connection in
// the middle of a line must end the session with an error. The reader
// returned the partial line, dropped the reset error and read again,
// which after a reset gives EOF: the session "ended normally", exit 0.
func TestPipeResetAfterPartialLine(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		<-dialed // a reset during connect would fail the dial instead
		_, _ = io.WriteString(c, "Welcome!\r\npartial")
		_ = c.(*net.TCPConn).SetLinger(0) // close with RST
		c.Close()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	close(dialed)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out strings.Builder
	// Stdin stays open so the client does not half-close first.
	stdin, stdinW := io.Pipe()
	defer stdinW.Close()
	err = Pipe(ctx, conn, "", stdin, &out)
	if err == nil || !strings.Contains(err.Error(), "reset") {
		t.Fatalf("Pipe = %v, want the reset reported", err)
	}
	if out.String() != "Welcome!\npartial\n" {
		t.Errorf("printed %q", out.String())
	}
}

// TestPipeClosedBeforeNickAccepted: with --nick, a server that closes
// before accepting the nickname is an error, not a normal end: nothing of
// stdin was sent.
func TestPipeClosedBeforeNickAccepted(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "Welcome to netchat (fake)! 0 users online. Please enter a nickname:\r\n")
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, c)
	})
	out := newSyncBuffer()
	err := runAsync(t, func() error {
		return Run(t.Context(), Config{Addr: addr, Nick: "bot", Timeout: waitTimeout}, strings.NewReader("hello\n"), out)
	})()
	if err == nil || !strings.Contains(err.Error(), "before accepting the nickname") {
		t.Fatalf("Run: %v, want an error about the nickname", err)
	}
}
