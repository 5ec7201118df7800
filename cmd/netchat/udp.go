package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"netchat/internal/udp"
)

func newUDPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "udp",
		Short: "UDP tools: an RFC 862 echo server, a sender and a listener",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newUDPEchoCmd(), newUDPSendCmd(), newUDPListenCmd())
	return cmd
}

// udpListenAddr combines --listen and --port; a bare host gets def.
func udpListenAddr(listen string, port, def int) (string, error) {
	if port < 0 || port > 65535 {
		return "", usagef("--port %d is out of range", port)
	}
	if _, err := netip.ParseAddr(strings.Trim(listen, "[]")); err == nil || !strings.Contains(listen, ":") {
		listen = net.JoinHostPort(strings.Trim(listen, "[]"), strconv.Itoa(def))
	}
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", usagef("--listen %q: %v", listen, err)
	}
	if port != 0 {
		p = strconv.Itoa(port)
	}
	return net.JoinHostPort(host, p), nil
}

func newUDPEchoCmd() *cobra.Command {
	var (
		listen    string
		port      int
		allowLow  bool
		rate      rateValue = 1000
		batchSize int
	)
	cmd := &cobra.Command{
		Use:   "echo",
		Short: "Run an RFC 862 echo server (default :41234, IPv4 and IPv6)",
		Long: `Run an RFC 862 echo server: every datagram is sent back, byte for byte,
to where it came from.

It is safe to expose: datagrams from source ports below 1024 are ignored
(a spoofed datagram "from" another echo or chargen service would otherwise
start an endless loop between the two), and replies to each source address
are rate limited (--rate). Stop it with Ctrl-C (SIGINT) or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := udpListenAddr(listen, port, udp.DefaultEchoPort)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			s, err := udp.ListenEcho(ctx, udp.EchoConfig{
				Addr:          addr,
				AllowLowPorts: allowLow,
				Rate:          float64(rate),
				BatchSize:     batchSize,
				Logger:        log,
			})
			if err != nil {
				return err
			}
			err = s.Serve(ctx)
			st := s.Stats()
			log.Info("udp echo stopped", "received", st.Received, "echoed", st.Echoed,
				"dropped_low_port", st.LowPort, "dropped_rate", st.RateLimited, "write_errors", st.WriteErrors)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&listen, "listen", "l", ":41234", "UDP address to listen on (empty host = IPv4 and IPv6)")
	f.IntVarP(&port, "port", "p", 0, "port to listen on (overrides the port of --listen)")
	f.BoolVar(&allowLow, "allow-low-ports", false, "also answer datagrams from source ports below 1024")
	f.Var(&rate, "rate", "replies per second to one source address, e.g. 1000/s (0 = no limit)")
	f.IntVar(&batchSize, "batch", 64, "datagrams read or written per system call")
	return cmd
}

func newUDPSendCmd() *cobra.Command {
	cfg := udp.SendConfig{}
	cmd := &cobra.Command{
		Use:   "send ADDR [MSG...]",
		Short: "Send datagrams (MSG arguments or stdin lines) and print the replies",
		Long: `Send one datagram per MSG, or per line of standard input when there is no
MSG, to ADDR (HOST:PORT; the port defaults to 41234, the echo server's).
Replies that arrive within --wait are printed with the sender's address
information, like Node's rinfo:

    from 127.0.0.1:41234 (IPv4, 5 bytes): hello

Sending to a broadcast address (255.255.255.255, 192.168.1.255...) needs
--broadcast (SO_BROADCAST); without it the kernel refuses.

For a unicast ADDR the socket is connected to it (as with nc -u): only its
replies are shown, and a closed port (ICMP port unreachable) is an error,
"connection refused", exit status 1. When no reply arrives within --wait,
"no reply within 1s" goes to stderr and the exit status is 0.`,
		Example: `  netchat udp send 127.0.0.1:41234 hello
  printf 'one\ntwo\n' | netchat udp send localhost
  netchat udp send --broadcast 192.168.1.255:41234 anyone?
  netchat udp send --hex 127.0.0.1 'de ad be ef'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.Count < 1 {
				return usagef("--count must be at least 1")
			}
			if cfg.Interval < 0 || cfg.Wait < 0 {
				return usagef("--interval and --wait must not be negative")
			}
			if cfg.TTL < 0 || cfg.TTL > 255 {
				return usagef("--ttl %d is out of range (1-255)", cfg.TTL)
			}
			if _, p, err := net.SplitHostPort(args[0]); err == nil {
				if n, err := strconv.Atoi(p); err == nil && (n < 1 || n > 65535) {
					return usagef("port %d in %q is out of range (1-65535)", n, args[0])
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg.Addr = args[0]
			cfg.Messages = args[1:]
			cfg.Stdin = cmd.InOrStdin()
			cfg.Out = cmd.OutOrStdout()
			res, err := udp.Send(ctx, cfg)
			if ctx.Err() != nil && cmd.Context().Err() == nil {
				return nil // interrupted by a signal: a normal way to stop
			}
			if err == nil && res.Sent > 0 && res.Replies == 0 && cfg.Wait > 0 {
				// Not an error (a udp listen never answers), but silence
				// should not look like a hang: said on stderr, so stdout
				// keeps only reply lines.
				fmt.Fprintf(cmd.ErrOrStderr(), "no reply within %s\n", cfg.Wait)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Count, "count", 1, "send each datagram this many times")
	f.DurationVar(&cfg.Interval, "interval", 0, "pause between datagrams")
	f.IntVar(&cfg.TTL, "ttl", 0, "IP TTL / hop limit, 1-255 (default: the system's)")
	f.BoolVar(&cfg.Broadcast, "broadcast", false, "allow sending to a broadcast address (SO_BROADCAST)")
	f.StringVar(&cfg.Bind, "bind", "", "local address to send from (IP, IP:PORT or :PORT)")
	f.DurationVar(&cfg.Wait, "wait", time.Second, "how long to wait for replies after the last datagram")
	f.BoolVar(&cfg.Hex, "hex", false, "messages are hex (spaces allowed); replies are printed in hex")
	return cmd
}

func newUDPListenCmd() *cobra.Command {
	var (
		listen string
		port   int
		asHex  bool
		count  int
	)
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Print every datagram received, with the sender's address (default :41235)",
		Long: `Print every datagram received as one line with the sender's address
information:

    from 127.0.0.1:53211 (IPv4, 5 bytes): hello

Control characters in the payload are shown escaped (\n, \x1b...), so a
sender cannot garble the terminal; --hex prints the bytes in hex. Listening
on all addresses (the default) also receives broadcasts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := udpListenAddr(listen, port, udp.DefaultListenPort)
			if err != nil {
				return err
			}
			if count < 0 {
				return usagef("--count must not be negative")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			l, err := udp.NewListener(ctx, addr)
			if err != nil {
				return err
			}
			for _, a := range l.Addrs() {
				fmt.Fprintf(cmd.ErrOrStderr(), "listening on %s\n", a)
			}
			return l.Print(ctx, cmd.OutOrStdout(), asHex, count)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&listen, "listen", "l", ":41235", "UDP address to listen on (empty host = IPv4 and IPv6)")
	f.IntVarP(&port, "port", "p", 0, "port to listen on (overrides the port of --listen)")
	f.BoolVar(&asHex, "hex", false, "print payloads in hex")
	f.IntVar(&count, "count", 0, "exit after this many datagrams (0 = run until interrupted)")
	return cmd
}
