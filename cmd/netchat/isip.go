package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"netchat/internal/ipclass"
)

func newIsIPCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "isip STRING",
		Short: "Classify a string: IPv4, IPv6 or not an IP address, and multicast scope",
		Long: `Print IPv4, IPv6 or "not an IP address" (exit status 1), like Node's
net.isIP. For a multicast address a second line gives its scope:

    224.0.0.0–224.0.0.255      local, reserved for routing protocols
    224.0.1.0–238.255.255.255  globally scoped
    239.0.0.0–239.255.255.255  administratively scoped (organisation-local)

IPv6 multicast addresses get the scope of their scope field.`,
		Example: "  netchat isip 239.255.80.88\n  netchat isip fe80::1%eth0",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := ipclass.Classify(args[0])
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, r.Family)
			if r.Family == ipclass.NotIP {
				// The answer is on stdout already; like a predicate
				// (test, grep -q) the status says the rest.
				return errQuiet
			}
			if r.Scope != "" {
				fmt.Fprintln(out, r.Scope)
			}
			return nil
		},
	}
}
