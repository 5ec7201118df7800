package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"netchat/internal/server"
)

// defaultTLSPort is the port SPEC §2.6 uses for TLS, taken when
// --tls-listen names only a host.
const defaultTLSPort = "8443"

// serveTLSConfig checks the TLS flags of serve and loads the certificate
// pair. It runs before anything listens, so that a missing, unreadable or
// mismatched pair stops start-up with one sentence instead of failing
// every handshake later. It returns a nil config when TLS is off, and an
// empty address when only the web listener (--http-tls) uses it.
func serveTLSConfig(o *serveOptions, logger *slog.Logger) (*tls.Config, string, error) {
	if o.tlsListen == "" && !o.httpTLS {
		if o.tlsCert != "" || o.tlsKey != "" {
			return nil, "", usagef("--tls-cert and --tls-key need --tls-listen ADDR (or --http-tls)")
		}
		return nil, "", nil
	}
	if o.tlsCert == "" || o.tlsKey == "" {
		if o.tlsListen == "" {
			return nil, "", usagef("--http-tls needs --tls-cert FILE and --tls-key FILE")
		}
		return nil, "", usagef("--tls-listen needs --tls-cert FILE and --tls-key FILE")
	}
	addr := o.tlsListen
	if addr != "" {
		if _, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil || !strings.Contains(addr, ":") {
			addr = net.JoinHostPort(strings.Trim(addr, "[]"), defaultTLSPort)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, "", usagef("--tls-listen %q: %v", o.tlsListen, err)
		}
	}
	cfg, err := server.LoadTLSConfig(o.tlsCert, o.tlsKey)
	if err != nil {
		return nil, "", err
	}
	if w := server.CertificateWarning(cfg, time.Now()); w != "" {
		logger.Warn(w+"; clients that verify it will refuse to connect", "cert", o.tlsCert)
	}
	return cfg, addr, nil
}

// listenTLS opens the TLS listener for srv, or returns nil when TLS is
// off or only the web listener uses it (no --tls-listen).
func listenTLS(ctx context.Context, srv *server.Server, cfg *tls.Config, addr string) (net.Listener, error) {
	if cfg == nil || addr == "" {
		return nil, nil
	}
	ln, err := srv.Listen(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for TLS: %w", addr, unwrapOp(err))
	}
	return tls.NewListener(ln, cfg), nil
}
