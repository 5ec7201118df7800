package main

import (
	"strings"
	"testing"

	"netchat/internal/syncbuf"
	"netchat/internal/testcert"
)

// TestJoinPlainOnTLSPort: `netchat join` without --tls on serve's TLS port
// says to try --tls on stderr and exits 1, with nothing on stdout.
func TestJoinPlainOnTLSPort(t *testing.T) {
	t.Parallel()
	certFile, keyFile := testcert.New(t).Files(t)
	o := testServeOptions()
	o.tlsListen, o.tlsCert, o.tlsKey = "127.0.0.1:0", certFile, keyFile
	addrs := startServe(t, o)

	var stdout, stderr syncbuf.Buffer
	root := newRootCmd()
	root.SetOut(&stdout)
	root.SetIn(strings.NewReader("alice\n"))
	code := execute(root, []string{"join", "--timeout", "10s", addrs["tls"]}, &stderr)
	if code != 1 || stdout.String() != "" || !strings.HasSuffix(stderr.String(), "this looks like a TLS port: try --tls\n") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, the --tls hint", code, stdout.String(), stderr.String())
	}
}
