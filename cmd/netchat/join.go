package main

import (
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"netchat/internal/client"
	"netchat/internal/discovery"
)

// joinOptions are the flags of `netchat join`.
type joinOptions struct {
	cfg      client.Config
	port     int
	discover discovery.BrowseConfig
}

func newJoinCmd() *cobra.Command {
	o := &joinOptions{}
	cmd := &cobra.Command{
		Use:   "join [HOST[:PORT]]",
		Short: "Join a chat server (default port 8088, 8443 with --tls)",
		Long: `Join a chat server. On a terminal you get a prompt line; lines from the
server appear above it without disturbing what you are typing. Ctrl-D on an
empty line ends your input (the server finishes and closes), Ctrl-C quits.

When stdin is not a terminal every stdin line is sent; at its end the client
half-closes and prints what the server still sends until it closes.

Without an address, servers announcing themselves on the LAN (serve
--announce) are looked for; one is joined directly, among several you are
asked which one.

Control characters and escape sequences from the server are shown in a
visible, harmless form (^[ for ESC) and never reach your terminal.`,
		Example: `  netchat join localhost
  printf 'hi all\n' | netchat join --nick bot localhost
  netchat join --tls --ca cert.pem localhost:8443`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.finish(args); err != nil {
				return err
			}
			if o.cfg.Addr == "" {
				addr, err := client.Discover(cmd.Context(), o.discover, o.cfg.TLS, cmd.InOrStdin(), cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				o.cfg.Addr = addr
			}
			return client.Run(cmd.Context(), o.cfg, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cfg.Nick, "nick", "", "answer the nickname prompt with NAME")
	f.IntVarP(&o.port, "port", "p", 0, "port to connect to (overrides the port of the address)")
	f.BoolVar(&o.cfg.TLS, "tls", false, "connect with TLS (implied by --ca and --insecure)")
	f.StringVar(&o.cfg.CAFile, "ca", "", "trust the PEM certificate(s) in FILE instead of the system roots")
	f.BoolVar(&o.cfg.Insecure, "insecure", false, "do not verify the server's TLS certificate (testing only)")
	f.DurationVar(&o.cfg.Timeout, "timeout", 10*time.Second, "give up connecting (TCP and TLS handshake) after this long (0 = never)")
	f.DurationVar(&o.cfg.KeepAlive, "keepalive", 60*time.Second, "TCP keepalive period (0 disables)")
	f.StringVar(&o.discover.Iface, "iface", "", "without an address: interface to discover servers on, by NAME or ADDR")
	f.DurationVar(&o.discover.Timeout, "discover-timeout", 3*time.Second, "without an address: how long to listen for servers")
	f.StringVar(&o.discover.Group, "discover-group", discovery.DefaultGroup, "discovery multicast group")
	_ = f.MarkHidden("discover-group") // for tests, like discover --group
	return cmd
}

// finish validates the flags and works out the address to dial, if given.
func (o *joinOptions) finish(args []string) error {
	c := &o.cfg
	if c.Insecure && c.CAFile != "" {
		return usagef("--ca and --insecure contradict each other: --ca verifies the certificate, --insecure does not")
	}
	c.TLS = c.TLS || c.Insecure || c.CAFile != ""
	if c.Timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	if o.discover.Timeout <= 0 {
		return usagef("--discover-timeout must be positive")
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = -1
	}
	if o.port < 0 || o.port > 65535 {
		return usagef("--port %d is out of range", o.port)
	}
	if strings.IndexFunc(c.Nick, unicode.IsControl) >= 0 || (c.Nick != "" && strings.TrimSpace(c.Nick) == "") {
		// A newline would make the rest a second line: a command.
		return usagef("--nick %q contains control characters or only spaces", c.Nick)
	}
	if len(args) == 0 {
		if o.port != 0 {
			return usagef("--port needs an address (without one, servers are discovered on the LAN)")
		}
		return nil
	}
	defPort := client.DefaultPort
	if c.TLS {
		defPort = client.DefaultTLSPort
	}
	addr, err := client.ParseAddr(args[0], defPort)
	if err != nil {
		return usageError{err}
	}
	if o.port != 0 {
		host, _, _ := net.SplitHostPort(addr)
		addr = net.JoinHostPort(host, strconv.Itoa(o.port))
	}
	c.Addr = addr
	return nil
}
