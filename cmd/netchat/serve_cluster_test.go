package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"netchat/internal/cluster/natstest"
)

// TestServeClusterFlags: wrong cluster flags are usage errors (exit 2); an
// unreachable cluster stops start-up with exit 1.
func TestServeClusterFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--cluster", "http://127.0.0.1:4222"}, 2},
		{[]string{"--cluster", "nats://127.0.0.1:4222,"}, 2},
		{[]string{"--cluster-tls"}, 2},
		{[]string{"--cluster-creds", "x.creds"}, 2},
		{[]string{"--cluster", "nats://127.0.0.1:4222", "--cluster-node-ttl", "1ms"}, 2},
		// Port 1 on loopback: nothing listens there.
		{[]string{"--cluster", "nats://127.0.0.1:1"}, 1},
	} {
		args := append([]string{"serve", "-l", "127.0.0.1:0", "--log-level", "error"}, tc.args...)
		if code := run(args); code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.args, code, tc.code)
		}
	}
}

// TestServeClusterMaxLine: a --max-line the NATS server cannot carry in
// one message stops start-up (exit 1) instead of losing the link with each
// such line.
func TestServeClusterMaxLine(t *testing.T) {
	t.Parallel()
	ns := natstest.StartWith(t, func(o *server.Options) { o.MaxPayload = 8 << 10 })
	args := []string{"serve", "-l", "127.0.0.1:0", "--log-level", "error", "--cluster", ns.URL(), "--max-line", "8192"}
	if code := run(args); code != 1 {
		t.Errorf("%v: exit %d, want 1", args, code)
	}
}

// TestServeCluster runs two `serve --cluster` nodes on one NATS server:
// users on each chat across, the cluster metrics are served, and a node's
// transcript holds the other node's events with that node's name.
func TestServeCluster(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	a := testServeOptions()
	a.node = "node-a"
	a.cluster = clusterOptions{urls: ns.URL(), nodeTTL: 30 * time.Second}
	a.metricsAddr = "127.0.0.1:0"
	sa := startServeLogged(t, a)
	b := testServeOptions()
	b.node = "node-b"
	b.cluster = clusterOptions{urls: ns.URL(), nodeTTL: 30 * time.Second}
	b.dataDir = t.TempDir()
	b.fsyncInterval = "always"
	sb := startServeLogged(t, b)

	alice := chatJoin(t, sa.addrs["chat"], "alice")
	bob := chatJoin(t, sb.addrs["chat"], "bob")
	alice.expect("* bob joined (2 online)")
	alice.send("hello from a")
	bob.expect("alice: hello from a")
	bob.send("/msg alice hi")
	bob.expect("[private to alice] hi")
	alice.expect("[private] bob: hi")
	alice.send("/who")
	alice.expect("* 2 online: alice, bob")

	resp, err := http.Get("http://" + sa.addrs["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"netchat_cluster_link_up 1", "netchat_cluster_events_published_total", "netchat_cluster_claim_seconds_bucket", "netchat_users_online 2"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	sb.stop()
	alice.expect("* bob left (1 online)")
	f, err := os.Open(filepath.Join(b.dataDir, "transcript.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{`"kind":"join","nick":"alice","text":"","node":"node-a"`, `"kind":"msg","nick":"alice","text":"hello from a","node":"node-a"`, `"kind":"join","nick":"bob","text":"","node":"node-b"`} {
		if !strings.Contains(all, want) {
			t.Errorf("transcript lacks %s:\n%s", want, all)
		}
	}
	if strings.Contains(all, `"hi"`) {
		t.Errorf("a private message is in the transcript:\n%s", all)
	}
}
