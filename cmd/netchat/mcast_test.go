package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"netchat/internal/mcast/mcasttest"
	"netchat/internal/syncbuf"
)

func TestMcastSendRejectsUnicastGroup(t *testing.T) {
	t.Parallel()
	for _, sub := range []string{"send", "listen"} {
		_, _, err := execSub(context.Background(), newMcastCmd(), "", sub, "--count", "1", "127.0.0.1:5000")
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "not a multicast address") {
			t.Errorf("mcast %s 127.0.0.1:5000: err %v, want a usage error about multicast", sub, err)
		}
	}
}

func TestMcastSendListenCommands(t *testing.T) {
	t.Parallel()
	mcasttest.Loopback(t)
	group := mcasttest.GroupV4(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut syncbuf.Buffer
	listen := newMcastCmd()
	listen.SetArgs([]string{"listen", "--iface", "lo", "--count", "2", group})
	listen.SetOut(&out)
	listen.SetErr(&errOut)
	done := make(chan error, 1)
	go func() { done <- listen.ExecuteContext(ctx) }()
	waitOutput(t, &errOut, "joined")

	sent, _, err := execSub(ctx, newMcastCmd(), "", "send", "--iface", "lo", "--ttl", "1", "--count", "2", "--interval", "5ms", "--message", "ping", group)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("sent to "+group+": ping\n", 2); sent != want {
		t.Errorf("send printed %q, want %q", sent, want)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("listen printed %q, want 2 lines", out.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "from 127.0.0.1:") || !strings.HasSuffix(l, " (IPv4, 4 bytes): ping") {
			t.Errorf("line %q", l)
		}
	}
}

// TestMcastIPv6OnLoopback: IPv6 through the commands on lo. Where the
// kernel refuses IPv6 multicast on lo, send must fail with the interface
// and the kernel's reason, print no "sent to" line, and the test skips.
func TestMcastIPv6OnLoopback(t *testing.T) {
	t.Parallel()
	_, refused := mcasttest.LoopbackIPv6Refused(t)
	group := mcasttest.GroupV6(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if refused != nil {
		sent, _, err := execSub(ctx, newMcastCmd(), "", "send", "--iface", "lo", "--count", "1", "--message", "ping", group)
		if err == nil || !strings.Contains(err.Error(), "on interface lo: the kernel refused: ") || sent != "" {
			t.Errorf("send printed %q, error %v; want no output and an error naming lo and the kernel's reason", sent, err)
		}
		t.Skipf("the kernel refuses IPv6 multicast on lo: %v (mcast send reports: %v)", refused, err)
	}
	var out, errOut syncbuf.Buffer
	listen := newMcastCmd()
	listen.SetArgs([]string{"listen", "--iface", "lo", "--count", "1", group})
	listen.SetOut(&out)
	listen.SetErr(&errOut)
	done := make(chan error, 1)
	go func() { done <- listen.ExecuteContext(ctx) }()
	waitOutput(t, &errOut, "joined")
	if _, _, err := execSub(ctx, newMcastCmd(), "", "send", "--iface", "lo", "--count", "1", "--message", "ping", group); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "from [::1]:") || !strings.HasSuffix(got, " (IPv6, 4 bytes): ping\n") {
		t.Errorf("listen printed %q", got)
	}
}
