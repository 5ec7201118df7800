package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"

	"netchat/internal/web"
)

// webFlags are serve's checked --http… flags.
type webFlags struct {
	addr    string
	origins []string
	proxies []netip.Prefix
}

// checkWebFlags checks the --http… flags before anything listens; every
// mistake is a usage error.
func checkWebFlags(o *serveOptions) (webFlags, error) {
	if o.httpAddr == "" {
		for _, f := range []struct {
			set  bool
			name string
		}{
			{o.httpTLS, "--http-tls"},
			{len(o.httpAllowOrigin) > 0, "--http-allow-origin"},
			{len(o.httpTrustedProxy) > 0, "--http-trusted-proxy"},
		} {
			if f.set {
				return webFlags{}, usagef("%s needs --http ADDR", f.name)
			}
		}
		return webFlags{}, nil
	}
	if _, _, err := net.SplitHostPort(o.httpAddr); err != nil {
		return webFlags{}, usagef("--http %q: want HOST:PORT, e.g. :8080 or 127.0.0.1:8080", o.httpAddr)
	}
	origins, err := web.ParseOrigins(o.httpAllowOrigin)
	if err != nil {
		return webFlags{}, usagef("--http-allow-origin: %v", err)
	}
	proxies, err := web.ParsePrefixes(o.httpTrustedProxy)
	if err != nil {
		return webFlags{}, usagef("--http-trusted-proxy: %v", err)
	}
	return webFlags{addr: o.httpAddr, origins: origins, proxies: proxies}, nil
}

// listenWeb opens the web page's listener (nothing when --http is not
// given), so that a busy port fails the start before anything is said to
// be listening; serveWeb then serves it.
func listenWeb(o *serveOptions, wf webFlags, tlsCfg *tls.Config, metrics http.Handler,
	sessions web.Sessions, logger *slog.Logger) (*web.Server, net.Listener, error) {
	if wf.addr == "" {
		return nil, nil, nil
	}
	cfg := web.Config{
		Sessions:       sessions,
		AllowOrigins:   wf.origins,
		TrustedProxies: wf.proxies,
		Metrics:        metrics,
		Logger:         logger,
	}
	if o.httpTLS {
		cfg.TLS = tlsCfg
	}
	ws, err := web.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", wf.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot listen on %s for the web page: %w", wf.addr, unwrapOp(err))
	}
	return ws, ln, nil
}

// serveWeb serves the page on ln; the channel gets Serve's error.
func serveWeb(o *serveOptions, ws *web.Server, ln net.Listener, logger *slog.Logger, listening listeningFunc) <-chan error {
	scheme := "http"
	if o.httpTLS {
		scheme = "https"
	}
	logger.Info("web page listening", "addr", ln.Addr().String(), "url", scheme+"://"+webHost(ln.Addr())+"/")
	if listening != nil {
		listening("http", ln.Addr())
	}
	done := make(chan error, 1)
	go func() {
		err := ws.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	return done
}

// webHost is the host:port to show in the page's URL: an unspecified
// address (":8080") is shown as localhost.
func webHost(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String()
	}
	if ap.Addr().IsUnspecified() {
		return net.JoinHostPort("localhost", fmt.Sprint(ap.Port()))
	}
	return ap.String()
}
