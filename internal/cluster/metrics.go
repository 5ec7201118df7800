package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the cluster's Prometheus metrics; registered only in cluster
// mode. A nil registerer gives working, unregistered collectors.
type metrics struct {
	published    prometheus.Counter
	received     prometheus.Counter
	privSent     prometheus.Counter
	privReceived prometheus.Counter
	linkUp       prometheus.Gauge
	losses       prometheus.Counter
	claimLatency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, otherVersions func() int) *metrics {
	m := &metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_cluster_events_published_total",
			Help: "Public events this node published to the cluster's log (joins, leaves, renames, messages, /me, sync, gone).",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_cluster_events_received_total",
			Help: "Events this node applied from the cluster's log (its own included).",
		}),
		privSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_cluster_privates_sent_total",
			Help: "Private messages sent to users on other nodes.",
		}),
		privReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_cluster_privates_received_total",
			Help: "Private messages received from other nodes for users here.",
		}),
		linkUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "netchat_cluster_link_up",
			Help: "1 while this node is linked to its cluster, 0 while it serves its users alone.",
		}),
		losses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netchat_cluster_link_losses_total",
			Help: "Times the cluster link was lost.",
		}),
		claimLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "netchat_cluster_claim_seconds",
			Help:    "Time to claim a nickname in the cluster (a key-value create, and a read when it exists).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.published, m.received, m.privSent, m.privReceived, m.linkUp, m.losses, m.claimLatency,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "netchat_cluster_nodes_other_version",
				Help: "Live nodes of the cluster whose log format differs from this node's: they run another netchat version, which the cluster does not support.",
			}, func() float64 { return float64(otherVersions()) }))
	}
	return m
}

func (m *metrics) setLinked(up bool) {
	if up {
		m.linkUp.Set(1)
	} else {
		m.linkUp.Set(0)
	}
}

func (m *metrics) claimed(d time.Duration) { m.claimLatency.Observe(d.Seconds()) }
