package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// LoadTLSConfig reads a PEM certificate chain and its private key and
// returns a TLS 1.2+ server configuration for them (SPEC §2.6).
//
// It exists so that every way the pair can be wrong is reported at start-up
// in one sentence that names the file, instead of surfacing later as
// handshake failures that only clients see.
func LoadTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	certPEM, err := readPEMFile("certificate", certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readPEMFile("key", keyFile)
	if err != nil {
		return nil, err
	}
	if !hasPEMBlock(certPEM, func(t string) bool { return t == "CERTIFICATE" }) {
		return nil, fmt.Errorf("TLS certificate file %s contains no PEM CERTIFICATE block", certFile)
	}
	if !hasPEMBlock(keyPEM, isKeyBlock) {
		return nil, fmt.Errorf("TLS key file %s contains no PEM private key", keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if isMismatch(err) {
			return nil, fmt.Errorf("TLS key %s does not belong to the certificate in %s", keyFile, certFile)
		}
		return nil, fmt.Errorf("TLS certificate %s with key %s: %v", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate file %s: %v", certFile, err)
		}
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}, nil
}

// CertificateWarning describes a problem with the loaded certificate that
// does not stop the server but will make verifying clients refuse it
// (expired, not yet valid), or "" if there is none.
func CertificateWarning(cfg *tls.Config, now time.Time) string {
	if cfg == nil || len(cfg.Certificates) == 0 || cfg.Certificates[0].Leaf == nil {
		return ""
	}
	leaf := cfg.Certificates[0].Leaf
	switch {
	case now.After(leaf.NotAfter):
		return "TLS certificate expired on " + leaf.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(leaf.NotBefore):
		return "TLS certificate is not valid before " + leaf.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

func readPEMFile(what, name string) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("no TLS %s file given", what)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read TLS %s file %s: %v", what, name, err)
	}
	return b, nil
}

func hasPEMBlock(data []byte, match func(string) bool) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if match(b.Type) {
			return true
		}
	}
}

func isKeyBlock(t string) bool {
	return t == "PRIVATE KEY" || t == "RSA PRIVATE KEY" || t == "EC PRIVATE KEY"
}

// isMismatch recognises crypto/tls's "private key does not match public
// key" error, which has no type of its own.
func isMismatch(err error) bool {
	return err != nil && (err.Error() == "tls: private key does not match public key" ||
		err.Error() == "tls: private key type does not match public key type")
}
