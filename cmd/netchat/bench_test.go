package main

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"netchat/internal/chat"
	"netchat/internal/server"
	"netchat/internal/syncbuf"
)

func startBenchServer(t *testing.T) string {
	t.Helper()
	cfg := server.Defaults()
	cfg.MaxConnsPerIP = 0
	srv := server.New(chat.NewRoom(chat.Config{Name: "bench", History: 20}), cfg)
	ln, err := srv.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestBenchCmdJSON(t *testing.T) {
	addr := startBenchServer(t)
	stdout, stderr, err := execSub(t.Context(), newBenchCmd(), "",
		"--addr", addr, "--clients", "6", "--senders", "2", "--rate", "20/s",
		"--duration", "500ms", "--warmup", "100ms", "--payload", "100", "--json")
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	for k, v := range res {
		switch v.(type) {
		case map[string]any, []any:
			t.Errorf("key %q is not flat: %v", k, v)
		}
	}
	if res["delivery_ratio"] != 1.0 || res["clients"] != 6.0 || res["rate_per_sender"] != 20.0 || res["payload_bytes"] != 100.0 {
		t.Errorf("unexpected result: %s", stdout)
	}
	if !strings.Contains(stderr, "bench: connected 6 clients") {
		t.Errorf("no progress on stderr: %q", stderr)
	}
}

func TestBenchCmdSummaryQuiet(t *testing.T) {
	addr := startBenchServer(t)
	// --senders is left at its default (10), more than --clients.
	stdout, stderr, err := execSub(t.Context(), newBenchCmd(), "",
		"--addr", addr, "--clients", "3", "--duration", "300ms", "--warmup", "0s", "--progress=false")
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr)
	}
	if stderr != "" {
		t.Errorf("--progress=false still wrote %q", stderr)
	}
	for _, want := range []string{"3 clients, 3 senders, closed loop", "ratio 1.0000", "deliveries/s", "p99.9"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
}

func TestBenchCmdErrors(t *testing.T) {
	// Port 1: nothing listens there, and the kernel never hands it out to
	// another test's listener (a port just closed could be).
	closed := "127.0.0.1:1"
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"--addr", closed}, false, "cannot connect to " + closed},
		{[]string{"--insecure"}, true, "--insecure only applies with --tls"},
		{[]string{"--clients", "1"}, true, "clients must be at least 2"},
		{[]string{"--clients", "4", "--senders", "5"}, true, "senders must be between 1 and clients"},
		{[]string{"--rate", "fast"}, true, "rate"},
		{[]string{"extra"}, true, "unknown command"},
	} {
		root := newRootCmd()
		_, _, err := execSub(t.Context(), root, "", append([]string{"bench"}, tc.args...)...)
		var ue usageError
		isUsage := errors.As(err, &ue)
		if err == nil || !strings.Contains(err.Error(), tc.want) || isUsage != tc.usage {
			t.Errorf("%v: error %v (usage %v), want %q (usage %v)", tc.args, err, isUsage, tc.want, tc.usage)
		}
	}
}

// startDefaultServe runs `netchat serve` with every limit at its default
// (--msg-rate 10, --max-conns-per-ip 64, ...) and returns its address.
func startDefaultServe(t *testing.T) string {
	t.Helper()
	return startServeCmd(t, "chat server listening")
}

// startServeCmd runs `netchat serve -l 127.0.0.1:0 ARGS...` and returns
// the address of the log line msg.
func startServeCmd(t *testing.T, msg string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncbuf.Buffer
	serve := newServeCmd()
	serve.SetArgs(append([]string{"-l", "127.0.0.1:0", "--log-format", "json"}, args...))
	serve.SetOut(&logs)
	serve.SetErr(&logs)
	done := make(chan error, 1)
	go func() { done <- serve.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	re := regexp.MustCompile(`"msg":"` + msg + `","addr":"([^"]+)"`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not report its address:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBenchCmdDefaultLimits: against a server with its default limits a
// load test measures nothing. bench prints what happened, says which limit
// stopped it and how to lift it, and exits 1.
func TestBenchCmdDefaultLimits(t *testing.T) {
	t.Parallel()
	addr := startDefaultServe(t)
	args := []string{"bench", "--addr", addr, "--clients", "6", "--senders", "2", "--rate", "1000",
		"--warmup", "2s", "--duration", "300ms", "--progress=false"}
	stdout, _, err := execSub(t.Context(), newBenchCmd(), "", args[1:]...)
	var ue usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "nothing was measured") || !strings.Contains(err.Error(), "--msg-rate 0") {
		t.Errorf("error %v, want nothing measured and the --msg-rate hint", err)
	}
	if !strings.Contains(stdout, "sent        0 lines") || !strings.Contains(stdout, "WARNING     the server's limits") {
		t.Errorf("summary:\n%s", stdout)
	}
	if code := run(args); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	// More clients than its per-address limit.
	_, _, err = execSub(t.Context(), newBenchCmd(), "", "--addr", addr, "--clients", "70", "--progress=false")
	if err == nil || !strings.Contains(err.Error(), "--max-conns-per-ip 0") {
		t.Errorf("70 clients: %v", err)
	}
}

func TestBenchCmdWebSocketAddress(t *testing.T) {
	t.Parallel()
	// Port 1: nothing listens there, and the kernel never hands it out to
	// another test's listener (a port just closed could be).
	closed := "127.0.0.1:1"
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"--addr", "ws://" + closed + "/ws"}, false, "cannot connect to " + closed},
		{[]string{"--ws", "--addr", closed}, false, "cannot connect to " + closed},
		{[]string{"--addr", "wss://" + closed + "/ws"}, true, "wss is not supported"},
		{[]string{"--addr", "http://" + closed + "/ws"}, true, "want HOST:PORT or ws://HOST:PORT/PATH"},
		{[]string{"--addr", "ws://" + closed + "/ws", "--ws-path", "/x"}, true, "--ws-path conflicts"},
		{[]string{"--ws", "--ws-path", "ws", "--addr", closed}, true, "must start with /"},
		{[]string{"--ws", "--tls", "--addr", closed}, true, "wss"},
	} {
		_, _, err := execSub(t.Context(), newBenchCmd(), "", append(tc.args, "--progress=false")...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &ue) != tc.usage {
			t.Errorf("%v: error %v, want %q (usage error %v)", tc.args, err, tc.want, tc.usage)
		}
	}
}

// TestBenchCmdNetchatWebSocket measures netchat's own /ws (serve --http)
// over WebSocket.
func TestBenchCmdNetchatWebSocket(t *testing.T) {
	t.Parallel()
	addr := startServeCmd(t, "web page listening", "--http", "127.0.0.1:0", "--msg-rate", "0", "--max-conns-per-ip", "0")
	stdout, stderr, err := execSub(t.Context(), newBenchCmd(), "",
		"--addr", "ws://"+addr+"/ws", "--clients", "6", "--senders", "2", "--rate", "20/s",
		"--duration", "500ms", "--warmup", "100ms", "--drain", "30s", "--json", "--progress=false")
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if res["delivery_ratio"] != 1.0 || res["ws_path"] != "/ws" || res["sent_lines"] == 0.0 || res["order_violations"] != 0.0 ||
		res["disconnects"] != 0.0 || res["read_errors"] != 0.0 || res["server_error_lines"] != 0.0 {
		t.Errorf("unexpected result: %s", stdout)
	}
}
