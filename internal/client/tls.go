package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// TLSConfig is the client side of SPEC §2.6. The server's certificate is
// verified against host unless insecure; caFile, when set, replaces the
// system roots, which is how a self-signed or private-CA server is trusted
// without giving up verification.
func TLSConfig(host, caFile string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName(host),
		InsecureSkipVerify: insecure,
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read CA file: %v", unwrapPath(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s contains no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// serverName is the name to verify: the host as the user typed it, without
// an IPv6 zone, which no certificate can name.
func serverName(host string) string {
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	if host == "" {
		return "localhost"
	}
	return host
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}

// handshakeError turns a failed TLS handshake into one sentence that says
// what to do about it.
func handshakeError(addr string, timeout time.Duration, err error) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		recErr    tls.RecordHeaderError
		alert     tls.AlertError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return errInterrupted
	case errors.As(err, &unknownCA):
		return fmt.Errorf("TLS handshake with %s failed: the server's certificate is not signed by a trusted authority (for a self-signed certificate use --ca FILE, or --insecure to skip verification)", addr)
	case errors.As(err, &hostErr):
		return fmt.Errorf("TLS handshake with %s failed: %s", addr, strings.TrimPrefix(hostErr.Error(), "x509: "))
	case errors.As(err, &invalid):
		return fmt.Errorf("TLS handshake with %s failed: the server's %s", addr, strings.TrimPrefix(invalid.Error(), "x509: "))
	case errors.As(err, &recErr):
		return fmt.Errorf("TLS handshake with %s failed: the server does not speak TLS (is this the plain-text port?)", addr)
	case errors.As(err, &alert):
		return fmt.Errorf("TLS handshake with %s failed: the server refused it (%v)", addr, err)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("TLS handshake with %s failed: the server closed the connection", addr)
	case isTimeout(err):
		return fmt.Errorf("TLS handshake with %s failed: no answer within %s", addr, timeout)
	}
	return fmt.Errorf("TLS handshake with %s failed: %v", addr, strings.TrimPrefix(unwrapOp(err).Error(), "tls: "))
}
