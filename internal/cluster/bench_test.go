package cluster_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"netchat/internal/cluster"
	"netchat/internal/cluster/natstest"
)

// BenchmarkClaim is one nickname claim (a key-value create) against a NATS
// server on loopback, one at a time; it reports the latency percentiles.
func BenchmarkClaim(b *testing.B) {
	ns := natstest.Start(b)
	n, err := cluster.Connect(context.Background(), cluster.Options{URLs: ns.URL(), Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close(context.Background())
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		if err := n.Claim("nick"+strconv.Itoa(i), "nick"+strconv.Itoa(i), uint64(i)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
