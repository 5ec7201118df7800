package cluster_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"netchat/internal/chat"
	"netchat/internal/cluster/natstest"
)

// A node whose list of users is bigger than one NATS message may be (here
// a server taking 16 KiB; by default 1 MB, which 19,000 users with long
// nicknames exceed) still links up again after losing NATS: its sync
// travels in parts, and the other node ends up with all its users.
func TestSyncBiggerThanAMessage(t *testing.T) {
	t.Parallel()
	ns := natstest.StartWith(t, func(o *server.Options) { o.MaxPayload = 16 << 10 })
	n1 := startNode(t, ns.URL(), "s1", nodeOpts{})
	n2 := startNode(t, ns.URL(), "s2", nodeOpts{})

	// 150 users with 20-rune nicknames of 4-byte characters: their sync
	// is about 26 KiB.
	const users = 150
	var first *client
	for i := range users {
		nick := strings.Repeat(string(rune(0x20000+i)), 19) + string(rune(0x21000+i))
		c := join(t, n1.addr, nick, "")
		if first == nil {
			first = c
		}
	}
	waitFor(t, "s2 to see s1's users", func() bool { return n2.room.Online() == users })

	ns.Stop()
	first.until(chat.NoticeLinkLost)
	ns.Restart()
	first.until(chat.NoticeLinkRestored)
	waitFor(t, "both nodes to link again", func() bool { return n1.node.Linked() && n2.node.Linked() })

	// The link stays up and carries chat: a newcomer on s2 is seen on s1.
	bob := join(t, n2.addr, "bob", "")
	bob.send("hello s1")
	for _, l := range first.until("bob: hello s1") {
		if l == chat.NoticeLinkLost {
			t.Fatal("s1 lost the link again after it came back")
		}
	}
	if n1.room.Online() != users+1 || n2.room.Online() != users+1 {
		t.Fatalf("online: s1 %d, s2 %d; want %d", n1.room.Online(), n2.room.Online(), users+1)
	}
	if !n1.node.Linked() {
		t.Fatal("s1 is not linked")
	}
}
