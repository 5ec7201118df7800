package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"netchat/internal/syncbuf"
)

// runCmd executes a command tree with args, bounded by ctx.
func execSub(ctx context.Context, cmd *cobra.Command, stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut syncbuf.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// waitStderr waits until a running command's stderr contains want.
func waitOutput(t *testing.T, b *syncbuf.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr %q never contained %q", b.String(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestUDPEchoAndSendCommands(t *testing.T) {
	t.Parallel()
	port := freeUDPPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	echoCtx, stopEcho := context.WithCancel(ctx)
	var echoErr syncbuf.Buffer
	echo := newUDPCmd()
	echo.SetArgs([]string{"echo", "-l", "127.0.0.1", "-p", fmt.Sprint(port), "--rate", "0"})
	echo.SetOut(&echoErr)
	echo.SetErr(&echoErr)
	done := make(chan error, 1)
	go func() { done <- echo.ExecuteContext(echoCtx) }()
	waitOutput(t, &echoErr, "udp echo listening")

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"message args", "", []string{"send", addr, "hello", "hi"},
			fmt.Sprintf("from %s (IPv4, 5 bytes): hello\nfrom %s (IPv4, 2 bytes): hi\n", addr, addr)},
		{"stdin lines", "a b\nc\n", []string{"send", addr},
			fmt.Sprintf("from %s (IPv4, 3 bytes): a b\nfrom %s (IPv4, 1 bytes): c\n", addr, addr)},
		{"hex and count", "", []string{"send", "--hex", "--count", "2", "--interval", "1ms", addr, "00 01 ff"},
			fmt.Sprintf("from %s (IPv4, 3 bytes): 0001ff\nfrom %s (IPv4, 3 bytes): 0001ff\n", addr, addr)},
		{"ttl", "", []string{"send", "--ttl", "2", addr, "x"}, fmt.Sprintf("from %s (IPv4, 1 bytes): x\n", addr)},
	}
	for _, tt := range tests {
		out, _, err := execSub(ctx, newUDPCmd(), tt.stdin, append(tt.args, "--wait", "10s")...)
		if err != nil || out != tt.want {
			t.Errorf("%s: output %q, err %v; want %q", tt.name, out, err, tt.want)
		}
	}

	stopEcho()
	if err := <-done; err != nil {
		t.Fatalf("echo: %v", err)
	}
	if !strings.Contains(echoErr.String(), "echoed=7") {
		t.Errorf("echo's final stats %q lack echoed=7", echoErr.String())
	}
}

func TestUDPBroadcastToListenCommand(t *testing.T) {
	t.Parallel()
	port := freeUDPPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut syncbuf.Buffer
	listen := newUDPCmd()
	listen.SetArgs([]string{"listen", "-l", "0.0.0.0", "-p", fmt.Sprint(port), "--count", "1"})
	listen.SetOut(&out)
	listen.SetErr(&errOut)
	done := make(chan error, 1)
	go func() { done <- listen.ExecuteContext(ctx) }()
	waitOutput(t, &errOut, "listening on")

	src := freeUDPPort(t)
	bcast := fmt.Sprintf("127.255.255.255:%d", port)
	if _, _, err := execSub(ctx, newUDPCmd(), "", "send", "--wait", "0s", bcast, "nope"); err == nil || !strings.Contains(err.Error(), "--broadcast") {
		t.Fatalf("send to a broadcast address without --broadcast: err %v", err)
	}
	if _, _, err := execSub(ctx, newUDPCmd(), "", "send", "--broadcast", "--wait", "0s", "--bind", fmt.Sprintf("127.0.0.1:%d", src), bcast, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("from 127.0.0.1:%d (IPv4, 5 bytes): hello\n", src); out.String() != want {
		t.Fatalf("listen printed %q, want %q", out.String(), want)
	}
}

func TestUDPUsageErrors(t *testing.T) {
	t.Parallel()
	tests := [][]string{
		{"send", "--count", "0", "127.0.0.1:9", "x"},
		{"echo", "--port", "70000"},
		{"listen", "--count", "-1"},
		{"send", "--ttl", "300", "127.0.0.1:9", "x"},
		{"send", "127.0.0.1:99999", "x"},
		{"send", "127.0.0.1:0", "x"},
	}
	for _, args := range tests {
		_, _, err := execSub(context.Background(), newUDPCmd(), "", args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
}

// TestUDPSendClosedPortAndSilence: a datagram to a closed port ends with
// "connection refused" (the ICMP port unreachable) and exit status 1; one
// to a socket that never answers says "no reply" on stderr, leaves stdout
// to reply lines only, and exits 0.
func TestUDPSendClosedPortAndSilence(t *testing.T) {
	t.Parallel()
	// Port 1: nothing listens there, and no other test's socket is
	// given it (a port just closed could be).
	closed := "127.0.0.1:1"
	var stdout, stderr syncbuf.Buffer
	root := newRootCmd()
	root.SetOut(&stdout)
	code := execute(root, []string{"udp", "send", "--wait", "10s", closed, "anyone?"}, &stderr)
	if want := "netchat: " + closed + ": connection refused"; code != 1 || !strings.HasPrefix(stderr.String(), want) || stdout.String() != "" {
		t.Errorf("closed port: exit %d, stdout %q, stderr %q; want 1 and %q...", code, stdout.String(), stderr.String(), want)
	}

	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	out, errOut, err := execSub(t.Context(), newUDPCmd(), "", "send", "--wait", "100ms", silent.LocalAddr().String(), "hello")
	if err != nil || out != "" || errOut != "no reply within 100ms\n" {
		t.Errorf("silent peer: err %v, stdout %q, stderr %q; want nil, nothing, %q", err, out, errOut, "no reply within 100ms\n")
	}
	// The datagram did arrive: the silence was the peer's.
	buf := make([]byte, 64)
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := silent.ReadFrom(buf); err != nil || string(buf[:n]) != "hello" {
		t.Errorf("the silent peer got %q, %v", buf[:n], err)
	}
}
