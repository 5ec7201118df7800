package client

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"netchat/internal/testcert"
)

// TestTLSAndPlainSameRoom: a TLS user, verified through --ca, and a plain
// TCP user chat in one room.
func TestTLSAndPlainSameRoom(t *testing.T) {
	t.Parallel()
	cert := testcert.New(t)
	caFile, _ := cert.Files(t)
	s := startServer(t)
	s.startTLS(t, cert.ServerConfig(t))
	alice := s.join(t, "alice")

	pr, pw := io.Pipe()
	out := newSyncBuffer()
	wait := runAsync(t, func() error {
		return Run(t.Context(), Config{Addr: s.tlsAddr, TLS: true, CAFile: caFile, Nick: "tlsbob", Timeout: waitTimeout}, pr, out)
	})
	out.waitContains(t, "* Welcome, tlsbob! 2 users online.")
	if _, err := pw.Write([]byte("hello over TLS\n")); err != nil {
		t.Fatal(err)
	}
	alice.waitFor("tlsbob: hello over TLS")
	alice.send("hello over TCP")
	out.waitContains(t, "alice: hello over TCP\n")
	pw.Close() // half-close through TLS: the server ends the session
	alice.waitFor("* tlsbob left")
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestTLSVerification(t *testing.T) {
	t.Parallel()
	cert := testcert.New(t)
	caFile, _ := cert.Files(t)
	otherCA, _ := testcert.New(t).Files(t)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t)
	s.startTLS(t, cert.ServerConfig(t))
	tlsPort := s.tlsAddr[strings.LastIndexByte(s.tlsAddr, ':'):]

	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" means success
	}{
		{"self-signed without --ca", Config{Addr: s.tlsAddr}, "is not signed by a trusted authority (for a self-signed certificate use --ca FILE, or --insecure"},
		{"wrong --ca", Config{Addr: s.tlsAddr, CAFile: otherCA}, "is not signed by a trusted authority"},
		{"--ca is not PEM", Config{Addr: s.tlsAddr, CAFile: notPEM}, "CA file " + notPEM + " contains no PEM certificate"},
		{"--ca missing", Config{Addr: s.tlsAddr, CAFile: notPEM + ".missing"}, "cannot read CA file: " + notPEM + ".missing: no such file or directory"},
		{"--insecure", Config{Addr: s.tlsAddr, Insecure: true}, ""},
		{"right --ca", Config{Addr: s.tlsAddr, CAFile: caFile}, ""},
		{"right --ca, by name", Config{Addr: "localhost" + tlsPort, CAFile: caFile}, ""},
		{"TLS to the plain port", Config{Addr: s.addr, Insecure: true}, "does not speak TLS (is this the plain-text port?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			cfg.TLS, cfg.Nick, cfg.Timeout = true, "", waitTimeout
			err := runAsync(t, func() error {
				return Run(t.Context(), cfg, strings.NewReader(""), io.Discard)
			})()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			case err != nil && strings.Count(err.Error(), "\n") > 0:
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

// TestTLSServerName checks that the server name is verified by default:
// a certificate trusted through --ca but made for another name is refused.
func TestTLSServerName(t *testing.T) {
	t.Parallel()
	cert := testcert.NewFor(t, "chat.example.org", "192.0.2.1")
	caFile, _ := cert.Files(t)
	s := startServer(t)
	s.startTLS(t, cert.ServerConfig(t))
	_, err := Dial(t.Context(), Config{Addr: s.tlsAddr, TLS: true, CAFile: caFile, Timeout: waitTimeout})
	if err == nil || !strings.Contains(err.Error(), "certificate is valid for 192.0.2.1, not 127.0.0.1") {
		t.Fatalf("err = %v", err)
	}
	cfg, err := TLSConfig("chat.example.org", caFile, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ServerName != "chat.example.org" || cfg.InsecureSkipVerify {
		t.Fatalf("config does not verify chat.example.org: %+v", cfg)
	}
}

// TestPlainClientOnTLSPort: joining a TLS port without --tls ends with the
// hint to use --tls, as an error (exit status 1 in the CLI), both when the
// TLS server closes without a word and when it answers with an alert, in
// pipe mode and on a terminal.
func TestPlainClientOnTLSPort(t *testing.T) {
	t.Parallel()
	cert := testcert.New(t)
	s := startServer(t)
	s.startTLS(t, cert.ServerConfig(t))

	for _, tc := range []struct {
		name  string
		stdin string
		nick  string
		want  string
	}{
		// Go's TLS server drops a first record that is not TLS at all,
		// without an alert: no greeting, then close.
		{"plain line, closed", "alice\n/who\n", "", "closed the connection without a greeting: this looks like a TLS port: try --tls"},
		// Bytes that parse as a broken ClientHello get a TLS alert back.
		{"alert", "\x16\x03\x01\x00\x05hello\n", "", "answered with a TLS record, not a greeting: this looks like a TLS port: try --tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := newSyncBuffer()
			err := Run(t.Context(), Config{Addr: s.tlsAddr, Nick: tc.nick, Timeout: waitTimeout}, strings.NewReader(tc.stdin), out)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), s.tlsAddr) {
				t.Errorf("Run: %v, want %q", err, tc.want)
			}
			if out.String() != "" {
				t.Errorf("output %q, want none", out.String())
			}
		})
	}

	t.Run("terminal", func(t *testing.T) {
		t.Parallel()
		p := startPTY(t, t.Context(), Config{Addr: s.tlsAddr})
		p.screen.waitContains(t, "-- connected to")
		p.typeKeys("alice\r")
		err := p.wait()
		if err == nil || !strings.Contains(err.Error(), "this looks like a TLS port: try --tls") {
			t.Errorf("Run: %v, want the TLS hint", err)
		}
		p.checkRestored()
	})

	// A real chat server that closes after its greeting is not a TLS port.
	t.Run("greeting then close", func(t *testing.T) {
		t.Parallel()
		addr := fakeServer(t, func(c net.Conn) { _, _ = c.Write([]byte("Welcome to a server that hangs up\r\n")) })
		out := newSyncBuffer()
		if err := Run(t.Context(), Config{Addr: addr, Timeout: waitTimeout}, strings.NewReader(""), out); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
