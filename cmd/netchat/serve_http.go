package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// httpTimeouts bound what one HTTP client may hold on to: a client that
// sends its request slowly, never reads the answer or idles on a kept-alive
// connection must not pin a goroutine and a descriptor forever.
type httpTimeouts struct {
	readHeader, read, write, idle time.Duration
}

var (
	// A scrape is one small request and one answer of some KiB.
	metricsTimeouts = httpTimeouts{readHeader: 5 * time.Second, read: 10 * time.Second, write: 30 * time.Second, idle: 60 * time.Second}
	// No write timeout: /debug/pprof/profile?seconds=N and /trace write
	// their answer at the end of the N seconds the operator asked for
	// (pprof refuses a duration above a server's WriteTimeout).
	pprofTimeouts = httpTimeouts{readHeader: 5 * time.Second, read: 10 * time.Second, idle: 60 * time.Second}
)

// serveHTTP listens on addr and serves h until the returned stop is
// called. kind names the listener in logs and for the listening hook.
func serveHTTP(kind, addr string, h http.Handler, to httpTimeouts, logger *slog.Logger, listening listeningFunc) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener: %w", kind, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: to.readHeader,
		ReadTimeout:       to.read,
		WriteTimeout:      to.write,
		IdleTimeout:       to.idle,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	go func() { _ = srv.Serve(ln) }()
	logger.Info(kind+" listening", "addr", ln.Addr().String())
	if listening != nil {
		listening(kind, ln.Addr())
	}
	return func() { _ = srv.Close() }, nil
}

// pprofMux serves net/http/pprof's handlers only: they are opt-in
// (--pprof) and on their own listener, never next to the metrics, because
// a profile shows the server's internals and a long one costs CPU.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
