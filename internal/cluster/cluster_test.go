package cluster_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"netchat/internal/chat"
	"netchat/internal/cluster/natstest"
)

// TestThreeNodes runs the single-server chat scenario over three nodes,
// one user on each, and checks that every line is what one server shows.
func TestThreeNodes(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	var recMu sync.Mutex
	var recorded []chat.Event
	n1 := startNode(t, ns.URL(), "n1", nodeOpts{record: func(ev chat.Event) {
		recMu.Lock()
		recorded = append(recorded, ev)
		recMu.Unlock()
	}})
	n2 := startNode(t, ns.URL(), "n2", nodeOpts{})
	n3 := startNode(t, ns.URL(), "n3", nodeOpts{})

	alice := join(t, n1.addr, "alice", "* Welcome, alice! 1 users online. Type /help for commands.")
	// The greeting counts what the node has applied of the log; it
	// follows the other nodes within the log's latency.
	waitFor(t, "n2 to see alice", func() bool { return n2.room.Online() == 1 })
	c, greeting := dial(t, n2.addr)
	if greeting != "Welcome to netchat (test)! 1 users online. Please enter a nickname:" {
		t.Fatalf("greeting on n2: %q", greeting)
	}
	c.name = "bob"
	c.send("bob")
	c.expect("* Welcome, bob! 2 users online. Type /help for commands.")
	bob := c
	alice.expect("* bob joined (2 online)")
	// Folded variants are one nickname across nodes.
	c3, _ := dial(t, n3.addr)
	c3.name = "carol"
	c3.send("ＡＬＩＣＥ")
	c3.expect("! nickname taken: ＡＬＩＣＥ")
	c3.send("Bob")
	c3.expect("! nickname taken: Bob")
	c3.send("carol")
	c3.expect("* Welcome, carol! 3 users online. Type /help for commands.")
	carol := c3
	alice.expect("* carol joined (3 online)")
	bob.expect("* carol joined (3 online)")

	// Broadcast and /me: everybody else, in order, not the sender.
	alice.send("hello from n1")
	alice.send("/me waves")
	alice.send("b:third")
	for _, c := range []*client{bob, carol} {
		c.expect("alice: hello from n1", "* alice waves", "alice: third")
	}

	// A private message reaches its target only: bob's next line is the
	// marker sent after it.
	alice.send("/msg CAROL psst")
	alice.expect("[private to carol] psst")
	carol.expect("[private] alice: psst")
	carol.send("c:alice:back at you")
	carol.expect("[private to alice] back at you")
	alice.expect("[private] carol: back at you")
	alice.send("/msg nobody hi")
	alice.expect("! no such user: nobody")
	alice.send("marker 1")
	bob.expect("alice: marker 1")
	carol.expect("alice: marker 1")

	// /who is the whole cluster, sorted, the same on every node.
	for _, c := range []*client{alice, bob, carol} {
		c.send("/who")
		c.expect("* 3 online: alice, bob, carol")
	}

	// Rename: everybody, the user included.
	bob.send("/nick Zed")
	for _, c := range []*client{alice, bob, carol} {
		c.expect("* bob is now known as Zed")
	}
	carol.send("n:zed")
	carol.expect("! nickname taken: zed")
	// Lines after a rename carry the new name on every node.
	bob.send("I am zed now")
	alice.expect("Zed: I am zed now")
	carol.expect("Zed: I am zed now")
	// The old name is free again, on any node.
	waitFor(t, "bob's old claim to be freed", func() bool {
		d, _ := dial(t, n3.addr)
		d.send("bob")
		l := d.next()
		d.c.Close()
		if strings.HasPrefix(l, "* Welcome, bob!") {
			// It joined: it leaves again when closed; wait for that.
			for _, c := range []*client{alice, bob, carol} {
				c.until("* bob left (3 online)")
			}
			return true
		}
		return false
	})

	// History: the same on every node, in the same order.
	dave := join(t, n2.addr, "dave", "* Welcome, dave! 4 users online. Type /help for commands.")
	histDave := dave.until("* --- end of recent messages ---")
	erin := join(t, n3.addr, "erin", "* Welcome, erin! 5 users online. Type /help for commands.")
	histErin := erin.until("* --- end of recent messages ---")
	if strings.Join(histDave, "\n") != strings.Join(histErin, "\n") || len(histDave) != 6 {
		t.Fatalf("history differs or has the wrong length:\ndave: %q\nerin: %q", histDave, histErin)
	}
	want := []string{"* --- recent messages ---", "alice: hello from n1", "* alice waves", "alice: third", "alice: marker 1", "Zed: I am zed now"}
	for i, w := range want {
		if !strings.HasSuffix(histDave[i], w) {
			t.Fatalf("history line %d: %q, want it to end in %q (all: %q)", i, histDave[i], w, histDave)
		}
	}
	for _, c := range []*client{alice, bob, carol} {
		c.expect("* dave joined (4 online)", "* erin joined (5 online)")
	}
	dave.expect("* erin joined (5 online)")

	// Leaving: one notice each, with the cluster's count and the reason.
	carol.send("/quit lunch")
	carol.expect("* bye")
	for _, c := range []*client{alice, bob, dave, erin} {
		c.expect("* carol left (4 online): lunch")
	}
	erin.c.Close()
	for _, c := range []*client{alice, bob, dave} {
		c.expect("* erin left (3 online)")
	}
	alice.send("marker 2")
	bob.expect("alice: marker 2")
	dave.expect("alice: marker 2")
	// A new spelling of one's own nickname.
	bob.send("/nick ZED")
	for _, c := range []*client{alice, bob, dave} {
		c.expect("* Zed is now known as ZED")
	}
	dave.send("/nick zed")
	dave.expect("! nickname taken: zed")
	dave.send("/who")
	dave.expect("* 3 online: alice, dave, ZED")

	// The transcript of n1 has the whole room's public events with the
	// node they happened on, and never a private message.
	waitFor(t, "the transcript", func() bool {
		recMu.Lock()
		defer recMu.Unlock()
		for _, ev := range recorded {
			if ev.Text == "marker 2" {
				return true
			}
		}
		return false
	})
	recMu.Lock()
	defer recMu.Unlock()
	var kinds []string
	for _, ev := range recorded {
		if strings.Contains(ev.Text, "psst") || strings.Contains(ev.Text, "back at you") {
			t.Fatalf("private message in the transcript: %+v", ev)
		}
		kinds = append(kinds, ev.Kind+":"+ev.Nick+"@"+ev.Node)
	}
	got := strings.Join(kinds, " ")
	for _, w := range []string{"join:alice@n1", "join:bob@n2", "join:carol@n3", "msg:alice@n1", "me:alice@n1", "nick:bob@n2", "msg:Zed@n2", "leave:carol@n3"} {
		if !strings.Contains(got, w) {
			t.Fatalf("transcript lacks %s: %s", w, got)
		}
	}
}

// TestNicknameRace races two users for one nickname (in folded variants)
// on two nodes, many times: exactly one wins every time.
func TestNicknameRace(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	n1 := startNode(t, ns.URL(), "r1", nodeOpts{})
	n2 := startNode(t, ns.URL(), "r2", nodeOpts{})
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for i := range rounds {
		nick := "racer" + strconv.Itoa(i)
		variant := strings.ToUpper(nick)
		if i%2 == 1 {
			// Full-width letters and digits fold to the same nickname.
			variant = strings.Map(func(r rune) rune {
				switch {
				case r >= 'A' && r <= 'Z':
					return r - 'A' + 'Ａ'
				case r >= '0' && r <= '9':
					return r - '0' + '０'
				}
				return r
			}, variant)
		}
		var wg sync.WaitGroup
		users := make([]*chat.User, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		for j, room := range []*chat.Room{n1.room, n2.room} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				name := nick
				if j == 1 {
					name = variant
				}
				users[j], errs[j] = room.Join(&nullSession{}, name, chat.Info{})
			}()
		}
		close(start)
		wg.Wait()
		winners := 0
		for j := range 2 {
			if errs[j] == nil {
				winners++
				continue
			}
			if ne, ok := errs[j].(*chat.NickError); !ok || !ne.Taken {
				t.Fatalf("round %d: loser's error %v, want nickname taken", i, errs[j])
			}
		}
		if winners != 1 {
			t.Fatalf("round %d (%s / %s): %d winners", i, nick, variant, winners)
		}
		for _, u := range users {
			if u != nil {
				u.Leave("")
			}
		}
	}
	// Both nodes agree that nobody is left.
	waitFor(t, "everybody to have left", func() bool { return n1.room.Online() == 0 && n2.room.Online() == 0 })
}

type nullSession struct{}

func (nullSession) Deliver([]byte) <-chan struct{} { return nil }

// TestNATSRestart stops the NATS server and starts it again on the same
// port: local chat goes on, users are told once, cross-node chat comes back,
// and a nickname taken on both sides meanwhile ends with one holder.
func TestNATSRestart(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	n1 := startNode(t, ns.URL(), "s1", nodeOpts{})
	n2 := startNode(t, ns.URL(), "s2", nodeOpts{})
	alice := join(t, n1.addr, "alice", "")
	bob := join(t, n1.addr, "bob", "")
	alice.expect("* bob joined (2 online)")
	carol := join(t, n2.addr, "carol", "* Welcome, carol! 3 users online. Type /help for commands.")
	alice.expect("* carol joined (3 online)")
	bob.expect("* carol joined (3 online)")

	ns.Stop()
	for _, c := range []*client{alice, bob, carol} {
		c.expect(chat.NoticeLinkLost)
	}
	// Local chat never stops.
	alice.send("still here")
	bob.expect("alice: still here")
	bob.send("/me nods")
	alice.expect("* bob nods")
	// A user joins each node meanwhile, both as "zed".
	zed1 := join(t, n1.addr, "zed", "")
	zed1.until(chat.NoticeLinkLost)
	alice.expect("* zed joined (4 online)")
	bob.expect("* zed joined (4 online)")
	zed2 := join(t, n2.addr, "Zed", "")
	zed2.until(chat.NoticeLinkLost)
	carol.expect("* Zed joined (4 online)")
	carol.send("/msg alice are you there")
	carol.expect("! alice is on another server, out of reach while the cluster link is down")

	ns.Restart()
	for _, c := range []*client{alice, bob, carol, zed1, zed2} {
		for _, l := range c.until(chat.NoticeLinkRestored) {
			if l == chat.NoticeLinkLost {
				t.Fatalf("%s was told twice that the link was lost", c.name)
			}
		}
	}
	// Both nodes agree on who is here: one zed, the other renamed.
	waitFor(t, "both nodes to agree", func() bool {
		return n1.room.Online() == 5 && n2.room.Online() == 5
	})
	who := func(c *client) string {
		c.send("/who")
		for {
			if l := c.next(); strings.HasPrefix(l, "* 5 online: ") {
				return l
			}
		}
	}
	w1, w2 := who(alice), who(carol)
	if w1 != w2 {
		t.Fatalf("/who differs: %q on s1, %q on s2", w1, w2)
	}
	if w1 != "* 5 online: alice, bob, carol, zed, Zed-2" && w1 != "* 5 online: alice, bob, carol, Zed, zed-2" {
		t.Fatalf("/who after the restart: %q", w1)
	}
	// Cross-node chat works again, both ways.
	alice.send("across again")
	carol.until("alice: across again")
	zed2.until("alice: across again")
	carol.send("and back")
	alice.until("carol: and back")
	bob.until("carol: and back")
}

// TestRejoinDuringOutageKeepsNick: a user who leaves while NATS is down
// and comes back with the same nickname (a client reconnecting) must not be
// renamed when the link is restored: nobody else claimed that nickname.
func TestRejoinDuringOutageKeepsNick(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	n1 := startNode(t, ns.URL(), "s1", nodeOpts{})
	bob := join(t, n1.addr, "bob", "")
	alice := join(t, n1.addr, "alice", "")
	bob.expect("* alice joined (2 online)")

	ns.Stop()
	bob.expect(chat.NoticeLinkLost)
	alice.send("/quit")
	bob.expect("* alice left (1 online)")
	alice2 := join(t, n1.addr, "alice", "")
	alice2.until(chat.NoticeLinkLost)
	bob.expect("* alice joined (2 online)")

	ns.Restart()
	for _, l := range bob.until(chat.NoticeLinkRestored) {
		t.Errorf("bob got %q before the link was restored", l)
	}
	for _, l := range alice2.until(chat.NoticeLinkRestored) {
		t.Errorf("alice got %q before the link was restored", l)
	}
}
