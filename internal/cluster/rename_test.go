package cluster_test

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"netchat/internal/cluster"
	"netchat/internal/cluster/natstest"
)

// TestRenameAwayAndBack: a user who renames and at once takes the old
// nickname back keeps its claim: the release of the old claim, on its way
// when the nickname is claimed again, must not free it (another user could
// then take it on another server).
func TestRenameAwayAndBack(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	n1 := startNode(t, ns.URL(), "s1", nodeOpts{})
	alice := join(t, n1.addr, "alice", "")

	kv := openBucket(t, ns.URL(), cluster.ClaimsBucket)
	held := func(fold string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_, err := kv.Get(ctx, base64.RawURLEncoding.EncodeToString([]byte(fold)))
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	for range 100 {
		// Both lines in one write: the second rename is claimed right
		// after the first is applied, while alice's release is under way.
		alice.send("/nick bob\r\n/nick alice")
		alice.expect("* alice is now known as bob", "* bob is now known as alice")
		waitFor(t, "bob's claim to be given back", func() bool { return !held("bob") })
		if !held("alice") {
			t.Fatal("alice's claim was freed while she holds the nickname")
		}
	}
}
