// Package client is netchat's chat client (`netchat join`): it connects over
// TCP or TLS and runs either an interactive line editor on a terminal or a
// line-by-line pipe for scripts.
//
// Everything a server sends is neutralised (see Neutralize) before it is
// printed, so a hostile server cannot drive the user's terminal.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"
)

// DefaultPort is the chat port of SPEC §1; DefaultTLSPort is the one
// SPEC §2.6 uses for TLS, taken when --tls is given without a port.
const (
	DefaultPort    = 8088
	DefaultTLSPort = 8443
)

// Config describes one connection to a chat server.
type Config struct {
	Addr      string        // host:port, see ParseAddr
	Nick      string        // sent after the greeting; empty: the user types it
	TLS       bool          // speak TLS
	CAFile    string        // PEM roots to trust instead of the system's
	Insecure  bool          // accept any server certificate
	Timeout   time.Duration // for TCP connect plus TLS handshake; 0: none
	KeepAlive time.Duration // TCP keepalive period; 0: Go's default; negative: off
}

// ParseAddr turns the HOST[:PORT] argument of `netchat join` into host:port.
// IPv6 addresses may be given bare ("::1") or bracketed ("[::1]:8088").
func ParseAddr(s string, defaultPort int) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty address")
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return net.JoinHostPort(a.String(), strconv.Itoa(defaultPort)), nil
	}
	if !strings.Contains(s, ":") {
		return net.JoinHostPort(s, strconv.Itoa(defaultPort)), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("address %q is not HOST or HOST:PORT", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("address %q: port %q is not a number from 1 to 65535", s, port)
	}
	if host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port), nil
}

// Dial connects to cfg.Addr and, with cfg.TLS, completes the handshake, all
// within cfg.Timeout, so that every connection problem (refused,
// unreachable, timeout, untrusted certificate) surfaces here as one
// sentence rather than later as a confusing read error.
func Dial(ctx context.Context, cfg Config) (net.Conn, error) {
	var tcfg *tls.Config
	if cfg.TLS {
		host, _, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("address %q is not HOST:PORT", cfg.Addr)
		}
		if tcfg, err = TLSConfig(host, cfg.CAFile, cfg.Insecure); err != nil {
			return nil, err
		}
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	d := net.Dialer{}
	switch {
	case cfg.KeepAlive > 0:
		d.KeepAliveConfig = net.KeepAliveConfig{
			Enable:   true,
			Idle:     cfg.KeepAlive,
			Interval: max(cfg.KeepAlive/4, time.Second),
			Count:    4,
		}
	case cfg.KeepAlive < 0:
		d.KeepAlive = -1
	}
	nc, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, dialError(cfg.Addr, cfg.Timeout, err)
	}
	if tcfg == nil {
		return nc, nil
	}
	tc := tls.Client(nc, tcfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, handshakeError(cfg.Addr, cfg.Timeout, err)
	}
	return tc, nil
}

func dialError(addr string, timeout time.Duration, err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Errorf("cannot connect to %s: unknown host %s", addr, dnsErr.Name)
		}
		return fmt.Errorf("cannot connect to %s: cannot resolve %s: %v", addr, dnsErr.Name, dnsErr.Err)
	case isTimeout(err):
		return fmt.Errorf("cannot connect to %s: no answer within %s", addr, timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to %s: connection refused (is a netchat server running there?)", addr)
	case errors.Is(err, context.Canceled):
		return errInterrupted
	}
	return fmt.Errorf("cannot connect to %s: %v", addr, unwrapOp(err))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// errInterrupted is returned when the caller's context ends the session
// (a signal, in the CLI).
var errInterrupted = errors.New("interrupted")

func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) && se.Err != nil {
		err = se.Err
	}
	return err
}

// readError describes a failed read from the server.
func readError(err error) error {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return errors.New("the connection was reset by the server")
	case isTimeout(err):
		return errors.New("the connection timed out (the server stopped answering keepalive probes)")
	case errors.Is(err, net.ErrClosed):
		return errInterrupted
	}
	return fmt.Errorf("connection lost: %v", unwrapOp(err))
}

// closeWrite half-closes conn: the server sees end of input but can still
// send its last lines.
func closeWrite(conn net.Conn) error {
	if tc, ok := conn.(*tls.Conn); ok {
		// tls.Conn.CloseWrite sends close_notify but leaves the TCP stream
		// open; send FIN too so that any TLS server sees end of input.
		if err := tc.CloseWrite(); err != nil {
			return err
		}
		conn = tc.NetConn()
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Run connects as cfg says and chats until the server closes the
// connection: interactively when stdin and stdout are both terminals,
// otherwise in pipe mode (see Pipe).
func Run(ctx context.Context, cfg Config, stdin io.Reader, stdout io.Writer) error {
	fd, interactive := terminalFD(stdin, stdout)
	conn, err := Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if !interactive {
		// No signal handling: nothing to restore, and dying of SIGINT or
		// SIGPIPE is what a pipeline expects.
		return Pipe(ctx, conn, cfg.Nick, stdin, stdout)
	}
	// In raw mode Ctrl-C is a key, but a signal from elsewhere must still
	// let the terminal be restored. (SIGTSTP is left to the shell, which
	// saves and restores the terminal of a stopped job.)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer stop()
	return Interactive(ctx, conn, cfg.Nick, struct {
		io.Reader
		io.Writer
	}{stdin, stdout}, fd)
}

func terminalFD(stdin io.Reader, stdout io.Writer) (int, bool) {
	in, ok1 := stdin.(*os.File)
	out, ok2 := stdout.(*os.File)
	if !ok1 || !ok2 {
		return 0, false
	}
	fd := int(in.Fd())
	return fd, term.IsTerminal(fd) && term.IsTerminal(int(out.Fd()))
}
