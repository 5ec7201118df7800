// Package web serves netchat's chat page over HTTP(S) (SPEC §7): the page
// itself, embedded in the binary, the /ws WebSocket endpoint (handed to a
// session handler supplied by the caller), /healthz and, optionally,
// /metrics, all on one listener.
//
// The package owns everything about HTTP: security headers, timeouts, TLS,
// the WebSocket origin rules and the client's real address behind trusted
// proxies. It knows nothing about the chat room: what happens on /ws after
// the upgrade belongs to the chat server (Config.Sessions), whose sessions
// are the same for WebSocket, TCP and TLS clients.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/coder/websocket"

	"netchat/internal/server"
)

// ContentSecurityPolicy is sent with every response. It allows only the
// page's own script and stylesheet, so even a rendering mistake that put a
// user's text into the DOM as HTML could run nothing: inline scripts,
// inline event handlers and foreign resources are all refused.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self' ws: wss:; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Default timeouts of the HTTP server. Requests here are tiny (a page of a
// few KiB, an upgrade request), so a client that takes longer than this is
// either broken or holding a slot on purpose.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	// maxHeaderBytes leaves room for a long X-Forwarded-For chain, not
	// for the megabyte net/http allows by default.
	maxHeaderBytes = 32 << 10
)

// Sessions runs the chat sessions of WebSocket clients: a
// *server.Server. ServeWebSocket runs on the request's goroutine until
// the session ends.
type Sessions interface {
	ServeWebSocket(ws *websocket.Conn, nc net.Conn, remote netip.AddrPort)
}

// Config configures a Server.
type Config struct {
	// Sessions, if set, serves /ws: the upgrade with AcceptOptions, then
	// Sessions.ServeWebSocket on the connection underneath, which Serve
	// wraps with server.WrapListener so that the chat server writes the
	// WebSocket frames itself. Either Sessions or ServeWS is required.
	Sessions Sessions

	// ServeWS, if Sessions is not set, runs one WebSocket session: it is
	// called for every request to /ws with the client's address (see
	// Server.ClientAddr) and is expected to call websocket.Accept(w, r,
	// s.AcceptOptions()) and use NetConn(r.Context()) if it needs the
	// connection underneath.
	ServeWS func(w http.ResponseWriter, r *http.Request, remote netip.AddrPort)

	// AllowOrigins widens the WebSocket origin check beyond the page's own
	// origin (always allowed): patterns as ParseOrigins returns them.
	AllowOrigins []string

	// TrustedProxies are the networks whose X-Forwarded-For header is
	// believed (see ClientAddr). Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix

	// Metrics, if not nil, is served at /metrics.
	Metrics http.Handler

	// TLS, if not nil, makes Serve speak HTTPS (and so wss://). It is
	// cloned; HTTP/2 is not offered, since WebSocket upgrades need
	// HTTP/1.1.
	TLS *tls.Config

	// Logger receives the HTTP server's own errors (failed TLS handshakes,
	// malformed requests) at debug level: they are the clients' problem.
	Logger *slog.Logger

	// Timeouts of the HTTP server; zero means the Default… constant. They
	// cover the request, not the WebSocket session after the upgrade: a
	// hijacked connection has its deadlines cleared by net/http.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
}

// Server is the web front of a chat server. Its lifecycle is net/http's:
// Serve until Shutdown or Close.
type Server struct {
	hs       *http.Server
	tls      *tls.Config
	origins  []string
	proxies  []netip.Prefix
	serveWS  func(http.ResponseWriter, *http.Request, netip.AddrPort)
	sessions Sessions
	metrics  http.Handler
}

// New checks cfg and returns a Server ready to Serve.
func New(cfg Config) (*Server, error) {
	if cfg.ServeWS == nil && cfg.Sessions == nil {
		return nil, errors.New("web: Config.ServeWS is required (or Config.Sessions)")
	}
	origins, err := ParseOrigins(cfg.AllowOrigins)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		origins:  origins,
		serveWS:  cfg.ServeWS,
		sessions: cfg.Sessions,
		metrics:  cfg.Metrics,
	}
	if s.sessions != nil {
		s.serveWS = s.serveSession
	}
	for _, p := range cfg.TrustedProxies {
		s.proxies = append(s.proxies, p.Masked())
	}
	if cfg.TLS != nil {
		s.tls = cfg.TLS.Clone()
		s.tls.NextProtos = []string{"http/1.1"}
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	s.hs = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: orDefault(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      orDefault(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    maxHeaderBytes,
		Protocols:         &protocols,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

type connKey struct{}

// NetConn returns the connection a request arrived on (a *tls.Conn when
// the server speaks TLS; its NetConn method gives the TCP connection), or
// nil for a context that did not come from a Server. After
// websocket.Accept it is the connection the WebSocket runs on.
func NetConn(ctx context.Context) net.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	return c
}

// AcceptOptions are the options for websocket.Accept on /ws: the page's
// own origin plus Config.AllowOrigins (a foreign Origin gets 403 from
// Accept), no compression (chat lines are short, and per-message deflate
// costs memory per connection and opens compression side channels).
func (s *Server) AcceptOptions() *websocket.AcceptOptions {
	return &websocket.AcceptOptions{
		OriginPatterns:  s.origins,
		CompressionMode: websocket.CompressionDisabled,
	}
}

// Serve accepts connections on ln until Shutdown or Close, wrapping them
// in TLS when Config.TLS is set. Like http.Server.Serve it always returns
// an error, http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	if s.sessions != nil {
		// Above TLS, so that the chat server's frames are encrypted.
		ln = server.WrapListener(ln)
	}
	return s.hs.Serve(ln)
}

// serveSession upgrades a /ws request and runs its chat session.
func (s *Server) serveSession(w http.ResponseWriter, r *http.Request, remote netip.AddrPort) {
	ws, err := websocket.Accept(w, r, s.AcceptOptions())
	if err != nil {
		return // Accept has answered (403 for a foreign Origin)
	}
	s.sessions.ServeWebSocket(ws, NetConn(r.Context()), remote)
}

// Shutdown stops accepting, closes idle connections and waits for
// requests in progress, as http.Server.Shutdown. WebSocket connections
// are hijacked and therefore not its business: their sessions close them.
func (s *Server) Shutdown(ctx context.Context) error { return s.hs.Shutdown(ctx) }

// Close closes the listeners and every connection that is not hijacked.
func (s *Server) Close() error { return s.hs.Close() }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", serveStatic)
	for name := range static {
		if name != "index.html" {
			mux.HandleFunc("GET /"+name, serveStatic)
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics)
	}
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		s.serveWS(w, r, s.ClientAddr(r))
	})
	return securityHeaders(mux)
}

// securityHeaders sets the headers every response carries. Responses are
// not cached unless a handler says otherwise (the static files do).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
