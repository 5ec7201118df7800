package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"

	"netchat/internal/chat"
	"netchat/internal/server"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
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
