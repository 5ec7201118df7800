package cluster_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"netchat/internal/chat"
	"netchat/internal/cluster"
	"netchat/internal/cluster/natstest"
)

// TestLostGoneAnnouncedAgain: a survivor whose gone event for a dead node
// never reaches the log (the link goes down waiting for it) does not free
// the dead node's nicknames nor remove its heartbeat as if everybody had
// been told: it announces the death again once linked, and no node keeps
// the dead node's user as a ghost.
func TestLostGoneAnnouncedAgain(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	ns := natstest.Start(t)
	a := startNode(t, ns.URL(), "a", nodeOpts{ttl: ttl})
	var lost atomic.Bool
	dropped := make(chan struct{})
	a.node.SetDropHook(func(ev *chat.Replicated) bool {
		if ev.Kind == chat.KindGone && lost.CompareAndSwap(false, true) {
			close(dropped)
			return true // only the first
		}
		return false
	})
	addr3, kill := startChild(t, ns.URL(), "c", ttl)
	join(t, addr3, "carol", "")
	waitFor(t, "a to see carol", func() bool { return a.room.Online() == 1 })
	kill()
	select {
	case <-dropped:
	case <-time.After(wait):
		t.Fatal("a never announced the dead node")
	}
	// b links while a waits for its lost gone event: it finds carol in
	// the claims, as a did. Its longer TTL keeps it from judging the dead
	// node itself before a is done.
	b := startNode(t, ns.URL(), "b", nodeOpts{ttl: 4 * ttl})
	waitFor(t, "carol to be gone everywhere", func() bool { return a.room.Online() == 0 && b.room.Online() == 0 })
	for _, n := range []*testNode{a, b} {
		waitFor(t, "carol's nickname to be free on "+n.name, func() bool { return nickFree(n, "carol") })
	}
}

// TestCloseFreesRemainingClaims: a node closed while users are still in its
// room (the transport's shutdown ran out of time) frees their nicknames.
func TestCloseFreesRemainingClaims(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	a := startNode(t, ns.URL(), "a", nodeOpts{})
	b := startNode(t, ns.URL(), "b", nodeOpts{})
	if _, err := a.room.Join(nullSession{}, "alice", chat.Info{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to see alice", func() bool { return b.room.Online() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := a.node.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to see alice leave", func() bool { return b.room.Online() == 0 })
	// The node TTL is 30 s: only the closing node can have freed it.
	waitFor(t, "alice's nickname to be free", func() bool { return nickFree(b, "alice") })
}

// TestMixedTTL: nodes with different --cluster-node-ttl (while the flag is
// being changed) do not take each other for dead: a node heartbeats at a
// quarter of its own TTL, and the others judge it by the longer TTL.
func TestMixedTTL(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	var leaves atomic.Int32
	a := startNode(t, ns.URL(), "a", nodeOpts{ttl: time.Second, record: func(e chat.Event) {
		if e.Kind == chat.KindLeave {
			leaves.Add(1)
		}
	}})
	b := startNode(t, ns.URL(), "b", nodeOpts{ttl: 4 * time.Second})
	if _, err := b.room.Join(nullSession{}, "bob", chat.Info{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to see bob", func() bool { return a.room.Online() == 1 })
	// b heartbeats once a second; a, judging by its own TTL, would take
	// it for dead after 0.75 s. Two heartbeats of b later, bob is there.
	hb := heartbeats(t, ns.URL(), b.node.NodeID())
	for range 2 {
		select {
		case <-hb:
		case <-time.After(wait):
			t.Fatal("b does not heartbeat")
		}
	}
	if n := leaves.Load(); n > 0 || a.room.Online() != 1 {
		t.Fatalf("bob, on a live node, left %d times on a (%d online)", n, a.room.Online())
	}
}

// heartbeats delivers a value for every heartbeat of node id from now on.
func heartbeats(t *testing.T, url, id string) <-chan struct{} {
	t.Helper()
	kv := openBucket(t, url, cluster.NodesBucket)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := kv.Watch(ctx, id, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan struct{}, 16)
	go func() {
		for e := range w.Updates() {
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}
