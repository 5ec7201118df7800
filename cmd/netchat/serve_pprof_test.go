package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// getStatus GETs url and returns the status code and the body.
func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, body := httpGet(t, &http.Client{Timeout: histWait}, url)
	return resp.StatusCode, body
}

// TestServePprofOptIn: profiles are not served on --metrics, only on the
// listener of --pprof, which in turn serves no metrics.
func TestServePprofOptIn(t *testing.T) {
	t.Parallel()
	o := testServeOptions()
	o.metricsAddr = "127.0.0.1:0"
	s := startServeLogged(t, o)
	if _, ok := s.addrs["pprof"]; ok {
		t.Fatal("a pprof listener without --pprof")
	}
	m := "http://" + s.addrs["metrics"]
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		if code, _ := getStatus(t, m+path); code != http.StatusNotFound {
			t.Errorf("--metrics %s: status %d, want 404", path, code)
		}
	}
	if code, body := getStatus(t, m+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}

	o = testServeOptions()
	o.metricsAddr = "127.0.0.1:0"
	o.pprofAddr = "127.0.0.1:0"
	s = startServeLogged(t, o)
	p := "http://" + s.addrs["pprof"]
	if s.addrs["pprof"] == "" || s.addrs["pprof"] == s.addrs["metrics"] {
		t.Fatalf("listeners %v: want pprof on its own address", s.addrs)
	}
	if code, body := getStatus(t, p+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("--pprof goroutine profile: %d %.80q", code, body)
	}
	if code, body := getStatus(t, p+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "heap") {
		t.Errorf("--pprof index: %d %.80q", code, body)
	}
	if code, _ := getStatus(t, p+"/metrics"); code != http.StatusNotFound {
		t.Errorf("--pprof /metrics: status %d, want 404", code)
	}
	if code, _ := getStatus(t, "http://"+s.addrs["metrics"]+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("--metrics with --pprof also serves profiles: %d", code)
	}
}

// TestServeHelpPprof: serve --help tells what --pprof exposes and where
// to bind it.
func TestServeHelpPprof(t *testing.T) {
	t.Parallel()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"serve", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	for _, want := range []string{"--pprof string", "/debug/pprof/", "bind loopback"} {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
}

// TestHTTPServerTimeouts: the HTTP listeners drop a client that never
// finishes its request (slowloris) and one that idles on a kept-alive
// connection, rather than keeping a goroutine and a descriptor for it
// forever. Short timeouts here; serve's own are checked to be set.
func TestHTTPServerTimeouts(t *testing.T) {
	t.Parallel()
	for name, to := range map[string]httpTimeouts{"metrics": metricsTimeouts, "pprof": pprofTimeouts} {
		if to.readHeader <= 0 || to.read <= 0 || to.idle <= 0 {
			t.Errorf("%s: %+v: read header, read and idle timeouts must be set", name, to)
		}
	}
	if metricsTimeouts.write <= 0 {
		t.Errorf("metrics write timeout %v", metricsTimeouts.write)
	}

	short := httpTimeouts{readHeader: 100 * time.Millisecond, read: 100 * time.Millisecond, write: time.Second, idle: 100 * time.Millisecond}
	var addr string
	stop, err := serveHTTP("metrics", "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	}), short, slog.New(slog.DiscardHandler), func(_ string, a net.Addr) { addr = a.String() })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for name, req := range map[string]string{
		"unfinished headers": "GET /metrics HTTP/1.1\r\nHost: x\r\n",
		"idle keep-alive":    "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		// The server closes the connection; the deadline only bounds the
		// test if it does not.
		_ = c.SetReadDeadline(time.Now().Add(histWait))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("%s: the server kept the connection: %v", name, err)
		}
	}
}
