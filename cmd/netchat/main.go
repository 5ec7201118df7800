// Command netchat is a chat server and a kit of TCP/UDP network tools.
//
// This package only wires flags to the internal packages; behaviour lives
// there so that it can be tested without a process boundary.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

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
	typeUsageErrors(root)
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
	return execute(newRootCmd(), args, os.Stderr)
}

// execute runs root with args and returns the exit status: 0, 2 for a
// usageError (a wrong command line), 1 for anything else.
func execute(root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	if !errors.Is(err, errQuiet) {
		fmt.Fprintf(stderr, "netchat: %s\n", err)
	}
	if errors.As(err, new(usageError)) {
		return 2
	}
	return 1
}

// errQuiet is a failure whose explanation the command has already printed
// (isip's "not an IP address" on stdout): exit status 1, nothing on stderr.
var errQuiet = errors.New("failed")

// typeUsageErrors makes every command-line mistake cobra reports (unknown
// command, wrong number of arguments, unknown or malformed flag) a
// usageError, so the exit status follows from the error's type and never
// from its text: a runtime EINVAL reads "invalid argument" too.
func typeUsageErrors(root *cobra.Command) {
	// The help and completion commands are otherwise added only inside
	// Execute, after this walk.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() && !c.Runnable() {
			// A group ("netchat", "netchat udp") with an unknown
			// subcommand: cobra would print the help and exit 0 (or
			// report it with an untyped error at the top).
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
			c.Args = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return nil
				}
				msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					msg += fmt.Sprintf(" (did you mean %q?)", s[0])
				}
				return errors.New(msg)
			}
		}
		if check := c.Args; check != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return usageError{err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
