package loadgen

import (
	"fmt"
	"io"
	"time"
)

// Result is the outcome of a run. The JSON keys match those of the chatbench
// harness's chatload where the meaning is the same, so scripts can read
// either tool's output.
type Result struct {
	Addr         string  `json:"addr"`
	TLS          bool    `json:"tls"`
	WSPath       string  `json:"ws_path,omitempty"` // WebSocket resource; empty: line protocol
	Clients      int     `json:"clients"`
	Senders      int     `json:"senders"`
	Rate         float64 `json:"rate_per_sender"`
	Window       int     `json:"window,omitempty"`
	PayloadBytes int     `json:"payload_bytes"`
	NickStep     bool    `json:"nick_step"`
	DurationS    float64 `json:"duration_s"`
	WarmupS      float64 `json:"warmup_s"`

	Connected      int     `json:"connected"`
	ConnectS       float64 `json:"connect_s"`
	ConnectsPerSec float64 `json:"connects_per_sec"`
	// Connect (and TLS handshake) until the greeting line arrived.
	DialP50Ms float64 `json:"dial_p50_ms"`
	DialP99Ms float64 `json:"dial_p99_ms"`
	DialMaxMs float64 `json:"dial_max_ms"`
	// Nickname sent until the welcome line arrived (0 without nicknames).
	WelcomeP50Ms float64 `json:"welcome_p50_ms"`
	WelcomeP99Ms float64 `json:"welcome_p99_ms"`
	ReadyS       float64 `json:"ready_s"`

	SentLines  int64   `json:"sent_lines"`
	SentPerSec float64 `json:"sent_lines_per_sec"`
	// Open loop: how far behind their schedule the senders fell at worst.
	// A sender behind by much more than a line interval was held up (by
	// TCP backpressure, or a generator short of CPU), and the offered load
	// was lower than asked for.
	SendLagMaxMs       float64 `json:"send_lag_max_ms,omitempty"`
	ExpectedDeliveries int64   `json:"expected_deliveries"`
	Deliveries         int64   `json:"deliveries"`
	DeliveryRatio      float64 `json:"delivery_ratio"`
	DeliveriesPerSec   float64 `json:"deliveries_per_sec"`
	DrainS             float64 `json:"drain_s"`

	LatencySamples int64   `json:"latency_samples"`
	LatencyP50Ms   float64 `json:"latency_p50_ms"`
	LatencyP90Ms   float64 `json:"latency_p90_ms"`
	LatencyP99Ms   float64 `json:"latency_p99_ms"`
	LatencyP999Ms  float64 `json:"latency_p999_ms"`
	LatencyMaxMs   float64 `json:"latency_max_ms"`
	LatencyMeanMs  float64 `json:"latency_mean_ms"`

	// How long lines waited in the bench's own sockets before it read
	// them (kernel receive time to reading; at least, since a read's
	// newest data is timed): the generator's share of the latency above.
	// Only for plain TCP and WebSocket clients on Linux.
	ReadDelaySamples int64   `json:"read_delay_samples,omitempty"`
	ReadDelayP50Ms   float64 `json:"read_delay_p50_ms,omitempty"`
	ReadDelayP99Ms   float64 `json:"read_delay_p99_ms,omitempty"`

	EchoDetected    bool  `json:"echo_detected"`
	Echoes          int64 `json:"echoes"`
	OrderChecked    bool  `json:"order_checked"`
	OrderViolations int64 `json:"order_violations"`
	// Lines starting with "! ": netchat's error notices, e.g. "! slow down".
	ServerErrorLines int64 `json:"server_error_lines"`
	// Which server limits got in the way (from those lines, or a closed
	// loop held to a few lines per second per sender) and the netchat
	// flags that lift them; empty when none was seen.
	LimitHint      string `json:"limit_hint,omitempty"`
	Disconnects    int64  `json:"disconnects"`
	ReadErrors     int64  `json:"read_errors"`
	WriteErrors    int64  `json:"write_errors"`
	WindowTimeouts int64  `json:"window_timeouts"`
	// BENCH lines sent before this run started, e.g. replayed history.
	StaleLines int64 `json:"stale_lines"`
	// BENCH lines that do not parse or name a sender that does not exist.
	ForeignLines int64 `json:"foreign_lines"`

	// CPU this process used inside the window, in cores: the generator
	// shares the machine with a local server, so read throughput with it.
	ClientCPUCores float64 `json:"client_cpu_cores,omitempty"`
	// With a server PID: the server's CPU inside the window, and deliveries
	// per second of it, the figure that least depends on the generator.
	ServerCPUCores            float64 `json:"server_cpu_cores,omitempty"`
	DeliveriesPerServerCPUSec float64 `json:"deliveries_per_server_cpu_sec,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// WriteSummary prints r for people, a few lines.
func (r *Result) WriteSummary(w io.Writer) error {
	mode := fmt.Sprintf("open loop %g lines/s per sender", r.Rate)
	if r.Rate == 0 {
		mode = fmt.Sprintf("closed loop, window %d", r.Window)
	}
	proto := "tcp"
	switch {
	case r.TLS:
		proto = "tls"
	case r.WSPath != "":
		proto = "websocket " + r.WSPath
	}
	pw := &printer{w: w}
	pw.printf("bench %s (%s): %d clients, %d senders, %s, payload %dB, warmup %gs, measured %gs\n",
		r.Addr, proto, r.Clients, r.Senders, mode, r.PayloadBytes, r.WarmupS, r.DurationS)
	pw.printf("  connect     %d in %.3fs (%.0f/s), connect+greeting p50 %.2fms p99 %.2fms max %.2fms",
		r.Connected, r.ConnectS, r.ConnectsPerSec, r.DialP50Ms, r.DialP99Ms, r.DialMaxMs)
	if r.NickStep {
		pw.printf(", welcome p50 %.2fms p99 %.2fms", r.WelcomeP50Ms, r.WelcomeP99Ms)
	}
	pw.printf("; ready after %.3fs\n", r.ReadyS)
	pw.printf("  sent        %d lines (%.0f/s)", r.SentLines, r.SentPerSec)
	if r.Rate > 0 {
		pw.printf(", at most %.1fms behind schedule", r.SendLagMaxMs)
	}
	pw.printf("\n")
	pw.printf("  delivered   %d of %d expected (ratio %.4f), drained in %.2fs\n",
		r.Deliveries, r.ExpectedDeliveries, r.DeliveryRatio, r.DrainS)
	pw.printf("  throughput  %.0f deliveries/s\n", r.DeliveriesPerSec)
	pw.printf("  latency     p50 %.3fms  p90 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms  mean %.3fms  (%d samples)\n",
		r.LatencyP50Ms, r.LatencyP90Ms, r.LatencyP99Ms, r.LatencyP999Ms, r.LatencyMaxMs, r.LatencyMeanMs, r.LatencySamples)
	if r.ReadDelaySamples > 0 {
		pw.printf("  read delay  p50 %.3fms  p99 %.3fms  (how long lines waited in the bench's sockets: its own share of the latency)\n",
			r.ReadDelayP50Ms, r.ReadDelayP99Ms)
	}
	order := fmt.Sprint(r.OrderViolations)
	if !r.OrderChecked {
		order = "not checked"
	}
	pw.printf("  problems    order violations %s, echoes %d, server errors %d, disconnects %d, read errors %d, write errors %d, window timeouts %d\n",
		order, r.Echoes, r.ServerErrorLines, r.Disconnects, r.ReadErrors, r.WriteErrors, r.WindowTimeouts)
	if r.StaleLines > 0 || r.ForeignLines > 0 {
		pw.printf("  ignored     %d stale BENCH lines (from before this run), %d unparsable or foreign\n", r.StaleLines, r.ForeignLines)
	}
	if r.ClientCPUCores > 0 || r.ServerCPUCores > 0 {
		pw.printf("  cpu         generator %.2f cores", r.ClientCPUCores)
		if r.ServerCPUCores > 0 {
			pw.printf(", server %.2f cores (%.0f deliveries per server CPU second)", r.ServerCPUCores, r.DeliveriesPerServerCPUSec)
		}
		pw.printf("\n")
	}
	if r.LimitHint != "" {
		pw.printf("  WARNING     the server's limits got in the way: %s\n", r.LimitHint)
	}
	if r.Rate > 0 && r.SendLagMaxMs > 1000/r.Rate {
		pw.printf("  WARNING     senders fell %.0fms behind their schedule: the load offered was lower than asked for\n", r.SendLagMaxMs)
	}
	if r.SentLines > 0 && r.DeliveryRatio < 0.999 {
		pw.printf("  WARNING     %.2f%% of expected deliveries missing; latency covers delivered lines only\n", 100*(1-r.DeliveryRatio))
	}
	if r.DeliveryRatio > 1.0001 {
		pw.printf("  WARNING     more deliveries than expected: the server duplicates lines\n")
	}
	return pw.err
}

// printer keeps the first write error so that the summary is not a wall of
// error checks.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}
