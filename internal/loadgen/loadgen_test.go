package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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
	return startServerWith(t, tlsCfg, cfg, chat.Config{Name: "bench", History: 20, NoticeBatchAbove: 500})
}

// startServerWith runs a real netchat server on loopback.
func startServerWith(t *testing.T, tlsCfg *tls.Config, cfg server.Config, room chat.Config) string {
	t.Helper()
	srv := server.New(chat.NewRoom(room), cfg)
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
	// The drain ends as soon as every line is in; this only bounds a
	// broken run, generously, since a busy machine may be slow.
	cfg.Drain = 30 * time.Second
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
	// The server may still hold some of the first run's nicknames (their
	// leaves are processed asynchronously): the bench picks others.
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
	// On Linux the kernel's receive times show how long each delivery
	// waited in the bench's socket: part of, never more than, its latency
	// (give or take a clock step).
	if runtime.GOOS == "linux" && (res.ReadDelaySamples != res.Deliveries || res.ReadDelayP50Ms > res.LatencyP50Ms+0.1) {
		t.Errorf("read delay: %d samples for %d deliveries, p50 %vms (latency p50 %vms)", res.ReadDelaySamples, res.Deliveries, res.ReadDelayP50Ms, res.LatencyP50Ms)
	}
	// 4 senders × 50/s × 1s. The random phase of each sender moves the
	// count by one line per sender. A sender that fell behind its
	// schedule (a busy machine) may have sent a few more lines of the
	// warmup inside the window, or fewer at its end: as many as fit into
	// its lag, at each end.
	interval := time.Second / 50
	slack := int64(cfg.Senders) * (1 + 2*int64(time.Duration(res.SendLagMaxMs*1e6)/interval+1))
	if res.SentLines < 200-slack || res.SentLines > 200+slack || res.Window != 0 {
		t.Errorf("sent %d lines (window %d, senders up to %.1fms late), want 200±%d in open loop", res.SentLines, res.Window, res.SendLagMaxMs, slack)
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
	// Port 1: nothing listens there, and the kernel never hands it out to
	// another test's listener (a port just closed could be).
	addr := "127.0.0.1:1"
	cfg := smallConfig(addr)
	cfg.DialTimeout = 5 * time.Minute
	start := time.Now()
	_, err := Run(t.Context(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "cannot connect to "+addr) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("error %v, want a refused connect to %s", err, addr)
	}
	// A refusal ends the run at once, not when the dial timeout is up.
	if took := time.Since(start); took > time.Minute {
		t.Errorf("failing took %v", took)
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
	cfg.Duration = 10 * time.Minute
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("error %v, want interrupted", err)
	}
	// Cancelling ends the run, not the 10-minute window.
	if took := time.Since(start); took > 2*time.Minute {
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
	res, err := Run(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.EchoDetected || res.Echoes == 0 {
		t.Errorf("echoes %d (detected %v)", res.Echoes, res.EchoDetected)
	}
	// The drain ends once every receiver has every line once. Each copy
	// is written right after the first, so at most the second copy of
	// each sender's last line may still be unread at one receiver.
	pairs := int64(cfg.Senders * (cfg.Clients - 1))
	if res.Deliveries < 2*res.ExpectedDeliveries-pairs || res.Deliveries > 2*res.ExpectedDeliveries ||
		res.OrderViolations < res.Deliveries-res.ExpectedDeliveries { // warmup lines add more
		t.Errorf("duplicates: %d deliveries, %d order violations for %d expected", res.Deliveries, res.OrderViolations, res.ExpectedDeliveries)
	}
	var summary bytes.Buffer
	res.WriteSummary(&summary)
	if res.DeliveryRatio > 1.0001 && !strings.Contains(summary.String(), "duplicates") {
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

// TestBenchNicknameTaken: a nickname the server still holds (an earlier
// run's user, or anybody) is retried under another name; a server that
// refuses every name stops the run with its answer.
func TestBenchNicknameTaken(t *testing.T) {
	t.Parallel()
	addr := startServer(t, nil)
	holder, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	br := bufio.NewReader(holder)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Write([]byte("bench1\n")); err != nil {
		t.Fatal(err)
	}
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* Welcome, bench1!") {
		t.Fatalf("holder: %q, %v", l, err)
	}
	cfg := smallConfig(addr)
	cfg.Clients, cfg.Senders, cfg.Rate = 4, 2, 50
	cfg.Duration = 300 * time.Millisecond
	res, err := Run(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkPerfect(t, res)

	// A server that says "taken" to every nickname.
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
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				c.Write([]byte("hello, nickname?\r\n"))
				for {
					nick, err := br.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte("! nickname taken: " + strings.TrimSpace(nick) + "\r\n"))
				}
			}()
		}
	}()
	_, err = Run(t.Context(), smallConfig(ln.Addr().String()), nil)
	if err == nil || !regexp.MustCompile(`refused nickname "bench\d+-4": "! nickname taken: bench\d+-4"`).MatchString(err.Error()) {
		t.Fatalf("error %v, want the fifth refusal", err)
	}
}

// TestBenchServerLimits runs the bench against netchat servers with their
// default limits (serve's defaults: --msg-rate 10 --msg-burst 20
// --max-conns-per-ip 64), which stop a load test: the run fails and says
// which limit stopped it and which server flag lifts it.
func TestBenchServerLimits(t *testing.T) {
	t.Parallel()
	defaults := server.Defaults()
	room := chat.Config{Name: "bench", History: 20, NoticeBatchAbove: 500, MsgRate: 10, MsgBurst: 20}
	full := server.Defaults()
	full.MaxConns = 5
	for _, tc := range []struct {
		name    string
		srv     server.Config
		clients int
		rate    float64
		want    []string // in the error, or in the hint of a run that succeeded
	}{
		// Senders at 1000 lines/s are cut off as flooders within a few
		// dozen lines, long before the window opens 2s later.
		{"message rate", defaults, 6, 1000, []string{"nothing was measured", `"! slow down"`, "--msg-rate 0"}},
		// A closed loop stays within a burst of the rate: netchat delays
		// its lines instead of refusing them, and the run measures the
		// limit (the burst is spent in the warmup).
		{"paced closed loop", defaults, 6, 0, []string{"lines/s per sender got through", "--msg-rate 0"}},
		{"connections per address", defaults, 70, 1000, []string{`"! too many connections from your address"`, "--max-conns-per-ip 0", "--source-ips"}},
		{"server full", full, 8, 1000, []string{`"! server full, try again later"`, "--max-conns"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := startServerWith(t, nil, tc.srv, room)
			cfg := smallConfig(addr)
			cfg.Clients, cfg.Senders, cfg.Rate = tc.clients, 2, tc.rate
			cfg.Warmup, cfg.Duration = 3*time.Second, 2*time.Second
			res, err := Run(t.Context(), cfg, nil)
			if tc.rate == 0 {
				if err != nil {
					t.Fatal(err)
				}
				err = errors.New(res.LimitHint)
			}
			if err == nil {
				t.Fatalf("run succeeded: %+v", res)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.name == "message rate" {
				if !errors.Is(err, ErrNothingMeasured) || res.LimitHint == "" || res.ServerErrorLines == 0 || res.Disconnects == 0 {
					t.Errorf("result: hint %q, %d server errors, %d disconnects", res.LimitHint, res.ServerErrorLines, res.Disconnects)
				}
				var summary bytes.Buffer
				if err := res.WriteSummary(&summary); err != nil || !strings.Contains(summary.String(), "--msg-rate 0") {
					t.Errorf("summary (%v):\n%s", err, summary.String())
				}
			}
		})
	}
}

// TestConsumeLines: lines cut into reads anywhere come out whole, and an
// over-long line is handled by its first maxLine bytes only.
func TestConsumeLines(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Clients, cfg.Senders = 4, 2
	stream := "* hello\r\n! slow down\r\nbench0: BENCH 0 1 %d xx\r\n" + strings.Repeat("z", 5000) + "! not an error: in the skipped tail\n! flooding\r\n"
	for _, step := range []int{1, 2, 3, 10, 4096, 1 << 20} {
		r := &run{cfg: cfg, base: time.Now(), maxLine: 4096, acked: make([]atomic.Int64, 2), wake: make([]chan struct{}, 2)}
		r.baseNano = r.base.UnixNano()
		in := []byte(fmt.Sprintf(stream, r.baseNano+1))
		c := &client{id: 3, lastSeq: make([]int64, 2)}
		st := new(stats)
		buf := make([]byte, r.maxLine+64)
		for p := in; len(p) > 0; {
			pre := c.readBuf(buf)
			n := copy(buf[pre:], p[:min(step, len(p))])
			p = p[n:]
			r.consume(c, st, buf[:pre+n], 0)
		}
		if st.serverErrors != 2 || st.limits != limitRate || st.delivered.Load() != 1 || st.foreign != 0 || len(c.carry) != 0 {
			t.Errorf("step %d: %d server errors (limits %b), %d delivered, %d foreign, carry %q",
				step, st.serverErrors, st.limits, st.delivered.Load(), st.foreign, c.carry)
		}
	}
}
