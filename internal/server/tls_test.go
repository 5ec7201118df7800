package server

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"netchat/internal/testcert"
)

func TestLoadTLSConfig(t *testing.T) {
	t.Parallel()
	good := testcert.New(t)
	certFile, keyFile := good.Files(t)
	otherCert, otherKey := testcert.New(t).Files(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	cfg, err := LoadTLSConfig(certFile, keyFile)
	if err != nil {
		t.Fatalf("valid pair: %v", err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	}
	if w := CertificateWarning(cfg, time.Now()); w != "" {
		t.Errorf("fresh certificate warns: %s", w)
	}

	for _, tc := range []struct {
		name, cert, key string
		want            []string // all must appear in the error
	}{
		{"missing cert", missing, keyFile, []string{"cannot read TLS certificate file", missing, "no such file"}},
		{"missing key", certFile, missing, []string{"cannot read TLS key file", missing, "no such file"}},
		{"mismatched", certFile, otherKey, []string{otherKey, "does not belong to the certificate", certFile}},
		{"mismatched other way", otherCert, keyFile, []string{"does not belong"}},
		{"garbage cert", garbage, keyFile, []string{garbage, "no PEM CERTIFICATE"}},
		{"garbage key", certFile, garbage, []string{garbage, "no PEM private key"}},
		{"swapped", keyFile, certFile, []string{keyFile, "no PEM CERTIFICATE"}},
		{"no cert given", "", keyFile, []string{"no TLS certificate file given"}},
		{"directory", dir, keyFile, []string{"cannot read TLS certificate file", dir}},
	} {
		_, err := LoadTLSConfig(tc.cert, tc.key)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
}

func TestLoadTLSConfigUnreadable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	certFile, keyFile := testcert.New(t).Files(t)
	if err := os.Chmod(keyFile, 0); err != nil {
		t.Fatal(err)
	}
	_, err := LoadTLSConfig(certFile, keyFile)
	if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("err = %v, want permission denied naming %s", err, keyFile)
	}
}

func TestCertificateWarning(t *testing.T) {
	t.Parallel()
	now := time.Now()
	expired := testcert.NewValid(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	c, k := expired.Files(t)
	cfg, err := LoadTLSConfig(c, k)
	if err != nil {
		t.Fatal(err)
	}
	if w := CertificateWarning(cfg, now); !strings.Contains(w, "expired") {
		t.Errorf("expired certificate: warning %q", w)
	}
	future := testcert.NewValid(t, now.Add(24*time.Hour), now.Add(48*time.Hour))
	c, k = future.Files(t)
	if cfg, err = LoadTLSConfig(c, k); err != nil {
		t.Fatal(err)
	}
	if w := CertificateWarning(cfg, now); !strings.Contains(w, "not valid before") {
		t.Errorf("future certificate: warning %q", w)
	}
}

// TestTLSListenerSameRoom serves one room on a plain and a TLS listener and
// checks that users on both talk to each other.
func TestTLSListenerSameRoom(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	certFile, keyFile := testcert.New(t).Files(t)
	cfg, err := LoadTLSConfig(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(tls.NewListener(ln, cfg)) }()

	plain := s.join(t, "alice")
	nc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if v := nc.ConnectionState().Version; v != tls.VersionTLS12 {
		t.Errorf("negotiated %x with a TLS 1.2 client", v)
	}
	if _, err := nc.Write([]byte("bob\nhello from tls\n")); err != nil {
		t.Fatal(err)
	}
	plain.expectEventually("bob: hello from tls")
}

func TestTLSRejectsOldVersions(t *testing.T) {
	t.Parallel()
	certFile, keyFile := testcert.New(t).Files(t)
	cfg, err := LoadTLSConfig(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	_, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}
