package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"netchat/internal/chat"
	"netchat/internal/dirlock"
	"netchat/internal/discovery"
	"netchat/internal/history"
	"netchat/internal/logthrottle"
	"netchat/internal/server"
)

// serveOptions are the flags of `netchat serve`.
type serveOptions struct {
	listen           string
	port             int
	name             string
	maxConns         int
	maxConnsPerIP    int
	idleTimeout      time.Duration
	keepAlive        time.Duration
	msgRate          rateValue
	msgBurst         int
	sendQueue        byteSize
	writeTimeout     time.Duration
	stallMax         time.Duration
	ipv6Prefix       int
	maxLine          int
	shutdownTimeout  time.Duration
	nickTimeout      time.Duration
	noticeBatchAbove int
	history          int
	dataDir          string
	fsyncInterval    string
	transcriptMax    byteSize
	node             string
	logFormat        string
	logLevel         string
	logLimit         int
	metricsAddr      string
	pprofAddr        string
	tlsListen        string
	announce         bool
	announceInterval time.Duration
	announceIface    string
	tlsCert          string
	tlsKey           string
	httpAddr         string
	httpTLS          bool
	httpAllowOrigin  []string
	httpTrustedProxy []string
	cluster          clusterOptions
}

func newServeCmd() *cobra.Command {
	d := server.Defaults()
	o := &serveOptions{
		msgRate:       10,
		sendQueue:     byteSize(d.SendQueue),
		transcriptMax: history.DefaultMaxSize,
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the chat server (TCP, default :8088)",
		Long: `Run the chat server. Anyone can join with telnet or nc:

    telnet localhost 8088
    nc localhost 8088

Limits protect the server from floods, slow readers and endless lines; see
docs/PROTOCOL.md for their exact behaviour.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, o, cmd.ErrOrStderr(), nil)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.listen, "listen", "l", ":8088", "TCP address to listen on (host:port; empty host = all addresses, IPv4 and IPv6)")
	f.IntVarP(&o.port, "port", "p", 0, "port to listen on (overrides the port of --listen)")
	f.StringVar(&o.name, "name", defaultName(), "server name shown in the greeting")
	f.IntVar(&o.maxConns, "max-conns", d.MaxConns, "maximum open connections; further ones are refused (0 = no limit)")
	f.IntVar(&o.maxConnsPerIP, "max-conns-per-ip", d.MaxConnsPerIP, "maximum connections from one IP address (0 = no limit)")
	f.DurationVar(&o.idleTimeout, "idle-timeout", 0, "disconnect users silent this long, e.g. 30m (default 0 = never)")
	f.DurationVar(&o.keepAlive, "keepalive", d.KeepAlive, "TCP keepalive period (0 disables)")
	f.Var(&o.msgRate, "msg-rate", "lines per second per user, e.g. 10/s or 600/m (0 = no limit)")
	f.IntVar(&o.msgBurst, "msg-burst", 20, "burst of lines allowed above --msg-rate")
	f.Var(&o.sendQueue, "send-queue", "bytes queued for a client that is not reading before it is disconnected (e.g. 1MiB, 64KiB)")
	f.DurationVar(&o.writeTimeout, "write-timeout", d.WriteTimeout, "disconnect a client whose socket takes no output for this long, even below --send-queue (0 = never)")
	f.DurationVar(&o.stallMax, "stall-max", d.StallMax, "pacing: how long one read of a sender may be held back while its lines fill another client's queue past 3/4 (0 = no pacing)")
	f.IntVar(&o.ipv6Prefix, "ipv6-prefix", d.IPv6PrefixLen, "with --max-conns-per-ip: count IPv6 clients per network of this prefix length (a host usually has a /64; 128 = per address)")
	f.IntVar(&o.maxLine, "max-line", d.MaxLine, "longest accepted input line in bytes")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 5*time.Second, "on SIGINT/SIGTERM, how long to let clients flush before closing")
	f.DurationVar(&o.nickTimeout, "nick-timeout", d.NickTimeout, "close connections that choose no nickname within this time (0 = never)")
	f.IntVar(&o.noticeBatchAbove, "notice-batch-above", 500, "above this many users, joins and leaves are summed into one notice per second (-1 = never)")
	f.IntVar(&o.history, "history", 20, "recent public messages shown to joining users (0 = none)")
	f.StringVar(&o.dataDir, "data-dir", "", "keep a transcript of public events in this directory (default: in memory only)")
	f.StringVar(&o.fsyncInterval, "fsync-interval", "1s", "with --data-dir: how often the transcript is fsynced, or \"always\"")
	f.Var(&o.transcriptMax, "transcript-max-size", "with --data-dir: rotate the transcript at this size (older files are kept)")
	f.StringVar(&o.node, "node", "", "this server's node name, recorded in the transcript (default: the host name; with --cluster, the host name and the listen port)")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.IntVar(&o.logLimit, "log-limit", logthrottle.DefaultLimit, "at most this many log lines per second with the same message, the rest counted in a summary line; errors always pass (0 = no limit)")
	f.StringVar(&o.metricsAddr, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics and /healthz (e.g. 127.0.0.1:9090)")
	f.StringVar(&o.pprofAddr, "pprof", "", "serve Go profiles (heap, goroutines, CPU, trace) at http://ADDR/debug/pprof/; they expose the server's internals: bind loopback (e.g. 127.0.0.1:6060)")
	f.BoolVar(&o.announce, "announce", false, "announce this server on the LAN (multicast beacons to 239.255.80.88:8089, TTL 1) for netchat discover and netchat join")
	f.DurationVar(&o.announceInterval, "announce-interval", 2*time.Second, "with --announce: time between beacons")
	f.StringVar(&o.announceIface, "announce-iface", "", "with --announce: interface NAME or ADDR to send beacons on (default: the system's choice)")
	f.StringVar(&o.tlsListen, "tls-listen", "", "also serve the chat over TLS 1.2+ on this address (e.g. :8443), into the same room")
	f.StringVar(&o.tlsCert, "tls-cert", "", "with --tls-listen or --http-tls: PEM certificate file (the chain, leaf first)")
	f.StringVar(&o.tlsKey, "tls-key", "", "with --tls-listen or --http-tls: PEM private key file")
	f.StringVar(&o.httpAddr, "http", "", "serve the chat page and its WebSocket (/ws), /healthz and, without --metrics, /metrics on this address (e.g. :8080)")
	f.BoolVar(&o.httpTLS, "http-tls", false, "with --http: serve https and wss with --tls-cert and --tls-key")
	f.StringSliceVar(&o.httpAllowOrigin, "http-allow-origin", nil, "with --http: also accept WebSockets from pages of these origins (https://chat.example.org, *.example.org; default: the page's own origin only)")
	f.StringSliceVar(&o.httpTrustedProxy, "http-trusted-proxy", nil, "with --http: take the client's address from X-Forwarded-For when the connection comes from these proxies (CIDR or address, e.g. 10.0.0.0/8,::1)")
	addClusterFlags(f, &o.cluster)
	return cmd
}

func defaultName() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "netchat"
}

// listening, if not nil, is told each address the server listens on; tests
// use it to find ports chosen by the kernel.
type listeningFunc func(kind string, addr net.Addr)

func runServe(ctx context.Context, o *serveOptions, stderr io.Writer, listening listeningFunc) error {
	logger, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return usageError{err}
	}
	if o.logLimit < 0 {
		return usagef("--log-limit must not be negative")
	}
	if o.logLimit > 0 {
		// A connection storm logs a line per connect, disconnect and
		// rejection; capped per message, it cannot fill the disk.
		throttle := logthrottle.New(logger.Handler(), logthrottle.Options{Limit: o.logLimit, Interval: time.Second})
		defer throttle.Flush()
		logger = slog.New(throttle)
	}
	addr, err := listenAddr(o.listen, o.port)
	if err != nil {
		return usageError{err}
	}
	if o.maxLine < 16 {
		return usagef("--max-line must be at least 16 bytes")
	}
	if o.history < 0 {
		return usagef("--history must not be negative")
	}
	if o.writeTimeout < 0 || o.stallMax < 0 {
		return usagef("--write-timeout and --stall-max must not be negative")
	}
	if o.ipv6Prefix != 0 && (o.ipv6Prefix < 16 || o.ipv6Prefix > 128) {
		return usagef("--ipv6-prefix must be between 16 and 128")
	}
	webOpts, err := checkWebFlags(o)
	if err != nil {
		return err
	}
	tlsCfg, tlsAddr, err := serveTLSConfig(o, logger)
	if err != nil {
		return err
	}
	nodeName := o.node
	if nodeName == "" {
		nodeName = defaultName()
		if o.cluster.urls != "" {
			// Two nodes on one host must not share a name.
			_, port, _ := net.SplitHostPort(addr)
			nodeName += ":" + port
		}
	}
	if err := o.cluster.check(); err != nil {
		return err
	}

	roomCfg := chat.Config{
		Name:             o.name,
		History:          o.history,
		NoticeBatchAbove: o.noticeBatchAbove,
		MsgRate:          float64(o.msgRate),
		MsgBurst:         o.msgBurst,
	}
	var seed []chat.Event
	var tr *history.Transcript
	if o.dataDir != "" {
		fsync, err := history.ParseFsyncInterval(o.fsyncInterval)
		if err != nil {
			return usagef("--fsync-interval: %v", err)
		}
		// Two servers on one directory would interleave and race on
		// rotation; the kernel drops the lock however this process ends.
		lock, err := dirlock.Acquire(o.dataDir)
		if err != nil {
			if errors.Is(err, dirlock.ErrHeld) {
				return err
			}
			return fmt.Errorf("data directory %s: %w", o.dataDir, err)
		}
		defer lock.Release()
		// Replayed history passes the hygiene of live input: the file is
		// not to be trusted more than a socket.
		tr, err = history.Open(history.Options{
			Dir:           o.dataDir,
			FsyncInterval: fsync,
			MaxSize:       int64(o.transcriptMax),
			Recent:        max(o.history, 1),
			Hygiene: &history.Hygiene{
				MaxLine:   o.maxLine,
				ValidNick: func(nick string) error { _, err := chat.FoldNick(nick); return err },
				Logger:    logger,
			},
			Logger: logger,
		})
		if err != nil {
			return fmt.Errorf("transcript: %w", err)
		}
		defer func() {
			if err := tr.Close(); err != nil {
				logger.Error("closing the transcript", "err", err)
			}
		}()
		roomCfg.Record = func(ev chat.Event) {
			node := ev.Node // the node it happened on, in a cluster
			if node == "" {
				node = nodeName
			}
			tr.Record(history.Event{Time: ev.Time, Kind: ev.Kind, Nick: ev.Nick, Text: ev.Text, Node: node})
		}
		// In a cluster the history comes from the cluster's log, not
		// from this node's transcript.
		if o.cluster.urls == "" {
			for _, ev := range tr.Recent(o.history) {
				seed = append(seed, chat.Event{Time: ev.Time, Kind: ev.Kind, Nick: ev.Nick, Text: ev.Text})
			}
		}
		logger.Info("transcript open", "dir", o.dataDir, "history_loaded", len(seed))
	}
	// The registry exists before the cluster node, which registers its
	// metrics in it. Without --metrics, the web listener serves /metrics.
	var reg *prometheus.Registry
	if o.metricsAddr != "" || webOpts.addr != "" {
		reg = prometheus.NewRegistry()
	}
	var room *chat.Room
	var node *clusterNode
	if o.cluster.urls != "" {
		node, err = startCluster(ctx, &o.cluster, nodeName, o.maxLine, roomCfg, reg, logger)
		if err != nil {
			return err
		}
		room = node.room
		defer node.close(logger, o.shutdownTimeout)
	} else {
		room = chat.NewRoom(roomCfg)
		room.Seed(seed)
	}
	cfg := server.Config{
		MaxConns:      o.maxConns,
		MaxConnsPerIP: o.maxConnsPerIP,
		IdleTimeout:   o.idleTimeout,
		KeepAlive:     o.keepAlive,
		NickTimeout:   o.nickTimeout,
		MaxLine:       o.maxLine,
		SendQueue:     int(o.sendQueue),
		WriteTimeout:  o.writeTimeout,
		StallMax:      o.stallMax,
		IPv6PrefixLen: o.ipv6Prefix,
		Logger:        logger,
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = -1
	}

	var webMetrics http.Handler
	if reg != nil {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Metrics = server.NewMetrics(reg, room.Online)
		if tr != nil {
			reg.MustRegister(
				prometheus.NewCounterFunc(prometheus.CounterOpts{
					Name: "netchat_transcript_dropped_total",
					Help: "Public events not written to the transcript because its queue was full (the disk fell behind).",
				}, func() float64 { return float64(tr.Dropped()) }),
				prometheus.NewCounterFunc(prometheus.CounterOpts{
					Name: "netchat_transcript_write_errors_total",
					Help: "Failed transcript writes, fsyncs or rotations.",
				}, func() float64 { return float64(tr.WriteErrors()) }))
		}
		if o.metricsAddr == "" {
			webMetrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
		}
	}
	if o.metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok\n")
		})
		stopMetrics, err := serveHTTP("metrics", o.metricsAddr, mux, metricsTimeouts, logger, listening)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if o.pprofAddr != "" {
		stopPprof, err := serveHTTP("pprof", o.pprofAddr, pprofMux(), pprofTimeouts, logger, listening)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	srv := server.New(room, cfg)
	ln, err := srv.Listen(ctx, addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, unwrapOp(err))
	}
	tln, err := listenTLS(ctx, srv, tlsCfg, tlsAddr)
	if err != nil {
		ln.Close()
		return err
	}
	webSrv, webLn, err := listenWeb(o, webOpts, tlsCfg, webMetrics, srv, logger)
	if err != nil {
		ln.Close()
		if tln != nil {
			tln.Close()
		}
		return err
	}

	if o.announce {
		acfg := discovery.AnnouncerConfig{
			Iface:    o.announceIface,
			Interval: o.announceInterval,
			Name:     o.name,
			Version:  version,
			Port:     ln.Addr().(*net.TCPAddr).Port,
			Online:   room.Online,
			Logger:   logger,
		}
		if tln != nil {
			acfg.TLSPort = tln.Addr().(*net.TCPAddr).Port
		}
		ann, err := discovery.NewAnnouncer(acfg)
		if err != nil {
			ln.Close()
			if tln != nil {
				tln.Close()
			}
			if webLn != nil {
				webLn.Close()
			}
			return fmt.Errorf("--announce: %w", err)
		}
		actx, stopAnnounce := context.WithCancel(ctx)
		defer stopAnnounce()
		go func() { _ = ann.Run(actx) }()
	}
	// Announced only now, once nothing can fail any more: the ports are
	// bound, but nothing is accepted before Serve, and a server that
	// refuses to start must not have said it is listening.
	logger.Info("chat server listening", "addr", ln.Addr().String(), "name", o.name)
	if listening != nil {
		listening("chat", ln.Addr())
	}
	if tln != nil {
		logger.Info("chat server listening (TLS)", "addr", tln.Addr().String())
		if listening != nil {
			listening("tls", tln.Addr())
		}
	}

	var webDone <-chan error
	if webSrv != nil {
		webDone = serveWeb(o, webSrv, webLn, logger, listening)
	}

	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	serving := 1
	if tln != nil {
		serving++
		go func() { errc <- srv.Serve(tln) }()
	}

	select {
	case err := <-errc:
		srv.Close()
		if webSrv != nil {
			webSrv.Close()
		}
		return err
	case err := <-webDone:
		srv.Close()
		return fmt.Errorf("web page: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", o.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if webSrv != nil {
		// First, so that no new WebSocket session starts while the chat
		// server ends the others.
		if err := webSrv.Shutdown(sctx); err != nil {
			webSrv.Close()
		}
		<-webDone
	}
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("shutdown timed out; closed remaining connections", "conns", srv.Conns())
	}
	for range serving {
		<-errc
	}
	return nil
}

// listenAddr combines --listen and --port.
func listenAddr(listen string, port int) (string, error) {
	if port < 0 || port > 65535 {
		return "", fmt.Errorf("--port %d is out of range", port)
	}
	if _, err := netip.ParseAddr(strings.Trim(listen, "[]")); err == nil || !strings.Contains(listen, ":") {
		// A bare host (nc's "-l host -p port" habit).
		listen = net.JoinHostPort(strings.Trim(listen, "[]"), "8088")
	}
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %v", listen, err)
	}
	if port != 0 {
		p = strconv.Itoa(port)
	}
	return net.JoinHostPort(host, p), nil
}

func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
