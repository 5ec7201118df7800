package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"netchat/internal/discovery"
	"netchat/internal/mcast/mcasttest"
	"netchat/internal/syncbuf"
	"netchat/internal/testcert"
)

// testServeOptions are serve's options for a quiet server on a loopback
// port chosen by the kernel.
func testServeOptions() *serveOptions {
	return &serveOptions{
		listen:           "127.0.0.1:0",
		name:             "test",
		maxConns:         100,
		msgBurst:         20,
		maxLine:          4096,
		shutdownTimeout:  2 * time.Second,
		nickTimeout:      10 * time.Second,
		noticeBatchAbove: 500,
		history:          20,
		fsyncInterval:    "1s",
		logFormat:        "text",
		logLevel:         "error",
	}
}

// startServe runs runServe until the end of the test and returns the
// addresses it reported, by kind ("chat", "tls").
func startServe(t *testing.T, o *serveOptions) map[string]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	addrs := map[string]string{}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, o, &syncbuf.Buffer{}, func(kind string, a net.Addr) {
			mu.Lock()
			addrs[kind] = a.String()
			if kind == "chat" && o.tlsListen == "" || kind == "tls" {
				close(ready)
			}
			mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start listening")
	}
	mu.Lock()
	defer mu.Unlock()
	return addrs
}

// rawUser is a plain TCP user, as with nc.
type rawUser struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func joinRaw(t *testing.T, addr, nick string) *rawUser {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	u := &rawUser{t: t, c: c, br: bufio.NewReader(c)}
	if _, err := c.Write([]byte(nick + "\n")); err != nil {
		t.Fatal(err)
	}
	u.waitFor("* Welcome, " + nick + "!")
	return u
}

func (u *rawUser) waitFor(prefix string) {
	u.t.Helper()
	_ = u.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		l, err := u.br.ReadString('\n')
		if err != nil {
			u.t.Fatalf("waiting for %q: %v", prefix, err)
		}
		if strings.HasPrefix(l, prefix) {
			return
		}
	}
}

// TestServeTLSAndJoin runs `serve --tls-listen` and joins it with the CLI
// client over TLS and over plain TCP: everyone is in one room.
func TestServeTLSAndJoin(t *testing.T) {
	t.Parallel()
	caFile, keyFile := testcert.New(t).Files(t)
	o := testServeOptions()
	o.tlsListen, o.tlsCert, o.tlsKey = "127.0.0.1:0", caFile, keyFile
	addrs := startServe(t, o)
	alice := joinRaw(t, addrs["chat"], "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	out, _, err := execSub(ctx, newJoinCmd(), "hello over TLS\n", "--tls", "--ca", caFile, "--nick", "bob", addrs["tls"])
	if err != nil {
		t.Fatalf("join --tls: %v", err)
	}
	if !strings.Contains(out, "* Welcome, bob! 2 users online.") {
		t.Errorf("join --tls output:\n%s", out)
	}
	alice.waitFor("bob: hello over TLS")

	_, port, _ := net.SplitHostPort(addrs["chat"])
	out, _, err = execSub(ctx, newJoinCmd(), "hi all\n", "--nick", "bot", "-p", port, "127.0.0.1")
	if err != nil || !strings.Contains(out, "* Welcome, bot!") {
		t.Fatalf("plain join: %v\n%s", err, out)
	}
	alice.waitFor("bot: hi all")

	_, _, err = execSub(ctx, newJoinCmd(), "", "--tls", "--nick", "eve", addrs["tls"])
	if err == nil || !strings.Contains(err.Error(), "not signed by a trusted authority") {
		t.Errorf("join --tls without --ca: %v", err)
	}
}

func TestServeTLSStartupErrors(t *testing.T) {
	t.Parallel()
	certFile, keyFile := testcert.New(t).Files(t)
	_, otherKey := testcert.New(t).Files(t)
	for _, tc := range []struct {
		name                    string
		listen, cert, key, want string
		usage                   bool
	}{
		{"missing key file", "127.0.0.1:0", certFile, keyFile + ".missing", "cannot read TLS key file " + keyFile + ".missing: no such file or directory", false},
		{"mismatched", "127.0.0.1:0", certFile, otherKey, "does not belong to the certificate", false},
		{"no cert", "127.0.0.1:0", "", keyFile, "--tls-listen needs --tls-cert FILE and --tls-key FILE", true},
		{"cert without listen", "", certFile, keyFile, "need --tls-listen", true},
	} {
		o := testServeOptions()
		o.tlsListen, o.tlsCert, o.tlsKey = tc.listen, tc.cert, tc.key
		listened := false
		err := runServe(t.Context(), o, &syncbuf.Buffer{}, func(string, net.Addr) { listened = true })
		var ue usageError
		switch {
		case err == nil || !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		case errors.As(err, &ue) != tc.usage:
			t.Errorf("%s: usage error %v, want %v", tc.name, !tc.usage, tc.usage)
		case listened:
			t.Errorf("%s: listened before failing", tc.name)
		}
	}
}

func TestJoinUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--ca", "x.pem", "--insecure", "localhost"},
		{"--timeout", "-1s", "localhost"},
		{"-p", "70000", "localhost"},
		{"-p", "9000"},
		{"--nick", "a\n/quit", "localhost"},
		{"--nick", "  ", "localhost"},
		{"--discover-timeout", "0"},
		{"host:port:x"},
	} {
		_, _, err := execSub(t.Context(), newJoinCmd(), "", args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("join %q: err = %v, want a usage error", args, err)
		}
	}
}

// TestJoinExitStatus checks the whole command line: a refused connection
// is exit status 1, a bad flag 2.
func TestJoinExitStatus(t *testing.T) {
	t.Parallel()
	// Port 1: nothing listens there, and the kernel never hands it out to
	// another test's listener (a port just closed could be).
	addr := "127.0.0.1:1"
	if code := run([]string{"join", "--timeout", "5s", addr}); code != 1 {
		t.Errorf("refused: exit status %d, want 1", code)
	}
	if code := run([]string{"join", "--ca", "x", "--insecure", addr}); code != 2 {
		t.Errorf("usage: exit status %d, want 2", code)
	}
}

// TestJoinDiscovers runs join without an address against servers that
// announce themselves on loopback, in a group of the test's own.
func TestJoinDiscovers(t *testing.T) {
	t.Parallel()
	mcasttest.Loopback(t)
	group := mcasttest.GroupV4(t)
	addrs := startServe(t, testServeOptions())
	_, portStr, _ := net.SplitHostPort(addrs["chat"])
	port, _ := strconv.Atoi(portStr)
	alice := joinRaw(t, addrs["chat"], "alice")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	announce := func(ctx context.Context, id string) {
		go func() {
			_ = discovery.Announce(ctx, discovery.AnnouncerConfig{
				Group: group, Iface: "lo", Interval: 30 * time.Millisecond,
				ID: id, Name: id, Version: "t", Port: port, Online: func() int { return 1 },
			})
		}()
	}
	flags := []string{"--discover-group", group, "--iface", "lo", "--discover-timeout", "300ms"}

	annCtx, stopFirst := context.WithCancel(ctx)
	announce(annCtx, "first")
	out, _, err := execSub(ctx, newJoinCmd(), "found you\n", append(flags, "--nick", "finder")...)
	if err != nil || !strings.Contains(out, "* Welcome, finder!") {
		t.Fatalf("join with one server announcing: %v\n%s", err, out)
	}
	alice.waitFor("finder: found you")

	announce(ctx, "second")
	_, stderr, err := execSub(ctx, newJoinCmd(), "", flags...)
	if err == nil || !strings.Contains(err.Error(), "2 servers found and standard input is not a terminal") {
		t.Errorf("two servers, stdin not a terminal: %v", err)
	}
	if !strings.Contains(stderr, "1) first  "+addrs["chat"]) || !strings.Contains(stderr, "2) second  ") {
		t.Errorf("list of servers on stderr:\n%s", stderr)
	}
	stopFirst()

	quiet := []string{"--discover-group", mcasttest.GroupV4(t), "--iface", "lo", "--discover-timeout", "100ms"}
	if _, _, err := execSub(ctx, newJoinCmd(), "", quiet...); err == nil || !strings.Contains(err.Error(), "no netchat server") {
		t.Errorf("nobody announcing: %v", err)
	}
}
