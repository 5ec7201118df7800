package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the server's Prometheus metrics (SPEC §2.7). A nil *Metrics
// is valid and records nothing, so the hot path needs no branches at the
// call sites.
type Metrics struct {
	connsOpen     prometheus.Gauge
	connsTotal    prometheus.Counter
	rejections    *prometheus.CounterVec
	linesIn       prometheus.Counter
	bytesIn       prometheus.Counter
	deliveries    prometheus.Counter
	bytesOut      prometheus.Counter
	slowConsumers prometheus.Counter
	floods        prometheus.Counter
	stalls        prometheus.Counter
	writes        prometheus.Counter
	sweeps        prometheus.Histogram
	latency       prometheus.Histogram
}

// NewMetrics registers the server's metrics with reg. online reports the
// users in the room, read at scrape time.
func NewMetrics(reg prometheus.Registerer, online func() int) *Metrics {
	m := &Metrics{
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "netchat_connections", Help: "Open client connections (joined or not).",
		}),
		connsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_connections_total", Help: "Connections accepted, including rejected ones.",
		}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netchat_rejections_total", Help: "Connections refused, by reason.",
		}, []string{"reason"}),
		linesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_lines_in_total", Help: "Lines received from clients.",
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_bytes_in_total", Help: "Line bytes received from clients (terminators excluded).",
		}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_deliveries_total", Help: "Lines written to clients.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_bytes_out_total", Help: "Bytes written to clients.",
		}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_slow_consumer_disconnects_total",
			Help: "Clients cut off because their send queue overflowed or their socket took nothing for --write-timeout.",
		}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_stalls_total",
			Help: "Times a sender's input was paused because its lines filled another client's queue past three quarters (producer pacing).",
		}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_writes_total", Help: "Write system calls to clients (deliveries / writes = lines per write).",
		}),
		sweeps: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "netchat_flush_sweep_seconds",
			Help: "Duration of the flushers' sweeps over the clients with pending output (the batching window " +
				"of a busy room; see docs/BENCHMARKS.md).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14),
		}),
		floods: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_flood_disconnects_total", Help: "Clients cut off for flooding.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "netchat_delivery_latency_seconds",
			Help: "Time from queueing a line for a client to the end of the write that emptied the client's queue; " +
				"observed once per emptied queue, for the oldest line in it.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2.5, 12),
		}),
	}
	for _, r := range []string{"server_full", "per_ip_limit", "shutdown"} {
		m.rejections.WithLabelValues(r)
	}
	reg.MustRegister(m.connsOpen, m.connsTotal, m.rejections, m.linesIn, m.bytesIn,
		m.deliveries, m.bytesOut, m.slowConsumers, m.floods, m.stalls, m.writes, m.sweeps, m.latency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "netchat_users_online", Help: "Users joined to the room.",
		}, func() float64 { return float64(online()) }))
	return m
}

func (m *Metrics) connAccepted() {
	if m != nil {
		m.connsTotal.Inc()
	}
}

func (m *Metrics) connOpened() {
	if m != nil {
		m.connsOpen.Inc()
	}
}

func (m *Metrics) connClosed() {
	if m != nil {
		m.connsOpen.Dec()
	}
}

func (m *Metrics) rejected(reason string) {
	if m != nil {
		m.rejections.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) lineIn(n int) {
	if m != nil {
		m.linesIn.Inc()
		m.bytesIn.Add(float64(n))
	}
}

// wrote records lines written completely, and the age of the oldest.
func (m *Metrics) wrote(lines int, oldest time.Time) {
	if m != nil {
		m.deliveries.Add(float64(lines))
		if !oldest.IsZero() {
			m.latency.Observe(time.Since(oldest).Seconds())
		}
	}
}

// wroteBytes records one write that sent n bytes.
func (m *Metrics) wroteBytes(n int) {
	if m != nil {
		m.writes.Inc()
		m.bytesOut.Add(float64(n))
	}
}

func (m *Metrics) sweep(d time.Duration) {
	if m != nil {
		m.sweeps.Observe(d.Seconds())
	}
}

func (m *Metrics) stall() {
	if m != nil {
		m.stalls.Inc()
	}
}

func (m *Metrics) slowConsumer() {
	if m != nil {
		m.slowConsumers.Inc()
	}
}

func (m *Metrics) flood() {
	if m != nil {
		m.floods.Inc()
	}
}
