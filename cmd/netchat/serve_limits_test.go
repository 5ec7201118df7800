package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"netchat/internal/syncbuf"
)

// TestServeHelpShowsLimitDefaults: every limit of SPEC §2.4 appears in
// `netchat serve --help` with its default.
func TestServeHelpShowsLimitDefaults(t *testing.T) {
	t.Parallel()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"serve", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	for flag, def := range map[string]string{
		"max-conns":          "(default 10000)",
		"max-conns-per-ip":   "(default 64)",
		"idle-timeout":       "(default 0",
		"keepalive":          "(default 1m0s)",
		"msg-rate":           "(default 10/s)",
		"msg-burst":          "(default 20)",
		"send-queue":         "(default 1MiB)",
		"shutdown-timeout":   "(default 5s)",
		"nick-timeout":       "(default 1m0s)",
		"notice-batch-above": "(default 500)",
		"max-line":           "(default 4096)",
	} {
		re := regexp.MustCompile(`(?m)^\s+--` + regexp.QuoteMeta(flag) + `\s.*$`)
		line := re.FindString(help)
		if line == "" {
			t.Errorf("--%s missing from serve --help", flag)
			continue
		}
		if !strings.Contains(line, def) {
			t.Errorf("--%s: %q does not show %q", flag, strings.TrimSpace(line), def)
		}
	}
}

// TestServeHelperProcess is not a test: TestServeSIGTERM runs the test
// binary again with it to get a real `netchat serve` process.
func TestServeHelperProcess(t *testing.T) {
	if os.Getenv("NETCHAT_SERVE_HELPER") != "1" {
		t.Skip("helper process for TestServeSIGTERM")
	}
	os.Exit(run(strings.Fields(os.Getenv("NETCHAT_SERVE_ARGS"))))
}

// TestServeSIGTERM: SIGTERM makes `netchat serve` stop accepting, send
// "* server shutting down" to everybody, close, and exit 0.
func TestServeSIGTERM(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$")
	cmd.Env = append(os.Environ(), "NETCHAT_SERVE_HELPER=1",
		"NETCHAT_SERVE_ARGS=serve -l 127.0.0.1:0 --name e2e --shutdown-timeout 3s --history 0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var logs syncbuf.Buffer
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`msg="chat server listening" addr=(\S+)`)
		for sc.Scan() {
			_, _ = logs.Write([]byte(sc.Text() + "\n"))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var addr string
	select {
	case addr = <-addrc:
	case err := <-exited:
		t.Fatalf("serve exited early: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not report its address")
	}

	type conn struct {
		c net.Conn
		r *bufio.Reader
	}
	dial := func() conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "Welcome to netchat (e2e)!") {
			t.Fatalf("greeting %q, %v", l, err)
		}
		return conn{c, r}
	}
	alice := dial()
	if _, err := io.WriteString(alice.c, "alice\r\n"); err != nil {
		t.Fatal(err)
	}
	if l, _ := alice.r.ReadString('\n'); !strings.HasPrefix(l, "* Welcome, alice!") {
		t.Fatalf("welcome %q", l)
	}
	anon := dial() // still at the nickname prompt

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]conn{"alice": alice, "anon": anon} {
		rest, err := io.ReadAll(c.r)
		if err != nil && !strings.Contains(err.Error(), "connection reset") {
			t.Fatalf("%s: %v", name, err)
		}
		if string(rest) != "* server shutting down\r\n" {
			t.Fatalf("%s got %q after SIGTERM, want the notice and EOF", name, rest)
		}
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) || err != nil {
			t.Fatalf("serve exited with %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("serve still running after SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Fatalf("no shutdown log line:\n%s", logs.String())
	}
	// A dial to a port nobody listens on can connect to itself (its own
	// port picked from the same range): that is not the server.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		self := c.LocalAddr().String() == c.RemoteAddr().String()
		c.Close()
		if !self {
			t.Fatal("still accepting after exit")
		}
	}
}
