package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"netchat/internal/loadgen"
)

func newBenchCmd() *cobra.Command {
	cfg := loadgen.DefaultConfig()
	var (
		rate                     rateValue
		useTLS, insecure, asJSON bool
		useWS                    bool
		wsPath                   = "/ws"
		progress                 = true
		cpuProfile               string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a chat server: fan-out throughput, latency, connects",
		Long: `Connect --clients clients to a chat server, let the first --senders of
them send time-stamped lines and measure what every other client receives:
deliveries per second, end-to-end latency percentiles, lost, duplicated,
reordered and echoed lines, and the connect rate.

Each client waits for the greeting, sends the nickname <prefix><i> and
waits for its "* Welcome" line; then probes make sure every client receives
broadcasts before the clock starts. Senders send for --warmup (not counted)
plus --duration, then the run waits up to --drain for lines in flight.

With --rate 0 (closed loop) each sender keeps at most --window lines that
the last client has not received yet: that finds the saturation throughput,
and latency is then just window / throughput. With --rate R (open loop)
each sender sends R lines/s whatever the server does: compare latency at a
rate every server sustains.

Against netchat, lift the limits that protect it from exactly this load:
serve with --max-conns-per-ip 0 (or use --source-ips) and --msg-rate 0 for
rates above 10 lines/s. The generator shares the CPU with a local server;
the summary shows how much it used. With --server-pid it also shows the
server's CPU use and deliveries per server CPU second, the figure that
depends least on how much CPU the generator took. If nothing could be
measured (no line sent or delivered in the window), the bench says which
server limit stopped it and exits with status 1.

WebSocket: --addr ws://HOST:PORT/PATH (or --ws with --addr HOST:PORT and
--ws-path) measures the same over WebSocket, one text frame per line in
each direction, as netchat's /ws (serve --http) speaks it.

For big rooms (thousands of clients from one process) give --source-ips N
so that the connections use source addresses 127.0.0.2.. and repeated runs
do not run out of ephemeral ports; the open-files limit (ulimit -n) must
exceed --clients.`,
		Example: "  netchat bench --clients 50 --senders 10\n" +
			"  netchat bench --addr 127.0.0.1:9150 --clients 500 --rate 10 --duration 5s\n" +
			"  netchat bench --addr 127.0.0.1:9150 --clients 19000 --rate 1 --source-ips 4\n" +
			"  netchat bench --addr ws://127.0.0.1:8080/ws --clients 500 --rate 10\n" +
			"  netchat bench --addr chat.example:8443 --tls --json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Rate = float64(rate)
			if !cmd.Flags().Changed("senders") {
				// A small room should not need --senders as well.
				cfg.Senders = min(cfg.Senders, cfg.Clients)
			}
			if insecure && !useTLS {
				return usagef("--insecure only applies with --tls")
			}
			if strings.Contains(cfg.Addr, "://") {
				u, err := url.Parse(cfg.Addr)
				if err != nil || u.Scheme != "ws" || u.Host == "" || u.User != nil || u.Fragment != "" {
					return usagef("--addr %q: want HOST:PORT or ws://HOST:PORT/PATH (wss is not supported)", cfg.Addr)
				}
				port := u.Port()
				if port == "" {
					port = "80"
				}
				cfg.Addr, cfg.WSHost, cfg.WSPath = net.JoinHostPort(u.Hostname(), port), u.Host, u.RequestURI()
				if cmd.Flags().Changed("ws-path") {
					return usagef("--ws-path conflicts with the path in --addr %s", u)
				}
			} else if useWS {
				cfg.WSPath = wsPath
			}
			if useTLS {
				host, _, _ := net.SplitHostPort(cfg.Addr)
				cfg.TLS = &tls.Config{ServerName: host, InsecureSkipVerify: insecure}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var progressOut = cmd.ErrOrStderr()
			if !progress {
				progressOut = nil
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			res, err := loadgen.Run(ctx, cfg, progressOut)
			if err != nil && !errors.Is(err, loadgen.ErrNothingMeasured) {
				return err
			}
			// A run that measured nothing still shows what happened, then
			// fails.
			var werr error
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				werr = enc.Encode(res)
			} else {
				werr = res.WriteSummary(cmd.OutOrStdout())
			}
			return errors.Join(err, werr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", cfg.Addr, "chat server address HOST:PORT, or ws://HOST:PORT/PATH for WebSocket")
	f.IntVar(&cfg.Clients, "clients", cfg.Clients, "connected clients; all of them receive")
	f.IntVar(&cfg.Senders, "senders", cfg.Senders, "how many of the clients (the first ones) send")
	f.Var(&rate, "rate", "lines per second per sender, e.g. 10 or 600/m; 0 = closed loop, as fast as --window allows")
	f.IntVar(&cfg.Window, "window", cfg.Window, "closed loop: max lines per sender not yet received by the last client")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured sending time")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "sending time before the measurement, not counted")
	f.DurationVar(&cfg.Drain, "drain", cfg.Drain, "max wait after sending for lines still in flight")
	f.IntVar(&cfg.Payload, "payload", cfg.Payload, "bytes per sent line including the newline (never less than the BENCH token)")
	f.StringVar(&cfg.NickPrefix, "nick-prefix", cfg.NickPrefix, "client i's nickname is <prefix><i>; empty: no nickname step, for servers without nicknames")
	f.IntVar(&cfg.DialConcurrency, "dial-concurrency", cfg.DialConcurrency, "connects (each waiting for greeting and welcome) in flight at once")
	f.IntVar(&cfg.SourceIPs, "source-ips", 0, "spread connections over source addresses 127.0.0.2..127.0.0.(N+1); loopback servers only")
	f.IntVar(&cfg.ServerPID, "server-pid", 0, "local server process to report CPU use for (Linux): deliveries per server CPU second")
	f.BoolVar(&useTLS, "tls", false, "connect with TLS")
	f.BoolVar(&useWS, "ws", false, "speak WebSocket (one text frame per line) to --addr HOST:PORT at --ws-path; implied by --addr ws://...")
	f.StringVar(&wsPath, "ws-path", wsPath, "with --ws: the WebSocket resource path")
	f.BoolVar(&insecure, "insecure", false, "with --tls: do not verify the server's certificate (self-signed test servers)")
	f.BoolVar(&asJSON, "json", false, "print the result as one flat JSON object")
	f.BoolVar(&progress, "progress", progress, "print progress lines (one per second while sending) on stderr")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the bench itself to FILE (go tool pprof)")
	return cmd
}
