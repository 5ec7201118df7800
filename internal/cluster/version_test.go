package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"netchat/internal/chat"
	"netchat/internal/cluster"
	"netchat/internal/cluster/natstest"
)

// TestOtherVersionCounted: a node of an older netchat (its heartbeat has no
// log format) is counted in netchat_cluster_nodes_other_version while it is
// there; nodes of this version are not, also after a relink.
func TestOtherVersionCounted(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	reg := prometheus.NewRegistry()
	n, err := cluster.Connect(context.Background(), cluster.Options{URLs: ns.URL(), Name: "new", Metrics: reg, Logger: logger("new")})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background(), chat.NewClusterRoom(chat.Config{Name: "test"}, n)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	startNode(t, ns.URL(), "also-new", nodeOpts{})

	others := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "netchat_cluster_nodes_other_version" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no netchat_cluster_nodes_other_version metric")
		return 0
	}
	// An old node's heartbeat, as version 1 wrote it. The heartbeats of
	// both nodes of this version come before it: once it is counted,
	// they were seen (and the count would be 2 or 3 had they been
	// counted too).
	kv := openBucket(t, ns.URL(), cluster.NodesBucket)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := kv.Put(ctx, "oldnode", []byte(`{"name":"old","started":"`+time.Now().Format(time.RFC3339Nano)+`"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old node to be counted", func() bool { return others() != 0 })
	if got := others(); got != 1 {
		t.Fatalf("%v nodes of another version, want 1 (the old one)", got)
	}
	if err := kv.Delete(ctx, "oldnode"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old node to be gone from the count", func() bool { return others() == 0 })

	// A relink refreshes what the node has seen; this version's nodes
	// stay uncounted.
	n.Trouble("test")
	waitFor(t, "the node to link again", n.Linked)
	if got := others(); got != 0 {
		t.Fatalf("after relinking: %v nodes of another version, want 0", got)
	}
}
