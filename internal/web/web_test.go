package web

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/html"

	"netchat/internal/testcert"
)

// wait bounds every wait for something that should happen.
const wait = 10 * time.Second

// wsHandler is a test's /ws handler; it gets the Server so that it can use
// AcceptOptions.
type wsHandler func(s *Server, w http.ResponseWriter, r *http.Request, remote netip.AddrPort)

// startWeb serves cfg on a loopback port until the end of the test and
// returns the server and its host:port.
func startWeb(t *testing.T, cfg Config, ws wsHandler) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var s *Server
	cfg.ServeWS = func(w http.ResponseWriter, r *http.Request, remote netip.AddrPort) { ws(s, w, r, remote) }
	s, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		select {
		case err := <-done:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(wait):
			t.Error("Serve did not return after Close")
		}
	})
	return s, ln.Addr().String()
}

// echoWS accepts the WebSocket, sends one line describing what the handler
// was given, then echoes every message until the client goes.
func echoWS(s *Server, w http.ResponseWriter, r *http.Request, remote netip.AddrPort) {
	c, err := websocket.Accept(w, r, s.AcceptOptions())
	if err != nil {
		return
	}
	defer c.CloseNow()
	// The request's context is not used after the upgrade (see Accept).
	ctx := context.Background()
	nc := NetConn(r.Context())
	desc := "remote=" + remote.String()
	if nc != nil {
		desc += fmt.Sprintf(" peer=%s conn=%T", nc.RemoteAddr(), nc)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(desc)); err != nil {
		return
	}
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, data); err != nil {
			return
		}
	}
}

// dialOpts are websocket.DialOptions with an Origin header (none if empty)
// and an HTTP client that records the local address of its connection.
func dialOpts(origin string, local *string, tlsCfg *tls.Config) *websocket.DialOptions {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	var mu sync.Mutex
	tr := &http.Transport{
		TLSClientConfig: tlsCfg,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil && local != nil {
				mu.Lock()
				*local = c.LocalAddr().String()
				mu.Unlock()
			}
			return c, err
		},
	}
	return &websocket.DialOptions{HTTPHeader: h, HTTPClient: &http.Client{Transport: tr, Timeout: wait}}
}

// dialEcho connects to an echoWS server and returns the connection and the
// handler's description line.
func dialEcho(t *testing.T, url string, opts *websocket.DialOptions) (*websocket.Conn, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		status := "no response"
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial %s: %v (%s)", url, err, status)
	}
	t.Cleanup(func() { c.CloseNow() })
	_, desc, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("reading the handler's first line: %v", err)
	}
	return c, string(desc)
}

func roundTrip(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	typ, got, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(got) != msg {
		t.Fatalf("echo of %q: %v %q %v", msg, typ, got, err)
	}
}

func get(t *testing.T, client *http.Client, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, string(body)
}

// TestHeaders: every response, whatever its status, carries the security
// headers; the page's files are revalidated, everything else is not
// cached.
func TestHeaders(t *testing.T) {
	t.Parallel()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "netchat_users_online 3\n")
	})
	_, addr := startWeb(t, Config{Metrics: metrics}, echoWS)
	_, addrNoMetrics := startWeb(t, Config{}, echoWS)
	client := &http.Client{Timeout: wait}
	tests := []struct {
		method, url  string
		status       int
		contentType  string
		cacheControl string
		body         string // a substring of the body
	}{
		{"GET", "http://" + addr + "/", 200, "text/html; charset=utf-8", "no-cache", `<script src="app.js" defer></script>`},
		{"HEAD", "http://" + addr + "/", 200, "text/html; charset=utf-8", "no-cache", ""},
		{"GET", "http://" + addr + "/app.js", 200, "text/javascript; charset=utf-8", "no-cache", "'use strict';"},
		{"GET", "http://" + addr + "/style.css", 200, "text/css; charset=utf-8", "no-cache", "prefers-color-scheme: dark"},
		{"GET", "http://" + addr + "/favicon.svg", 200, "image/svg+xml", "no-cache", "<svg"},
		{"GET", "http://" + addr + "/healthz", 200, "text/plain; charset=utf-8", "no-store", "ok\n"},
		{"GET", "http://" + addr + "/metrics", 200, "text/plain; charset=utf-8", "no-store", "netchat_users_online 3"},
		{"GET", "http://" + addrNoMetrics + "/metrics", 404, "text/plain; charset=utf-8", "no-store", "404 page not found"},
		{"GET", "http://" + addr + "/index.html", 404, "text/plain; charset=utf-8", "no-store", "404 page not found"},
		{"GET", "http://" + addr + "/static/app.js", 404, "text/plain; charset=utf-8", "no-store", ""},
		{"GET", "http://" + addr + "/../web.go", 404, "text/plain; charset=utf-8", "no-store", ""},
		{"POST", "http://" + addr + "/", 405, "text/plain; charset=utf-8", "no-store", ""},
		{"DELETE", "http://" + addr + "/ws", 405, "text/plain; charset=utf-8", "no-store", ""},
		// A plain GET of /ws reaches the handler, and Accept refuses it.
		{"GET", "http://" + addr + "/ws", 426, "text/plain; charset=utf-8", "no-store", "WebSocket protocol violation"},
	}
	for _, tt := range tests {
		resp, body := get(t, client, tt.method, tt.url, nil)
		what := tt.method + " " + tt.url
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %s, want %d", what, resp.Status, tt.status)
		}
		h := resp.Header
		for k, want := range map[string]string{
			"Content-Security-Policy": ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
			"Content-Type":            tt.contentType,
			"Cache-Control":           tt.cacheControl,
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", what, k, got, want)
			}
		}
		if !strings.Contains(body, tt.body) {
			t.Errorf("%s: body %.200q does not contain %q", what, body, tt.body)
		}
		if tt.method == "HEAD" && body != "" {
			t.Errorf("%s: HEAD has a body", what)
		}
	}
	for _, directive := range []string{"script-src 'self'", "default-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(ContentSecurityPolicy, directive) {
			t.Errorf("the CSP lacks %s", directive)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe-") {
		t.Error("the CSP allows something unsafe")
	}
}

// TestRevalidation: the page's files have a content ETag, so a browser
// that revalidates (Cache-Control: no-cache) gets 304 without a body.
func TestRevalidation(t *testing.T) {
	t.Parallel()
	_, addr := startWeb(t, Config{}, echoWS)
	client := &http.Client{Timeout: wait}
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		resp, body := get(t, client, "GET", "http://"+addr+path, nil)
		etag := resp.Header.Get("ETag")
		if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) {
			t.Fatalf("%s: ETag %q", path, etag)
		}
		if resp.ContentLength != int64(len(body)) || body == "" {
			t.Errorf("%s: Content-Length %d for %d bytes", path, resp.ContentLength, len(body))
		}
		resp, body = get(t, client, "GET", "http://"+addr+path, http.Header{"If-None-Match": {etag}})
		if resp.StatusCode != http.StatusNotModified || body != "" {
			t.Errorf("%s with If-None-Match: %s, %d bytes; want 304 and no body", path, resp.Status, len(body))
		}
		resp, _ = get(t, client, "GET", "http://"+addr+path, http.Header{"If-None-Match": {`"stale"`}})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s with a stale ETag: %s, want 200", path, resp.Status)
		}
	}
}

// TestPageHasNoInlineCode: the CSP forbids inline script and style, so the
// page must not need any: every script is an external file of the page,
// no element has an event handler or style attribute, nothing is loaded
// from elsewhere. And the script never turns text into HTML.
func TestPageHasNoInlineCode(t *testing.T) {
	t.Parallel()
	z := html.NewTokenizer(bytes.NewReader(static["index.html"].body))
	var inScript bool
	var scripts, links int
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if z.Err() != io.EOF {
				t.Fatal(z.Err())
			}
			break
		}
		tok := z.Token()
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			if tok.Data == "style" {
				t.Errorf("inline <style> element")
			}
			for _, a := range tok.Attr {
				if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
					t.Errorf("<%s %s=%q>: inline code is refused by the CSP", tok.Data, a.Key, a.Val)
				}
				if a.Key == "src" || a.Key == "href" {
					if strings.Contains(a.Val, ":") || strings.HasPrefix(a.Val, "/") {
						t.Errorf("<%s %s=%q>: not a file of the page", tok.Data, a.Key, a.Val)
					} else if _, ok := static[a.Val]; !ok {
						t.Errorf("<%s %s=%q>: no such file is served", tok.Data, a.Key, a.Val)
					}
					links++
				}
			}
			if tok.Data == "script" {
				scripts++
				inScript = true
				if !hasAttr(tok, "src") {
					t.Error("<script> without src")
				}
			}
		case html.TextToken:
			if inScript && strings.TrimSpace(tok.Data) != "" {
				t.Errorf("inline script %q", tok.Data)
			}
		case html.EndTagToken:
			inScript = false
		}
	}
	if scripts != 1 || links < 3 {
		t.Errorf("%d scripts, %d links; want the page's one script, its stylesheet and icon", scripts, links)
	}
	js := string(static["app.js"].body)
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'", "srcdoc"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}

func hasAttr(tok html.Token, key string) bool {
	for _, a := range tok.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// TestWebSocketOrigin dials /ws with real WebSocket handshakes: the page's
// own origin and clients that send none (not browsers) are accepted, any
// other origin gets 403 unless AllowOrigins lists it.
func TestWebSocketOrigin(t *testing.T) {
	t.Parallel()
	_, strict := startWeb(t, Config{}, echoWS)
	_, wide := startWeb(t, Config{AllowOrigins: []string{"https://chat.example.org", "*.trusted.example"}}, echoWS)
	tests := []struct {
		name   string
		addr   string
		origin string // "SELF" is replaced by the server's own origin
		ok     bool
	}{
		{"no Origin header", strict, "", true},
		{"same origin", strict, "SELF", true},
		{"same origin, host in capitals", strict, "HTTP://SELF", true},
		{"foreign origin", strict, "http://evil.example", false},
		{"same host, other port", strict, "http://127.0.0.1:1", false},
		{"localhost is not 127.0.0.1", strict, "http://localhost", false},
		{"opaque origin", strict, "null", false},
		{"garbage origin", strict, "::::", false},
		{"listed origin needs the flag", strict, "https://chat.example.org", false},
		{"listed origin", wide, "https://chat.example.org", true},
		{"listed origin, other scheme", wide, "http://chat.example.org", false},
		{"listed origin, other port", wide, "https://chat.example.org:8443", false},
		{"wildcard host, any scheme", wide, "http://a.trusted.example", true},
		{"wildcard does not match the parent", wide, "https://trusted.example", false},
		{"same origin still allowed", wide, "SELF", true},
		{"unlisted origin", wide, "https://evil.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			origin := strings.ReplaceAll(tt.origin, "SELF", "http://"+tt.addr)
			if tt.origin == "HTTP://SELF" {
				origin = "HTTP://" + tt.addr
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, "ws://"+tt.addr+"/ws", dialOpts(origin, nil, nil))
			if tt.ok {
				if err != nil {
					t.Fatalf("Origin %q refused: %v", origin, err)
				}
				defer c.CloseNow()
				if _, _, err := c.Read(ctx); err != nil {
					t.Fatalf("Origin %q: no session: %v", origin, err)
				}
				return
			}
			if err == nil {
				c.CloseNow()
				t.Fatalf("Origin %q was accepted", origin)
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("Origin %q: %v (%v), want 403", origin, err, resp)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
				t.Errorf("403 without the CSP: %q", got)
			}
		})
	}
}

// TestWebSocketSession: the handler gets the client's address and the
// connection underneath, and the upgraded connection carries messages.
func TestWebSocketSession(t *testing.T) {
	t.Parallel()
	_, addr := startWeb(t, Config{}, echoWS)
	var local string
	c, desc := dialEcho(t, "ws://"+addr+"/ws", dialOpts("http://"+addr, &local, nil))
	want := fmt.Sprintf("remote=%s peer=%s conn=*net.TCPConn", local, local)
	if desc != want {
		t.Errorf("handler saw %q, want %q", desc, want)
	}
	roundTrip(t, c, "hello")
	roundTrip(t, c, "<b>not html</b> ✓")
}

// TestTrustedProxy: X-Forwarded-For decides the address the handler gets
// only when the TCP peer is a trusted proxy.
func TestTrustedProxy(t *testing.T) {
	t.Parallel()
	_, trusting := startWeb(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, echoWS)
	_, untrusting := startWeb(t, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, echoWS)
	tests := []struct {
		name, addr, xff string
		want            string // "PEER" for the TCP peer
	}{
		{"trusted proxy", trusting, "192.0.2.1, 203.0.113.9", "203.0.113.9:0"},
		{"trusted proxy, chain of loopback proxies", trusting, "203.0.113.9, 127.0.0.5", "203.0.113.9:0"},
		{"trusted proxy, malformed header", trusting, "203.0.113.9, bogus", "PEER"},
		{"untrusted peer", untrusting, "203.0.113.9", "PEER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var local string
			opts := dialOpts("", &local, nil)
			opts.HTTPHeader.Set("X-Forwarded-For", tt.xff)
			_, desc := dialEcho(t, "ws://"+tt.addr+"/ws", opts)
			want := strings.ReplaceAll(tt.want, "PEER", local)
			if got, _, _ := strings.Cut(strings.TrimPrefix(desc, "remote="), " "); got != want {
				t.Errorf("X-Forwarded-For %q from %s: handler got %s, want %s", tt.xff, local, got, want)
			}
		})
	}
}

// TestTLS: with a certificate the same listener speaks HTTPS (HTTP/1.1
// only, since WebSocket upgrades need it) and wss://, and the page's own
// https origin is accepted.
func TestTLS(t *testing.T) {
	t.Parallel()
	cert := testcert.New(t)
	_, addr := startWeb(t, Config{TLS: cert.ServerConfig(t)}, echoWS)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cert.CertPEM)
	tlsCfg := &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}}
	client := &http.Client{Timeout: wait, Transport: &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}}
	resp, body := get(t, client, "GET", "https://"+addr+"/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "app.js") {
		t.Fatalf("GET / over TLS: %s", resp.Status)
	}
	if resp.Proto != "HTTP/1.1" || resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("protocol %s, ALPN %q; want HTTP/1.1", resp.Proto, resp.TLS.NegotiatedProtocol)
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
		t.Errorf("CSP over TLS: %q", got)
	}
	var local string
	c, desc := dialEcho(t, "wss://"+addr+"/ws", dialOpts("https://"+addr, &local, tlsCfg))
	if want := fmt.Sprintf("remote=%s peer=%s conn=*tls.Conn", local, local); desc != want {
		t.Errorf("handler saw %q, want %q", desc, want)
	}
	roundTrip(t, c, "over tls")

	// A client that does not trust the certificate gets nowhere.
	if _, err := (&http.Client{Timeout: wait}).Get("https://" + addr + "/"); err == nil {
		t.Error("an unverified certificate was accepted")
	}
}

// TestTimeouts: the HTTP server's timeouts are real (a client that never
// finishes its request headers is cut off), yet a WebSocket session
// outlives them all: the hijacked connection keeps no deadline.
func TestTimeouts(t *testing.T) {
	t.Parallel()
	const short = 150 * time.Millisecond
	_, addr := startWeb(t, Config{
		ReadHeaderTimeout: short, ReadTimeout: short, WriteTimeout: short, IdleTimeout: short,
	}, echoWS)

	slow, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = slow.SetReadDeadline(time.Now().Add(wait))
	start := time.Now()
	rest, err := io.ReadAll(bufio.NewReader(slow))
	if err != nil {
		t.Fatalf("the slow client was not cut off: %v", err)
	}
	if len(rest) > 0 && !bytes.HasPrefix(rest, []byte("HTTP/1.1 4")) {
		t.Fatalf("the slow client got %q", rest)
	}
	t.Logf("an unfinished request was closed after %v", time.Since(start).Round(time.Millisecond))

	c, _ := dialEcho(t, "ws://"+addr+"/ws", dialOpts("", nil, nil))
	roundTrip(t, c, "before")
	// Waiting is what this test is about: every timeout passes, twice.
	time.Sleep(3 * short)
	roundTrip(t, c, "after the timeouts")
}

// TestShutdown: Shutdown stops the listener and returns without waiting
// for WebSocket sessions, which are their handler's to end; Serve returns
// http.ErrServerClosed.
func TestShutdown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var s *Server
	s, err = New(Config{ServeWS: func(w http.ResponseWriter, r *http.Request, remote netip.AddrPort) { echoWS(s, w, r, remote) }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	addr := ln.Addr().String()
	c, _ := dialEcho(t, "ws://"+addr+"/ws", dialOpts("", nil, nil))

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("Serve returned %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Serve did not return after Shutdown")
	}
	// The listener is closed. (Not checked by dialing its port: another
	// test may listen there by now, or the dial connect to itself.)
	if conn, err := ln.Accept(); err == nil {
		conn.Close()
		t.Error("the listener still accepts after Shutdown")
	} else if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Shutdown: %v, want net.ErrClosed", err)
	}
	roundTrip(t, c, "the session is still its handler's")
	if err := s.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	ws := func(http.ResponseWriter, *http.Request, netip.AddrPort) {}
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "ServeWS is required"},
		{Config{ServeWS: ws, AllowOrigins: []string{"https://a.example/x"}}, "without path"},
	} {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error about %q", tt.cfg, err, tt.want)
		}
	}
}
