package main

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/cobra"

	"netchat/internal/syncbuf"
)

// TestExitStatus drives the whole command line: mistakes in it exit 2,
// failures at run time exit 1, whatever words their messages contain.
func TestExitStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // substring; "" means stderr must be empty
	}{
		{"no command", nil, 0, ""},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate" for "netchat"`},
		{"unknown subcommand", []string{"udp", "frobnicate"}, 2, `unknown command "frobnicate" for "netchat udp"`},
		{"group alone prints help", []string{"udp"}, 0, ""},
		{"too few args", []string{"isip"}, 2, "accepts 1 arg(s), received 0"},
		{"too many args", []string{"isip", "a", "b"}, 2, "accepts 1 arg(s), received 2"},
		{"no args allowed", []string{"version", "x"}, 2, `unknown command "x"`},
		{"unknown flag", []string{"serve", "--bogus"}, 2, "unknown flag: --bogus"},
		{"malformed flag value", []string{"serve", "--max-conns", "x"}, 2, `invalid argument "x" for "--max-conns"`},
		{"our own usage check", []string{"join", "--ca", "x", "--insecure", "127.0.0.1:1"}, 2, "contradict"},
		// bind(2) of an IPv4 address on the IPv6 socket that [::1] needs
		// fails with EINVAL, "invalid argument": a runtime failure.
		// (--broadcast keeps the socket unconnected, so bind is what fails.)
		{"runtime EINVAL", []string{"udp", "send", "--broadcast", "--bind", "127.0.0.1", "[::1]:9", "x"}, 1, "bind: invalid argument"},
		{"isip answers no", []string{"isip", "nope"}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr syncbuf.Buffer
			root := newRootCmd()
			root.SetOut(&stdout)
			root.SetIn(strings.NewReader(""))
			code := execute(root, tt.args, &stderr)
			if code != tt.code {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if tt.stderr == "" && stderr.String() != "" {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tt.stderr)
			}
		})
	}
}

// TestRuntimeEINVALIsNotUsage: an error that merely reads like cobra's
// ("invalid argument") from a command's own work is not a usage error.
func TestRuntimeEINVALIsNotUsage(t *testing.T) {
	t.Parallel()
	root := newRootCmd()
	root.AddCommand(&cobra.Command{
		Use: "fail",
		RunE: func(*cobra.Command, []string) error {
			return os.NewSyscallError("setsockopt", syscall.EINVAL)
		},
	})
	typeUsageErrors(root)
	var stderr syncbuf.Buffer
	if code := execute(root, []string{"fail"}, &stderr); code != 1 {
		t.Errorf("exit status %d, want 1 (stderr %q)", code, stderr.String())
	}
	if want := "netchat: setsockopt: invalid argument\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}
