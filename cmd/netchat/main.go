// Command netchat is a chat server and a kit of TCP/UDP network tools.
//
// This package only wires flags to the internal packages; behaviour lives
// there so that it can be tested without a process boundary.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is overwritten at link time (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

// usageError marks errors caused by how the command was invoked; they exit
// with status 2 as SPEC §1 asks, everything else with 1.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "netchat",
		Short:         "A chat server and a kit of TCP/UDP network tools",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newServeCmd(),
		newJoinCmd(),
		newDiscoverCmd(),
		newUDPCmd(),
		newMcastCmd(),
		newIsIPCmd(),
		newBenchCmd(),
		newVersionCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the netchat version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "netchat %s\n", version)
			return err
		},
	}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the CLI and maps errors to exit codes; it is separate from
// main so tests can drive the whole command line in-process.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "netchat: %s\n", err)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		return 2
	}
	return 1
}

// isCobraUsageError recognises the errors cobra itself returns for a bad
// command line (unknown command, wrong number of arguments), which carry no
// type of their own.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "unknown flag", "unknown shorthand", "flag needs an argument", "invalid argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
