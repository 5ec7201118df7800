package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"netchat/internal/syncbuf"
	"netchat/internal/testcert"
	"netchat/internal/web"
)

// startServeWeb runs runServe with --http until the end of the test and
// returns the addresses it reported, once the web page listens (it is
// the last listener to open).
func startServeWeb(t *testing.T, o *serveOptions) map[string]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	addrs := map[string]string{}
	ready := make(chan struct{})
	done := make(chan error, 1)
	logs := &syncbuf.Buffer{}
	go func() {
		done <- runServe(ctx, o, logs, func(kind string, a net.Addr) {
			mu.Lock()
			addrs[kind] = a.String()
			if kind == "http" {
				close(ready)
			}
			mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(histWait):
			t.Error("serve did not stop")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, logs)
	case <-time.After(histWait):
		t.Fatal("serve did not start the web page")
	}
	mu.Lock()
	defer mu.Unlock()
	return addrs
}

func httpGet(t *testing.T, client *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, string(body)
}

// TestServeWeb: serve --http serves the page, /healthz and (without
// --metrics) /metrics next to the chat, and /ws puts browser users in the
// same room as TCP users, refusing foreign origins.
func TestServeWeb(t *testing.T) {
	t.Parallel()
	o := testServeOptions()
	o.httpAddr = "127.0.0.1:0"
	addrs := startServeWeb(t, o)
	base := "http://" + addrs["http"]
	client := &http.Client{Timeout: histWait}

	resp, body := httpGet(t, client, base+"/")
	if resp.StatusCode != 200 || !strings.Contains(body, `src="app.js"`) {
		t.Fatalf("GET /: %s %.100q", resp.Status, body)
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != web.ContentSecurityPolicy {
		t.Errorf("CSP %q", got)
	}
	if resp, body := httpGet(t, client, base+"/healthz"); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("GET /healthz: %s %q", resp.Status, body)
	}
	carol := chatJoin(t, addrs["chat"], "carol") // the chat runs beside the page
	resp, body = httpGet(t, client, base+"/metrics")
	if resp.StatusCode != 200 || !strings.Contains(body, "netchat_users_online 1") {
		t.Errorf("GET /metrics: %s, users_online missing or not 1:\n%.300s", resp.Status, body)
	}
	// A browser user joins the same room over /ws.
	ws := wsDial(t, "ws://"+addrs["http"]+"/ws", nil)
	wsExpectPrefix(t, ws, "Welcome to netchat (")
	wsSend(t, ws, "bob")
	wsExpectPrefix(t, ws, "* Welcome, bob! 2 users online.")
	carol.expect("* bob joined (2 online)")
	wsSend(t, ws, "hi from the page")
	carol.expect("bob: hi from the page")
	carol.send("hi back")
	wsExpect(t, ws, "carol: hi back")
	// A plain GET is not an upgrade.
	if resp, _ := httpGet(t, client, base+"/ws"); resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("GET /ws without upgrade: %s", resp.Status)
	}
	// A foreign page may not open a session.
	hdr := http.Header{"Origin": {"http://evil.example"}}
	ctx, cancel := context.WithTimeout(context.Background(), histWait)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, "ws://"+addrs["http"]+"/ws", &websocket.DialOptions{HTTPHeader: hdr}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: err %v, response %v; want 403", err, resp)
	}
}

// TestServeWebCountsInLimits: --max-conns counts browser and telnet users
// together.
func TestServeWebCountsInLimits(t *testing.T) {
	t.Parallel()
	o := testServeOptions()
	o.httpAddr = "127.0.0.1:0"
	o.maxConns = 1
	addrs := startServeWeb(t, o)
	chatJoin(t, addrs["chat"], "alice")
	ws := wsDial(t, "ws://"+addrs["http"]+"/ws", nil)
	wsExpect(t, ws, "! server full, try again later")
	ctx, cancel := context.WithTimeout(context.Background(), histWait)
	defer cancel()
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
		t.Fatalf("after the refusal: %v, want close 1013", err)
	}
}

func wsDial(t *testing.T, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), histWait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return ws
}

func wsSend(t *testing.T, ws *websocket.Conn, line string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), histWait)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, []byte(line)); err != nil {
		t.Fatalf("send %q: %v", line, err)
	}
}

func wsRead(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), histWait)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return string(b)
}

func wsExpect(t *testing.T, ws *websocket.Conn, want string) {
	t.Helper()
	if got := wsRead(t, ws); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func wsExpectPrefix(t *testing.T, ws *websocket.Conn, prefix string) {
	t.Helper()
	if got := wsRead(t, ws); !strings.HasPrefix(got, prefix) {
		t.Fatalf("got %q, want a line starting with %q", got, prefix)
	}
}

// TestServeWebMetricsApart: with --metrics, metrics stay on their own
// (private) listener and the web listener has none.
func TestServeWebMetricsApart(t *testing.T) {
	t.Parallel()
	o := testServeOptions()
	o.httpAddr = "127.0.0.1:0"
	o.metricsAddr = "127.0.0.1:0"
	addrs := startServeWeb(t, o)
	client := &http.Client{Timeout: histWait}
	if resp, _ := httpGet(t, client, "http://"+addrs["http"]+"/metrics"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("web /metrics with --metrics: %s, want 404", resp.Status)
	}
	if resp, body := httpGet(t, client, "http://"+addrs["metrics"]+"/metrics"); resp.StatusCode != 200 || !strings.Contains(body, "netchat_connections ") {
		t.Errorf("--metrics /metrics: %s", resp.Status)
	}
}

// TestServeWebTLS: --http-tls serves the page over https with the
// certificate of --tls-cert/--tls-key, also without --tls-listen.
func TestServeWebTLS(t *testing.T) {
	t.Parallel()
	cert := testcert.New(t)
	o := testServeOptions()
	o.httpAddr = "127.0.0.1:0"
	o.httpTLS = true
	o.tlsCert, o.tlsKey = cert.Files(t)
	addrs := startServeWeb(t, o)
	if _, ok := addrs["tls"]; ok {
		t.Errorf("a chat TLS listener without --tls-listen: %v", addrs)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cert.CertPEM)
	client := &http.Client{Timeout: histWait, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, body := httpGet(t, client, "https://"+addrs["http"]+"/")
	if resp.StatusCode != 200 || resp.TLS == nil || !strings.Contains(body, `src="app.js"`) {
		t.Fatalf("GET / over TLS: %s", resp.Status)
	}
	// A browser elsewhere joins over wss://.
	ws := wsDial(t, "wss://"+addrs["http"]+"/ws", &websocket.DialOptions{HTTPClient: client})
	wsExpectPrefix(t, ws, "Welcome to netchat (")
	wsSend(t, ws, "sam")
	wsExpectPrefix(t, ws, "* Welcome, sam! 1 users online.")
	wsSend(t, ws, "/whoami")
	wsExpectPrefix(t, ws, "* you are sam, connected from 127.0.0.1:")
	if resp, err := (&http.Client{Timeout: histWait}).Get("http://" + addrs["http"] + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain http served on the --http-tls listener")
		}
	}
}

func TestServeWebStartupErrors(t *testing.T) {
	t.Parallel()
	certFile, keyFile := testcert.New(t).Files(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name  string
		set   func(o *serveOptions)
		want  string
		usage bool
	}{
		{"tls without http", func(o *serveOptions) { o.httpTLS = true }, "--http-tls needs --http ADDR", true},
		{"origin without http", func(o *serveOptions) { o.httpAllowOrigin = []string{"https://a.example"} },
			"--http-allow-origin needs --http ADDR", true},
		{"proxy without http", func(o *serveOptions) { o.httpTrustedProxy = []string{"10.0.0.0/8"} },
			"--http-trusted-proxy needs --http ADDR", true},
		{"no port", func(o *serveOptions) { o.httpAddr = "8080" }, `--http "8080": want HOST:PORT`, true},
		{"bad origin", func(o *serveOptions) {
			o.httpAddr = "127.0.0.1:0"
			o.httpAllowOrigin = []string{"ftp://a.example"}
		}, `--http-allow-origin: allowed origin "ftp://a.example": the scheme must be http or https`, true},
		{"bad proxy", func(o *serveOptions) {
			o.httpAddr = "127.0.0.1:0"
			o.httpTrustedProxy = []string{"10.0.0.0/8", "10.0.0.0/33"}
		}, `--http-trusted-proxy: trusted proxy "10.0.0.0/33" is not an address or CIDR prefix`, true},
		{"tls without cert", func(o *serveOptions) {
			o.httpAddr = "127.0.0.1:0"
			o.httpTLS = true
		}, "--http-tls needs --tls-cert FILE and --tls-key FILE", true},
		{"cert without any tls", func(o *serveOptions) {
			o.httpAddr = "127.0.0.1:0"
			o.tlsCert, o.tlsKey = certFile, keyFile
		}, "--tls-cert and --tls-key need --tls-listen ADDR (or --http-tls)", true},
		{"missing key", func(o *serveOptions) {
			o.httpAddr = "127.0.0.1:0"
			o.httpTLS = true
			o.tlsCert, o.tlsKey = certFile, keyFile+".missing"
		}, "cannot read TLS key file", false},
	} {
		o := testServeOptions()
		tc.set(o)
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

	// A port that is taken is no usage error, the server never says it
	// is listening, and the chat listener opened before it is closed
	// again.
	o := testServeOptions()
	o.httpAddr = busy.Addr().String()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	chatAddr := free.Addr().String()
	free.Close()
	o.listen = chatAddr
	var said []string
	err = runServe(t.Context(), o, &syncbuf.Buffer{}, func(kind string, a net.Addr) {
		said = append(said, kind)
	})
	if len(said) > 0 {
		t.Errorf("--http on a busy port: said %v was listening before failing", said)
	}
	var ue usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "cannot listen on "+busy.Addr().String()+" for the web page: ") ||
		!strings.HasSuffix(err.Error(), "address already in use") {
		t.Errorf("--http on a busy port: %v", err)
	}
	if c, err := net.DialTimeout("tcp", chatAddr, histWait); err == nil {
		c.Close()
		t.Errorf("the chat listener %s stayed open", chatAddr)
	}
}

// TestServeWebFlags: the flags parse from the command line, comma lists
// included.
func TestServeWebFlags(t *testing.T) {
	t.Parallel()
	cmd := newServeCmd()
	if err := cmd.ParseFlags([]string{
		"--http", ":8080", "--http-tls",
		"--http-allow-origin", "https://a.example,https://b.example",
		"--http-allow-origin", "*.c.example",
		"--http-trusted-proxy", "10.0.0.0/8,::1",
	}); err != nil {
		t.Fatal(err)
	}
	f := cmd.Flags()
	for name, want := range map[string]string{
		"http":               ":8080",
		"http-tls":           "true",
		"http-allow-origin":  "[https://a.example,https://b.example,*.c.example]",
		"http-trusted-proxy": "[10.0.0.0/8,::1]",
	} {
		if got := f.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %s, want %s", name, got, want)
		}
	}
}
