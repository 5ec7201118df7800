package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"netchat/internal/mcast"
)

func newMcastCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mcast",
		Short: "Send to and listen on IP multicast groups",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newMcastSendCmd(), newMcastListenCmd())
	return cmd
}

// mcastTimeFormat is the default message: the sender's local time, as in
// the tutorial's multicast example.
const mcastTimeFormat = "2006-01-02 15:04:05 MST"

func newMcastSendCmd() *cobra.Command {
	var (
		cfg      = mcast.SenderConfig{TTL: 1, Loopback: true}
		interval time.Duration
		count    int
		message  string
	)
	cmd := &cobra.Command{
		Use:   "send GROUP:PORT",
		Short: "Send to a multicast group (default: the current time every second)",
		Long: `Send a datagram to a multicast group every --interval: --message, or the
current local time when no message is given.

IPv4 groups are 224.0.0.0/4 (use 239.0.0.0/8 inside an organisation);
IPv6 groups are ff00::/8, written [ff02::1234%eth0]:PORT, and link-local
ones need an interface (the zone or --iface). The default TTL of 1 keeps
datagrams on the local network.`,
		Example: `  netchat mcast send 239.1.2.3:5000
  netchat mcast send --iface eth0 --ttl 4 --message hello --count 3 239.1.2.3:5000
  netchat mcast send '[ff02::1234%eth0]:5000'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 || interval < 0 {
				return usagef("--count and --interval must not be negative")
			}
			if cfg.TTL < 1 || cfg.TTL > 255 {
				return usagef("--ttl must be 1-255")
			}
			if _, err := mcast.ParseGroup(args[0]); err != nil {
				return usageError{err}
			}
			cfg.Group = args[0]
			s, err := mcast.NewSender(cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			_, err = s.SendEvery(ctx, interval, count, func() []byte {
				if message != "" {
					return []byte(message)
				}
				return []byte(time.Now().Format(mcastTimeFormat))
			}, func(p []byte) {
				fmt.Fprintf(out, "sent to %s: %s\n", s.Group(), p)
			})
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.TTL, "ttl", 1, "multicast TTL / hop limit (1 = local network only)")
	f.BoolVar(&cfg.Loopback, "loopback", true, "deliver to listeners on this host too (IP_MULTICAST_LOOP)")
	f.StringVar(&cfg.Iface, "iface", "", "outgoing interface, by NAME or ADDR (default: the routing table's choice)")
	f.DurationVar(&interval, "interval", time.Second, "time between datagrams")
	f.IntVar(&count, "count", 0, "stop after this many datagrams (0 = until interrupted)")
	f.StringVar(&message, "message", "", "text to send (default: the current local time)")
	return cmd
}

func newMcastListenCmd() *cobra.Command {
	var (
		cfg   mcast.ListenerConfig
		count int
		asHex bool
	)
	cmd := &cobra.Command{
		Use:   "listen GROUP:PORT",
		Short: "Join a multicast group and print what arrives",
		Long: `Join a multicast group (addMembership) and print every datagram with the
sender's address information; leave the group (dropMembership) on exit.
--source joins for one sender only (source-specific multicast, RFC 4607;
IPv4 232.0.0.0/8 and IPv6 ff3x:: are the SSM ranges).`,
		Example: `  netchat mcast listen 239.1.2.3:5000
  netchat mcast listen --iface eth0 --source 192.0.2.10 232.1.2.3:5000
  netchat mcast listen '[ff02::1234%eth0]:5000'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 {
				return usagef("--count must not be negative")
			}
			if _, err := mcast.ParseGroup(args[0]); err != nil {
				return usageError{err}
			}
			cfg.Group = args[0]
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			l, err := mcast.Listen(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "joined %s\n", l.Group())
			err = l.Print(ctx, cmd.OutOrStdout(), asHex, count)
			if ctx.Err() != nil && cmd.Context().Err() == nil {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Iface, "iface", "", "interface to join on, by NAME or ADDR (default: the routing table's choice)")
	f.StringVar(&cfg.Source, "source", "", "only receive from this source address (source-specific join)")
	f.IntVar(&count, "count", 0, "exit after this many datagrams (0 = until interrupted)")
	f.BoolVar(&asHex, "hex", false, "print payloads in hex")
	return cmd
}
