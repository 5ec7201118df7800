package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"netchat/internal/chat"
	"netchat/internal/server"
	"netchat/internal/testcert"
)

// startServer runs a real netchat server on loopback without the limits
// that would throttle a benchmark.
func startServer(t *testing.T, tlsCfg *tls.Config) string {
	t.Helper()
	cfg := server.Defaults()
	cfg.MaxConnsPerIP = 0
	srv := server.New(chat.NewRoom(chat.Config{Name: "bench", History: 20, NoticeBatchAbove: 500}), cfg)
	ln, err := srv.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return addr
}

func smallConfig(addr string) Config {
	cfg := DefaultConfig()
	cfg.Addr = addr
	cfg.Clients = 20
	cfg.Senders = 4
	cfg.Duration = time.Second
	cfg.Warmup = 200 * time.Millisecond
	cfg.Drain = 3 * time.Second
	return cfg
}

// checkPerfect asserts a run in which the server lost, duplicated,
// reordered and echoed nothing.
func checkPerfect(t *testing.T, res Result) {
	t.Helper()
	if res.SentLines == 0 {
		t.Fatal("no line was sent inside the window")
	}
	if res.ExpectedDeliveries != res.SentLines*int64(res.Clients-1) {
		t.Errorf("expected deliveries %d, want sent %d × %d", res.ExpectedDeliveries, res.SentLines, res.Clients-1)
	}
	if res.Deliveries != res.ExpectedDeliveries || res.DeliveryRatio != 1 {
		t.Errorf("deliveries %d of %d (ratio %v), want all", res.Deliveries, res.ExpectedDeliveries, res.DeliveryRatio)
	}
	if res.LatencySamples != res.Deliveries {
		t.Errorf("%d latency samples for %d deliveries", res.LatencySamples, res.Deliveries)
	}
	if !res.OrderChecked || res.OrderViolations != 0 || res.Echoes != 0 || res.EchoDetected {
		t.Errorf("order checked %v, violations %d, echoes %d (detected %v)", res.OrderChecked, res.OrderViolations, res.Echoes, res.EchoDetected)
	}
	if res.ServerErrorLines+res.Disconnects+res.ReadErrors+res.WriteErrors+res.ForeignLines != 0 {
		t.Errorf("problems: %+v", res)
	}
	if res.Connected != res.Clients || res.DeliveriesPerSec <= 0 {
		t.Errorf("connected %d of %d, %v deliveries/s", res.Connected, res.Clients, res.DeliveriesPerSec)
	}
	if !(res.LatencyP50Ms > 0 && res.LatencyP50Ms <= res.LatencyP90Ms && res.LatencyP90Ms <= res.LatencyP99Ms &&
		res.LatencyP99Ms <= res.LatencyP999Ms && res.LatencyP999Ms <= res.LatencyMaxMs) {
		t.Errorf("latency percentiles out of order: %+v", res)
	}
}

func TestBenchClosedLoop(t *testing.T) {
	addr := startServer(t, nil)
	var progress bytes.Buffer
	res, err := Run(t.Context(), smallConfig(addr), &progress)
	if err != nil {
		t.Fatal(err)
	}
	checkPerfect(t, res)
	if res.Window != 8 || res.Rate != 0 {
		t.Errorf("window %d rate %v, want closed loop with window 8", res.Window, res.Rate)
	}
	if !strings.Contains(progress.String(), "bench: connected 20 clients") {
		t.Errorf("progress output: %q", progress.String())
	}
	var summary bytes.Buffer
	if err := res.WriteSummary(&summary); err != nil || !strings.Contains(summary.String(), "ratio 1.0000") {
		t.Errorf("summary (%v):\n%s", err, summary.String())
	}

	// The server replays the first run's last lines to the second run's
	// clients: they must be ignored, not counted or taken for disorder.
	res, err = Run(t.Context(), smallConfig(addr), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkPerfect(t, res)
	if res.StaleLines == 0 {
		t.Error("no stale lines: history replay of the first run went unnoticed")
	}
}

func TestBenchOpenLoop(t *testing.T) {
	addr := startServer(t, nil)
	cfg := smallConfig(addr)
	cfg.Rate = 50
	cfg.Payload = 200
	cfg.ServerPID = os.Getpid() // the server runs in this process
	res, err := Run(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkPerfect(t, res)
	if runtime.GOOS == "linux" && (res.ServerCPUCores <= 0 || res.DeliveriesPerServerCPUSec <= 0) {
		t.Errorf("server CPU %v cores, %v deliveries per CPU second", res.ServerCPUCores, res.DeliveriesPerServerCPUSec)
	}
	// 4 senders × 50/s × 1s; the random phase of each sender moves the
	// count by at most one line per sender.
	if res.SentLines < 196 || res.SentLines > 204 || res.Window != 0 {
		t.Errorf("sent %d lines (window %d), want about 200 in open loop", res.SentLines, res.Window)
	}
}

func TestBenchTLS(t *testing.T) {
	addr := startServer(t, testcert.New(t).ServerConfig(t))
	cfg := smallConfig(addr)
	cfg.Clients, cfg.Senders, cfg.Rate = 5, 2, 100
	cfg.Duration = 300 * time.Millisecond
	cfg.TLS = &tls.Config{InsecureSkipVerify: true}
	res, err := Run(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkPerfect(t, res)

	cfg.TLS = &tls.Config{ServerName: "127.0.0.1"} // verifies: must refuse
	if _, err := Run(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("self-signed certificate accepted without --insecure: %v", err)
	}
}

func TestBenchNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	_, err = Run(t.Context(), smallConfig(addr), nil)
	if err == nil || !strings.Contains(err.Error(), "cannot connect to "+addr) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("error %v, want a refused connect to %s", err, addr)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("failing took %v", time.Since(start))
	}
}

func TestBenchNicknameRefused(t *testing.T) {
	addr := startServer(t, nil)
	cfg := smallConfig(addr)
	cfg.NickPrefix = "bad nick " // a space is not allowed in a nickname
	_, err := Run(t.Context(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "refused nickname") {
		t.Fatalf("error %v, want the refused nickname", err)
	}
}

func TestBenchSilentServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never greets
		}
	}()
	cfg := smallConfig(ln.Addr().String())
	cfg.GreetingTimeout = 200 * time.Millisecond
	_, err = Run(t.Context(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "no greeting") {
		t.Fatalf("error %v, want no greeting", err)
	}
}

func TestBenchCancel(t *testing.T) {
	addr := startServer(t, nil)
	cfg := smallConfig(addr)
	cfg.Duration = time.Minute
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("error %v, want interrupted", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("cancel took %v", took)
	}
}

func TestBenchValidate(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"one client":       func(c *Config) { c.Clients = 1 },
		"too many senders": func(c *Config) { c.Senders = c.Clients + 1 },
		"no window":        func(c *Config) { c.Window = 0 },
		"negative rate":    func(c *Config) { c.Rate = -1 },
		"no duration":      func(c *Config) { c.Duration = 0 },
		"huge payload":     func(c *Config) { c.Payload = 1 << 30 },
		"bad address":      func(c *Config) { c.Addr = "localhost" },
		"remote sources":   func(c *Config) { c.Addr, c.SourceIPs = "192.0.2.1:8088", 4 },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		if _, err := Run(t.Context(), cfg, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBenchSourceIPs(t *testing.T) {
	addr := startServer(t, nil)
	cfg := smallConfig(addr)
	cfg.SourceIPs = 3
	cfg.Clients, cfg.Senders, cfg.Rate = 6, 2, 100
	cfg.Duration = 300 * time.Millisecond
	res, err := Run(t.Context(), cfg, nil)
	if err != nil {
		t.Skipf("source addresses 127.0.0.2-4 unusable here: %v", err)
	}
	checkPerfect(t, res)
}

// TestBenchEchoAndDisorder uses a fake server that echoes every line to its
// sender as well and delivers every line twice: both must be reported,
// and neither counted as a good delivery.
func TestBenchEchoAndDisorder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				br := bufio.NewReader(c)
				c.Write([]byte("hello, nickname?\r\n"))
				nick, err := br.ReadString('\n')
				if err != nil {
					return
				}
				c.Write([]byte("* Welcome, " + strings.TrimSpace(nick) + "!\r\n"))
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				for {
					line, err := br.ReadBytes('\n')
					if err != nil {
						return
					}
					mu.Lock()
					for _, o := range conns {
						o.Write(line)
						o.Write(line)
					}
					mu.Unlock()
				}
			}()
		}
	}()
	cfg := smallConfig(ln.Addr().String())
	cfg.Clients, cfg.Senders, cfg.Rate = 4, 2, 100
	cfg.Duration = 300 * time.Millisecond
	cfg.Drain = 200 * time.Millisecond
	res, err := Run(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Echoes are counted over the whole run, warmup included.
	if !res.EchoDetected || res.Echoes < 2*res.SentLines {
		t.Errorf("echoes %d (detected %v) for %d measured lines, want 2 per line", res.Echoes, res.EchoDetected, res.SentLines)
	}
	if res.OrderViolations < res.ExpectedDeliveries || res.DeliveryRatio != 2 {
		t.Errorf("duplicates: %d order violations, ratio %v for %d expected", res.OrderViolations, res.DeliveryRatio, res.ExpectedDeliveries)
	}
	var summary bytes.Buffer
	res.WriteSummary(&summary)
	if !strings.Contains(summary.String(), "duplicates") {
		t.Errorf("summary does not warn about duplicates:\n%s", summary.String())
	}
}

func TestBenchServerPIDUnreadable(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("server CPU is read from /proc")
	}
	cfg := smallConfig("127.0.0.1:1")
	cfg.ServerPID = 1 << 30 // beyond Linux's pid_max
	if _, err := Run(t.Context(), cfg, nil); err == nil || !strings.Contains(err.Error(), "server process") {
		t.Fatalf("error %v, want an unreadable server process", err)
	}
}
