package main

import (
	"context"
	"testing"
)

func TestIsIPCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arg, want string
		fail      bool
	}{
		{"127.0.0.1", "IPv4\n", false},
		{"::1", "IPv6\n", false},
		{"224.0.0.5", "IPv4\nmulticast, local (224.0.0.0–224.0.0.255, reserved for routing protocols)\n", false},
		{"230.1.2.3", "IPv4\nmulticast, globally scoped (224.0.1.0–238.255.255.255)\n", false},
		{"239.255.80.88", "IPv4\nmulticast, administratively scoped (239.0.0.0–239.255.255.255, organisation-local)\n", false},
		{"ff02::1", "IPv6\nmulticast, link-local scope\n", false},
		{"hello", "not an IP address\n", true},
	}
	for _, tt := range tests {
		out, stderr, err := execSub(context.Background(), newIsIPCmd(), "", tt.arg)
		if out != tt.want || (err != nil) != tt.fail || stderr != "" {
			t.Errorf("isip %s: %q, %q, %v; want %q, no stderr, fail=%v", tt.arg, out, stderr, err, tt.want, tt.fail)
		}
	}
}
