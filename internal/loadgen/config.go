package loadgen

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Config describes one benchmark run. Zero durations and counts take the
// defaults of DefaultConfig where that makes sense; Validate says which
// combinations are refused.
type Config struct {
	Addr    string  // host:port of the chat server
	Clients int     // connected clients, all of them receive
	Senders int     // the first Senders clients also send
	Rate    float64 // lines/s per sender; 0 = closed loop limited by Window
	// Window bounds, in closed loop, how many lines of one sender its
	// observer (the last client) has not received yet.
	Window   int
	Duration time.Duration // measured window
	Warmup   time.Duration // sending before the window, not counted
	// Drain is the longest wait after the window for lines in flight.
	Drain time.Duration
	// Payload is the size of a sent line including its newline; lines are
	// never shorter than the token.
	Payload int
	// NickPrefix names client i NickPrefix+i. Empty skips the nickname
	// step and the wait for the welcome, for servers without nicknames.
	NickPrefix      string
	DialConcurrency int
	// SourceIPs > 0 spreads connections over 127.0.0.2.. 127.0.0.(N+1) so
	// that big or repeated runs do not run out of ephemeral ports of one
	// source address. Only for a loopback server address.
	SourceIPs int
	TLS       *tls.Config // nil: plain TCP
	// WSPath, if set, makes every client a WebSocket client of that
	// resource ("/ws"): one text frame per line in each direction.
	// WSHost is the Host header (and Origin http://WSHost); default Addr.
	WSPath, WSHost string
	// ServerPID, if set, is the local server process whose CPU use inside
	// the window is reported (Linux): deliveries per server CPU second
	// hardly depend on how much CPU the generator takes from the server.
	ServerPID int

	DialTimeout time.Duration
	// GreetingTimeout bounds the wait for the greeting and for the welcome.
	GreetingTimeout time.Duration
	ReadyTimeout    time.Duration
	// StallTimeout: a closed-loop window that stays full this long is
	// assumed to have lost a line and is reopened (WindowTimeouts).
	StallTimeout time.Duration
}

// DefaultConfig returns the defaults of `netchat bench`.
func DefaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8088",
		Clients:         50,
		Senders:         10,
		Window:          8,
		Duration:        10 * time.Second,
		Warmup:          time.Second,
		Drain:           3 * time.Second,
		Payload:         64,
		NickPrefix:      "bench",
		DialConcurrency: 8,
		DialTimeout:     10 * time.Second,
		GreetingTimeout: 10 * time.Second,
		ReadyTimeout:    60 * time.Second,
		StallTimeout:    5 * time.Second,
	}
}

// maxPayload keeps a misplaced unit from making every line megabytes long.
const maxPayload = 1 << 20

// Validate reports the first setting that cannot give a meaningful run.
func (c *Config) Validate() error {
	switch {
	case c.Clients < 2:
		return errors.New("clients must be at least 2: a line needs a receiver other than its sender")
	case c.Senders < 1 || c.Senders > c.Clients:
		return fmt.Errorf("senders must be between 1 and clients (%d)", c.Clients)
	case c.Rate < 0:
		return errors.New("rate must not be negative")
	case c.Rate == 0 && c.Window < 1:
		return errors.New("window must be at least 1 in closed loop (rate 0)")
	case c.Duration <= 0:
		return errors.New("duration must be positive")
	case c.Warmup < 0 || c.Drain < 0:
		return errors.New("warmup and drain must not be negative")
	case c.Payload < 0 || c.Payload > maxPayload:
		return fmt.Errorf("payload must be between 0 and %d bytes", maxPayload)
	case c.DialConcurrency < 1:
		return errors.New("dial concurrency must be at least 1")
	case c.ServerPID < 0:
		return errors.New("server PID must not be negative")
	case c.SourceIPs < 0 || c.SourceIPs > 1<<24-3:
		return errors.New("source IPs must be between 0 and 16777213")
	}
	if c.WSPath != "" {
		switch {
		case c.TLS != nil:
			return errors.New("WebSocket over TLS (wss) is not supported")
		case c.WSPath[0] != '/':
			return fmt.Errorf("WebSocket path %q must start with /", c.WSPath)
		}
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("address %q: %v", c.Addr, err)
	}
	if c.SourceIPs > 0 {
		// 127.0.0.2.. can only reach a server on loopback, and only IPv4.
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is4() || !ip.IsLoopback() {
			if host != "localhost" {
				return fmt.Errorf("source IPs need an IPv4 loopback server address, not %q", host)
			}
		}
	}
	return nil
}

func (c *Config) fillDefaults() {
	d := DefaultConfig()
	if c.DialTimeout <= 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.GreetingTimeout <= 0 {
		c.GreetingTimeout = d.GreetingTimeout
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = d.ReadyTimeout
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = d.StallTimeout
	}
}

// sourceAddr is the local address of connection i with SourceIPs set.
func sourceAddr(i, n int) *net.TCPAddr {
	k := i%n + 2
	return &net.TCPAddr{IP: net.IPv4(127, byte(k>>16), byte(k>>8), byte(k))}
}

// wsHost is the Host header of the WebSocket handshake.
func (c *Config) wsHost() string {
	if c.WSHost != "" {
		return c.WSHost
	}
	return c.Addr
}
