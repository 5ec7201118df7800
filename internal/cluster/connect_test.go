package cluster_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"netchat/internal/cluster"
	"netchat/internal/cluster/natstest"
	"netchat/internal/testcert"
)

// TestConnectOptions: the ways to reach a real deployment's NATS, a user
// and password in the URL and TLS with a private CA, work, and their wrong
// use fails with an error that does not show the password.
func TestConnectOptions(t *testing.T) {
	t.Parallel()
	auth := natstest.StartWith(t, func(o *server.Options) {
		o.Username, o.Password = "netchat", "s3cret"
	})
	cert := testcert.New(t)
	certFile, _ := cert.Files(t)
	secure := natstest.StartWith(t, func(o *server.Options) {
		o.TLSConfig = cert.ServerConfig(t)
		o.TLS = true
	})
	hostport := func(s *natstest.Server) string { return strings.TrimPrefix(s.URL(), "nats://") }
	for _, tc := range []struct {
		name string
		opt  cluster.Options
		ok   bool
	}{
		{"user and password", cluster.Options{URLs: "nats://netchat:s3cret@" + hostport(auth)}, true},
		{"wrong password", cluster.Options{URLs: "nats://netchat:wrong@" + hostport(auth)}, false},
		{"no password", cluster.Options{URLs: auth.URL()}, false},
		{"TLS with the CA", cluster.Options{URLs: secure.URL(), CA: certFile}, true},
		{"TLS, CA not trusted", cluster.Options{URLs: secure.URL(), TLS: true}, false},
		{"TLS server, plain client", cluster.Options{URLs: secure.URL()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Name = "connect-test"
			n, err := cluster.Connect(context.Background(), tc.opt)
			if tc.ok != (err == nil) {
				t.Fatalf("Connect: %v, want success %v", err, tc.ok)
			}
			if err != nil {
				if strings.Contains(err.Error(), "wrong") {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err := n.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConnectMaxLine: a node whose users may send lines longer than the
// NATS server takes in one message does not start (it would lose its link
// with each such line); the error says what to change. Lines that fit
// start it.
func TestConnectMaxLine(t *testing.T) {
	t.Parallel()
	ns := natstest.StartWith(t, func(o *server.Options) { o.MaxPayload = 8 << 10 })
	_, err := cluster.Connect(context.Background(), cluster.Options{URLs: ns.URL(), Name: "max-line", MaxLine: 8 << 10})
	if err == nil || !strings.Contains(err.Error(), "max_payload") || !strings.Contains(err.Error(), "--max-line 8192") {
		t.Fatalf("Connect with --max-line 8192 and max_payload 8192: %v, want an error about both", err)
	}
	n, err := cluster.Connect(context.Background(), cluster.Options{URLs: ns.URL(), Name: "max-line", MaxLine: 4 << 10})
	if err != nil {
		t.Fatalf("Connect with --max-line 4096 and max_payload 8192: %v", err)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
