package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// countingBytes counts the bytes a connection received.
type countingBytes struct{ n atomic.Int64 }

type countingReader struct {
	net.Conn
	c *countingBytes
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.c.n.Add(int64(n))
	return n, err
}

// countedChatJoin is chatJoin counting every byte the user receives.
func countedChatJoin(t *testing.T, addr, nick string, c *countingBytes) *chatUser {
	t.Helper()
	u := dialRaw(t, addr)
	u.r.Reset(countingReader{u.c, c})
	u.nick = nick
	u.expectPrefix("Welcome to netchat (")
	u.send(nick)
	u.expectPrefix("* Welcome, " + nick + "! ")
	return u
}

// dialRaw connects without reading anything.
func dialRaw(t *testing.T, addr string) *chatUser {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, histWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &chatUser{t: t, c: c, r: bufio.NewReader(c)}
}

// scrape fetches http://addr/metrics and flattens it to one value per
// series: "name" or `name{label="value",…}` for counters and gauges,
// "name_count" and "name_sum" for histograms.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	client := &http.Client{Timeout: histWait}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			sort.Strings(labels)
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
				out[key+"_sum"] = m.GetHistogram().GetSampleSum()
			case m.Untyped != nil:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

// awaitMetrics scrapes until every wanted series has its value: counters
// that the server updates after the fact (deliveries are counted once a
// write has returned) are awaited, never read once.
func awaitMetrics(t *testing.T, addr, what string, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(histWait)
	for {
		got := scrape(t, addr)
		var diff []string
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				diff = append(diff, fmt.Sprintf("%s = %v (present %v), want %v", k, g, ok, v))
			}
		}
		if len(diff) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			sort.Strings(diff)
			t.Fatalf("%s: metrics never matched:\n%s", what, strings.Join(diff, "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logRecords parses a JSON log, one object per line.
func logRecords(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for l := range strings.Lines(logs) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// TestServeMetrics runs serve with --metrics, scrapes /metrics with the
// Prometheus text parser while users connect, chat, get rejected, quit and
// flood, and checks that every counter moves as it should; /healthz
// answers ok; the JSON log has a line per connect, disconnect (with its
// reason) and rejection.
func TestServeMetrics(t *testing.T) {
	t.Parallel()
	o := testServeOptions()
	o.metricsAddr = "127.0.0.1:0"
	o.maxConnsPerIP = 2
	o.msgRate = 1
	o.msgBurst = 3
	o.history = 0
	o.logFormat = "json"
	o.logLevel = "info"
	s := startServeLogged(t, o)
	maddr, chat := s.addrs["metrics"], s.addrs["chat"]
	if maddr == "" {
		t.Fatalf("no metrics address reported: %v", s.addrs)
	}

	client := &http.Client{Timeout: histWait}
	resp, err := client.Get("http://" + maddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz: %s %q %v", resp.Status, body, err)
	}

	// Every series is there from the start, at zero.
	zero := map[string]float64{
		"netchat_connections":                             0,
		"netchat_connections_total":                       0,
		"netchat_users_online":                            0,
		`netchat_rejections_total{reason="per_ip_limit"}`: 0,
		`netchat_rejections_total{reason="server_full"}`:  0,
		`netchat_rejections_total{reason="shutdown"}`:     0,
		"netchat_lines_in_total":                          0,
		"netchat_bytes_in_total":                          0,
		"netchat_deliveries_total":                        0,
		"netchat_bytes_out_total":                         0,
		"netchat_slow_consumer_disconnects_total":         0,
		"netchat_flood_disconnects_total":                 0,
		"netchat_delivery_latency_seconds_count":          0,
	}
	awaitMetrics(t, maddr, "at start", zero)

	var recvA, recvB countingBytes
	alice := countedChatJoin(t, chat, "alice", &recvA)
	bob := countedChatJoin(t, chat, "bob", &recvB)
	alice.expect("* bob joined (2 online)")
	awaitMetrics(t, maddr, "two users", map[string]float64{
		"netchat_connections":       2,
		"netchat_connections_total": 2,
		"netchat_users_online":      2,
	})

	// A third connection from the same address is one too many.
	refused := dialRaw(t, chat)
	refused.expect("! too many connections from your address")
	refused.expectEOF()
	awaitMetrics(t, maddr, "a rejection", map[string]float64{
		`netchat_rejections_total{reason="per_ip_limit"}`: 1,
		"netchat_connections_total":                       3,
		"netchat_connections":                             2,
	})

	alice.send("hi bob")
	bob.expect("alice: hi bob")
	// In: the two nicknames and one line. Out: greeting and welcome for
	// each, the join notice to alice, the message to bob.
	got := awaitMetrics(t, maddr, "a message", map[string]float64{
		"netchat_lines_in_total":   3,
		"netchat_bytes_in_total":   float64(len("alice") + len("bob") + len("hi bob")),
		"netchat_deliveries_total": 6,
		"netchat_bytes_out_total":  float64(recvA.n.Load() + recvB.n.Load()),
	})
	if n := got["netchat_delivery_latency_seconds_count"]; n < 1 || n > 6 {
		t.Errorf("delivery latency histogram has %v samples, want 1 to 6", n)
	}

	bob.send("/quit")
	bob.expect("* bye")
	bob.expectEOF()
	alice.expect("* bob left (1 online)")
	awaitMetrics(t, maddr, "bob quit", map[string]float64{
		"netchat_connections":  1,
		"netchat_users_online": 1,
	})

	// --msg-rate 1 --msg-burst 3: three lines pass, three more are
	// dropped, and that is flooding.
	flo := chatJoin(t, chat, "flo")
	alice.expect("* flo joined (2 online)")
	for i := range 10 {
		flo.send(fmt.Sprint("spam ", i))
	}
	_ = flo.c.SetReadDeadline(time.Now().Add(histWait))
	rest, err := io.ReadAll(flo.r)
	flo.c.Close()
	if err != nil && !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("flo: %v", err)
	}
	floLines := strings.Split(strings.TrimSpace(string(rest)), "\r\n")
	if floLines[len(floLines)-1] != "! flooding" {
		t.Fatalf("flo got %q, want to be cut off with ! flooding", floLines)
	}
	awaitMetrics(t, maddr, "flooding", map[string]float64{
		"netchat_flood_disconnects_total":                1,
		"netchat_connections":                            1,
		"netchat_users_online":                           1,
		"netchat_connections_total":                      4,
		"netchat_slow_consumer_disconnects_total":        0,
		`netchat_rejections_total{reason="server_full"}`: 0,
	})

	// The log has a line per connect, rejection and disconnect.
	deadline := time.Now().Add(histWait)
	for {
		var connects, rejects int
		reasons := map[string]string{}
		for _, rec := range logRecords(t, s.logs.String()) {
			switch rec["msg"] {
			case "connect":
				connects++
			case "connection rejected":
				if rec["reason"] == "per_ip_limit" {
					rejects++
				}
			case "disconnect":
				nick, _ := rec["nick"].(string)
				reasons[nick], _ = rec["reason"].(string)
			}
		}
		if connects == 3 && rejects == 1 && reasons["bob"] == "quit" && reasons["flo"] == "flooding" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log: %d connects, %d rejections, disconnect reasons %v; want 3, 1, bob quit and flo flooding:\n%s",
				connects, rejects, reasons, s.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServeMetricsTranscript: with --data-dir, the transcript's dropped
// events and write errors are exported too (and are zero on a healthy disk).
func TestServeMetricsTranscript(t *testing.T) {
	t.Parallel()
	o := testServeOptions()
	o.metricsAddr = "127.0.0.1:0"
	o.dataDir = t.TempDir()
	s := startServeLogged(t, o)
	awaitMetrics(t, s.addrs["metrics"], "with a transcript", map[string]float64{
		"netchat_transcript_dropped_total":      0,
		"netchat_transcript_write_errors_total": 0,
	})
}
