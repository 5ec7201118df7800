package chat

import (
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memCluster is an in-memory cluster for the room's cluster-mode logic: a
// shared log that every node applies in order, and a claims map. The real
// one, over NATS, is tested in internal/cluster.
type memCluster struct {
	mu     sync.Mutex
	cond   *sync.Cond
	log    [][]Replicated
	claims map[string]Member
	links  map[string]*memLink
	closed bool
}

type memLink struct {
	c    *memCluster
	id   string
	room *Room
	mute bool // publishes go nowhere (a link that died silently)

	privMu sync.Mutex
	privs  []*Private
	wake   chan struct{}
}

func newMemCluster(t testing.TB) *memCluster {
	c := &memCluster{claims: map[string]Member{}, links: map[string]*memLink{}}
	c.cond = sync.NewCond(&c.mu)
	t.Cleanup(func() {
		c.mu.Lock()
		c.closed = true
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	return c
}

// node adds a node and links its room.
func (c *memCluster) node(t testing.TB, id string) *memLink {
	return c.nodeWith(t, id, nil, nil)
}

// nodeWith is node with a room record function, and with the room's link
// wrapped (wrap, if not nil, returns what the room is given).
func (c *memCluster) nodeWith(t testing.TB, id string, record func(Event), wrap func(*memLink) Link) *memLink {
	l := &memLink{c: c, id: id, wake: make(chan struct{}, 1)}
	var link Link = l
	if wrap != nil {
		link = wrap(l)
	}
	l.room = NewClusterRoom(Config{Name: "mem", History: 5, NoticeBatchAbove: 500, Record: record}, link)
	c.mu.Lock()
	c.links[id] = l
	snap := &Snapshot{Seq: uint64(len(c.log)), Claims: maps(c.claims)}
	from := len(c.log)
	c.mu.Unlock()
	if u := l.room.LinkUp(snap); len(u) != 0 {
		t.Fatalf("unclaimed users on a new node: %v", u)
	}
	go l.applyFrom(from)
	go l.privateLoop()
	return l
}

func maps(m map[string]Member) map[string]Member {
	out := make(map[string]Member, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (l *memLink) applyFrom(pos int) {
	for {
		l.c.mu.Lock()
		for pos >= len(l.c.log) && !l.c.closed {
			l.c.cond.Wait()
		}
		if l.c.closed {
			l.c.mu.Unlock()
			return
		}
		evs := l.c.log[pos]
		l.c.mu.Unlock()
		pos++
		l.room.Apply(uint64(pos), slices.Clone(evs))
	}
}

func (l *memLink) privateLoop() {
	for range l.wake {
		l.privMu.Lock()
		ps := l.privs
		l.privs = nil
		l.privMu.Unlock()
		for _, p := range ps {
			l.c.mu.Lock()
			to := l.c.links[p.To]
			l.c.mu.Unlock()
			to.room.ReceivePrivate(p)
		}
	}
}

func (l *memLink) NodeID() string   { return l.id }
func (l *memLink) NodeName() string { return "name-" + l.id }

func (l *memLink) Claim(fold, nick string, id uint64) error {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if m, ok := l.c.claims[fold]; ok && (m.Node != l.id || m.ID != id) {
		return ErrClaimTaken
	}
	l.c.claims[fold] = Member{Node: l.id, ID: id, Nick: nick, Fold: fold}
	return nil
}

func (l *memLink) Release(fold string, id uint64) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if m, ok := l.c.claims[fold]; ok && m.Node == l.id && m.ID == id {
		delete(l.c.claims, fold)
	}
}

func (l *memLink) Publish(ev *Replicated) {
	if l.mute {
		return
	}
	l.c.mu.Lock()
	l.c.log = append(l.c.log, []Replicated{*ev})
	l.c.cond.Broadcast()
	l.c.mu.Unlock()
}

func (l *memLink) Private(p *Private) {
	l.privMu.Lock()
	l.privs = append(l.privs, p)
	l.privMu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *memLink) Trouble(string) { l.room.LinkDown() }

// waitLines waits until s has received n lines and returns them.
func waitLines(t *testing.T, s *recorder, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.lines)
		s.mu.Unlock()
		if got >= n {
			return s.take()
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d lines, want %d: %q", got, n, s.take())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRunAfterLeaveIsNoop: once a user has left, nothing they "say" has an
// effect; in particular a rename must not put a nickname back into the
// room (it would never be freed).
func TestRunAfterLeaveIsNoop(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"single", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			var r *Room
			if mode == "single" {
				r = NewRoom(Config{NoticeBatchAbove: 500})
			} else {
				r = newMemCluster(t).node(t, "a").room
			}
			bob := &recorder{}
			mustJoin(t, r, bob, "bob")
			bob.take() // the welcome
			alice := mustJoin(t, r, &recorder{}, "alice")
			waitLines(t, bob, 1) // alice's join notice
			alice.Leave("")
			waitLines(t, bob, 1) // alice's leave notice
			for _, line := range []string{"/nick carol", "n:dave", "hello", "/me waves", "/msg bob hi"} {
				if end := alice.Handle(line); end != Quit {
					t.Fatalf("Handle(%q) after Leave = %v, want Quit", line, end)
				}
				if end, _ := alice.Run(line); end != Quit {
					t.Fatalf("Run(%q) after Leave = %v, want Quit", line, end)
				}
			}
			for _, nick := range []string{"alice", "carol", "dave"} {
				u, err := r.Join(&recorder{}, nick, Info{})
				if err != nil {
					t.Fatalf("join %s after the user left: %v", nick, err)
				}
				u.Leave("")
			}
			u := mustJoin(t, r, &recorder{}, "marker")
			u.Leave("")
			if got := waitLines(t, bob, 8); got[6] != "* marker joined (2 online)" {
				t.Fatalf("bob got %q, want three joins and three leaves only before the marker", got)
			}
		})
	}
}

// TestRenameRacingLeave: a rename and a leave of one user from two
// goroutines, many times: the nickname ends free either way.
func TestRenameRacingLeave(t *testing.T) {
	t.Parallel()
	r := NewRoom(Config{NoticeBatchAbove: -1})
	for i := range 200 {
		u := mustJoin(t, r, &recorder{}, "racer")
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); u.Handle("/nick other" + strconv.Itoa(i)) }()
		go func() { defer wg.Done(); u.Leave("") }()
		wg.Wait()
		if r.Online() != 0 {
			t.Fatalf("round %d: %d online after the only user left", i, r.Online())
		}
		v := mustJoin(t, r, &recorder{}, "other"+strconv.Itoa(i))
		v.Leave("")
	}
}

// TestGoneAnnouncedTwice: two survivors both announce a dead node: each of
// its users leaves exactly once, everywhere, in the same order.
func TestGoneAnnouncedTwice(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t)
	a, b, dead := c.node(t, "a"), c.node(t, "b"), c.node(t, "c")
	alice, bob := &recorder{}, &recorder{}
	mustJoin(t, a.room, alice, "alice")
	mustJoin(t, b.room, bob, "bob")
	mustJoin(t, dead.room, &recorder{}, "carol")
	mustJoin(t, dead.room, &recorder{}, "dave")
	waitLines(t, alice, 4) // welcome, three joins
	waitLines(t, bob, 3)
	dead.mute = true
	da, db := a.room.AnnounceGone("c"), b.room.AnnounceGone("c")
	<-da
	<-db
	want := []string{"* carol left (3 online)", "* dave left (2 online)"}
	for name, s := range map[string]*recorder{"alice": alice, "bob": bob} {
		if got := waitLines(t, s, 2); !slices.Equal(got, want) {
			t.Fatalf("%s got %q, want %q", name, got, want)
		}
	}
	// Nothing more came: a marker is the next line.
	a.room.rep.byID[userKey{"a", 1}].Handle("marker")
	if got := waitLines(t, bob, 1); got[0] != "alice: marker" {
		t.Fatalf("bob got %q after the leaves, want the marker", got)
	}
	if a.room.Online() != 2 || b.room.Online() != 2 {
		t.Fatalf("online: %d and %d, want 2", a.room.Online(), b.room.Online())
	}
}

// TestLinkDownAppliesPending: events that did not come back from the log
// when the link goes are applied here, in order, before the notice.
func TestLinkDownAppliesPending(t *testing.T) {
	t.Parallel()
	l := newMemCluster(t).node(t, "a")
	bob := &recorder{}
	alice := mustJoin(t, l.room, &recorder{}, "alice")
	mustJoin(t, l.room, bob, "bob")
	bob.take()
	l.mute = true
	alice.Handle("one")
	alice.Handle("/me two")
	if got := bob.take(); len(got) != 0 {
		t.Fatalf("bob got %q before the log answered", got)
	}
	l.Trouble("test")
	want := []string{"alice: one", "* alice two", NoticeLinkLost}
	if got := waitLines(t, bob, 3); !slices.Equal(got, want) {
		t.Fatalf("bob got %q, want %q", got, want)
	}
	// Local mode: lines go straight to local users.
	alice.Handle("three")
	if got := waitLines(t, bob, 1); got[0] != "alice: three" {
		t.Fatalf("bob got %q", got)
	}
}

// TestPrivateWaitsForSendersLines: a private message does not overtake the
// sender's earlier public line on the target's node.
func TestPrivateWaitsForSendersLines(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t)
	a, b := c.node(t, "a"), c.node(t, "b")
	alice := mustJoin(t, a.room, &recorder{}, "alice")
	bob := &recorder{}
	mustJoin(t, b.room, bob, "bob")
	bob.take()
	// Node a knows bob once it has applied his join.
	for deadline := time.Now().Add(5 * time.Second); a.room.Online() != 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node a never saw bob join")
		}
	}
	for i := range 50 {
		n := strconv.Itoa(i)
		alice.Handle("public " + n)
		alice.Handle("/msg bob private " + n)
		want := []string{"alice: public " + n, "[private] alice: private " + n}
		if got := waitLines(t, bob, 2); !slices.Equal(got, want) {
			t.Fatalf("round %d: bob got %q, want %q", i, got, want)
		}
	}
}

// waitLine waits until s has got the line want and takes everything it got
// up to then.
func waitLine(t *testing.T, s *recorder, want string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		i := slices.Index(s.lines, want)
		var got []string
		if i >= 0 {
			got = slices.Clone(s.lines[:i+1])
			s.lines = s.lines[i+1:]
		}
		s.mu.Unlock()
		if i >= 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("never got %q: %q", want, s.take())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// relink takes the node's link down and up again, with the whole log as
// the snapshot's window.
func (l *memLink) relink(t *testing.T) {
	l.room.LinkDown()
	l.c.mu.Lock()
	var window []Replicated
	for _, evs := range l.c.log {
		window = append(window, evs...)
	}
	snap := &Snapshot{Seq: uint64(len(l.c.log)), Claims: maps(l.c.claims), Window: window}
	l.c.mu.Unlock()
	if u := l.room.LinkUp(snap); len(u) != 0 {
		t.Fatalf("unclaimed: %v", u)
	}
}

// TestRelinkAfterGone: a node that announced another one gone and then
// reloads the cluster's state (its link came back) does not bring the dead
// node's users back from the log's window.
func TestRelinkAfterGone(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t)
	a, dead := c.node(t, "a"), c.node(t, "b")
	alice := &recorder{}
	mustJoin(t, a.room, alice, "alice")
	mustJoin(t, dead.room, &recorder{}, "bob")
	waitLines(t, alice, 2)
	dead.mute = true
	<-a.room.AnnounceGone("b")
	// The dead node's claims are freed by the link after the gone event.
	a.Release("bob", 1)
	c.mu.Lock()
	delete(c.claims, "bob")
	c.mu.Unlock()
	a.relink(t)
	if got := a.room.Online(); got != 1 {
		t.Fatalf("%d online after relinking, want 1 (alice)", got)
	}
	if got := a.room.who(); got != "* 1 online: alice" {
		t.Fatalf("who: %q", got)
	}
}

// TestLinkDownTellsLostPrivates: a private message to another server that
// is still waiting (behind the sender's own events, not yet back from the
// log) when the link goes down cannot be delivered; its sender, who saw
// "[private to X]", is told, and nobody else gets it.
func TestLinkDownTellsLostPrivates(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t)
	a, b := c.node(t, "a"), c.node(t, "b")
	alice, bob := &recorder{}, &recorder{}
	u := mustJoin(t, a.room, alice, "alice")
	mustJoin(t, b.room, bob, "bob")
	// Online() counts bob before his join notice reaches alice: wait for
	// the notice itself, so that it is not taken for a reply below.
	waitLine(t, alice, "* bob joined (2 online)")
	a.mute = true // alice's events never come back from the log
	u.Handle("hello")
	u.Handle("/msg bob hi")
	a.room.LinkDown()
	want := []string{
		"[private to bob] hi",
		NoticeLinkLost,
		"! bob is on another server, out of reach while the cluster link is down; not delivered: hi",
	}
	if got := waitLines(t, alice, len(want)); !slices.Equal(got, want) {
		t.Errorf("alice got %q, want %q", got, want)
	}
	for _, l := range bob.take() {
		if strings.Contains(l, "hi") {
			t.Errorf("bob got %q", l)
		}
	}
}

// TestLocalPrivateWaitsForSendersLine: a private message to a user of the
// sender's own node must not overtake the sender's earlier public line.
func TestLocalPrivateWaitsForSendersLine(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t)
	inRecord, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l := c.nodeWith(t, "a", func(ev Event) {
		if ev.Kind == KindMsg {
			// The room is fanning out alice's line (deliverRun).
			once.Do(func() { close(inRecord); <-release })
		}
	}, nil)

	alice := mustJoin(t, l.room, &recorder{}, "alice")
	bob := &recorder{}
	mustJoin(t, l.room, bob, "bob")
	bob.take()

	alice.Handle("public")
	select {
	case <-inRecord:
	case <-time.After(5 * time.Second):
		t.Fatal("alice's line never came back from the log")
	}
	// The private message is sent while her line is being delivered:
	// it came back from the log, bob does not have it yet.
	sent := make(chan struct{})
	go func() { alice.Handle("/msg bob private"); close(sent) }()
	select {
	case <-sent:
	case <-time.After(5 * time.Second):
		t.Fatal("the private message is not sent")
	}
	close(release)
	want := []string{"alice: public", "[private] alice: private"}
	if got := waitLines(t, bob, 2); !slices.Equal(got, want) {
		t.Fatalf("bob got %q, want %q", got, want)
	}
}

// timeoutLink makes the claim but answers with an error, as a Create whose
// ack was lost (timeout, disconnect right after the server stored it).
type timeoutLink struct{ *memLink }

func (l timeoutLink) Claim(fold, nick string, id uint64) error {
	l.memLink.Claim(fold, nick, id)
	return errors.New("nats: timeout")
}

// TestClaimWithLostAnswerIsFreed: a user whose claim answer was lost joins
// locally and leaves; the nickname must be free again afterwards.
func TestClaimWithLostAnswerIsFreed(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t)
	l := c.nodeWith(t, "a", nil, func(l *memLink) Link { return timeoutLink{l} })
	u := mustJoin(t, l.room, &recorder{}, "alice") // claim "fails": link down, local join
	u.Leave("")
	c.mu.Lock()
	m, held := c.claims["alice"]
	c.mu.Unlock()
	if held {
		t.Fatalf("the claim of alice is still held after she left: %+v", m)
	}
}

// TestLinkDownDuringApplyKeepsOrder: the link going down while the room
// applies a batch of its own events must not reorder a sender's lines.
func TestLinkDownDuringApplyKeepsOrder(t *testing.T) {
	t.Parallel()
	const lines, inBatch = 400, 200
	for round := range 300 {
		c := newMemCluster(t)
		l := c.node(t, "a")
		alice := mustJoin(t, l.room, &recorder{}, "alice")
		bob := &recorder{}
		mustJoin(t, l.room, bob, "bob")
		bob.take()
		l.mute = true // the batch is handed to Apply by hand below
		for i := range lines {
			alice.Handle("m" + strconv.Itoa(i))
		}
		l.room.rep.pubMu.Lock()
		var batch []Replicated
		for _, ev := range l.room.rep.pending[:inBatch] {
			batch = append(batch, *ev)
		}
		l.room.rep.pubMu.Unlock()
		var wg sync.WaitGroup
		wg.Add(2)
		start := make(chan struct{})
		go func() { defer wg.Done(); <-start; l.room.Apply(1000, batch) }()
		go func() {
			defer wg.Done()
			<-start
			for range round % 50 * 20 { // vary the moment
				runtime.Gosched()
			}
			l.room.LinkDown()
		}()
		close(start)
		wg.Wait()
		next := 0
		for _, got := range bob.take() {
			if got == NoticeLinkLost {
				continue
			}
			if want := "alice: m" + strconv.Itoa(next); got != want {
				t.Fatalf("round %d: bob got %q, want %q", round, got, want)
			}
			next++
		}
		if next != lines {
			t.Fatalf("round %d: bob got %d lines, want %d", round, next, lines)
		}
	}
}

// dropFirstJoin loses the first join it is asked to publish (a log message
// the log never stored while the connection stayed up) and publishes the
// rest.
type dropFirstJoin struct {
	*memLink
	dropped *atomic.Bool
}

func (l dropFirstJoin) Publish(ev *Replicated) {
	if ev.Kind == KindJoin && l.dropped.CompareAndSwap(false, true) {
		return
	}
	l.memLink.Publish(ev)
}

// TestLostOwnEvent: an own event that never comes back from the log while
// a later one does (the log lost it) takes the link down, which applies it
// here: the user whose join it was gets in, instead of waiting forever.
func TestLostOwnEvent(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t)
	l := c.nodeWith(t, "a", nil, func(l *memLink) Link { return dropFirstJoin{l, new(atomic.Bool)} })

	alice := &recorder{}
	joined := joinAsync(t, l.room, alice, "alice")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		l.room.rep.pubMu.Lock()
		n := len(l.room.rep.pending)
		l.room.rep.pubMu.Unlock()
		if n == 1 {
			break // alice's join is published (and lost)
		}
		if time.Now().After(deadline) {
			t.Fatal("alice's join was never published")
		}
	}
	// Bob's join comes back from the log; hers never will.
	bob := &recorder{}
	bobJoined := joinAsync(t, l.room, bob, "bob")
	timeout := time.After(echoTimeout + 2*time.Second)
	for name, ch := range map[string]<-chan struct{}{"alice": joined, "bob": bobJoined} {
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("%s's Join never returned", name)
		}
	}
	waitLine(t, alice, NoticeLinkLost)
	waitLine(t, bob, NoticeLinkLost)
	if got := l.room.Online(); got != 2 {
		t.Fatalf("%d online, want 2", got)
	}
}

// gateSession pauses (once) when a private line arrives: it stands for the
// Apply goroutine being descheduled inside advance, between storing
// appliedSeq and releaseHeld.
type gateSession struct {
	recorder
	once    sync.Once
	in, out chan struct{}
}

func (g *gateSession) Deliver(l []byte) <-chan struct{} {
	if strings.HasPrefix(string(l), "[private]") {
		g.once.Do(func() { close(g.in); <-g.out })
	}
	return g.recorder.Deliver(l)
}

// TestLocalPrivatesKeepOrder: two private messages from alice to bob, both
// on one node, arrive in order, also when the first waited for her line and
// the second comes while the first is being released.
func TestLocalPrivatesKeepOrder(t *testing.T) {
	t.Parallel()
	c := newMemCluster(t)
	pause := map[string][2]chan struct{}{
		"warm":   {make(chan struct{}), make(chan struct{})},
		"public": {make(chan struct{}), make(chan struct{})},
	}
	l := c.nodeWith(t, "a", func(ev Event) {
		if p, ok := pause[ev.Text]; ok && ev.Kind == KindMsg {
			close(p[0])
			<-p[1]
		}
	}, nil)

	alice := mustJoin(t, l.room, &recorder{}, "alice")
	dave := &gateSession{in: make(chan struct{}), out: make(chan struct{})}
	mustJoin(t, l.room, dave, "dave")
	bob := &recorder{}
	mustJoin(t, l.room, bob, "bob")
	bob.take()

	step := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal(what)
		}
	}
	done := func(f func()) <-chan struct{} {
		ch := make(chan struct{})
		go func() { f(); close(ch) }()
		return ch
	}
	carol := mustJoin(t, l.room, &recorder{}, "carol")
	carol.Handle("warm")
	step("warm never came back", pause["warm"][0])                     // Apply is stuck on carol's line
	alice.Handle("public")                                             // pending
	step("p0 not sent", done(func() { alice.Handle("/msg dave p0") })) // outbox
	close(pause["warm"][1])
	step("line never came back", pause["public"][0])
	step("p1 not sent", done(func() { alice.Handle("/msg bob p1") })) // held: gate = her line
	close(pause["public"][1])
	step("p0 never reached dave", dave.in) // Apply is inside advance now
	// p2 is sent while p1 is being released: delivered at once, or
	// queued behind p1.
	p2 := done(func() { alice.Handle("/msg bob p2") })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		select {
		case <-p2:
		default:
			l.room.rep.seqMu.Lock()
			queued := slices.ContainsFunc(l.room.rep.held, func(h heldPrivate) bool { return h.p.Text == "p2" })
			l.room.rep.seqMu.Unlock()
			if !queued {
				if time.Now().After(deadline) {
					t.Fatal("p2 not sent")
				}
				continue
			}
		}
		break
	}
	close(dave.out)
	step("p2 not sent", p2)
	var got []string
	for _, s := range waitLines(t, bob, 5) {
		if strings.HasPrefix(s, "[private]") {
			got = append(got, s)
		}
	}
	if want := []string{"[private] alice: p1", "[private] alice: p2"}; !slices.Equal(got, want) {
		t.Fatalf("bob got %q, want %q", got, want)
	}
}

// TestRenameAsLinkComesBack: a rename begun while the link is down and
// committed after it came back reaches the other nodes (it was applied
// only here, and the others kept the old nickname).
func TestRenameAsLinkComesBack(t *testing.T) {
	// Not parallel: testHookRename is package state.
	c := newMemCluster(t)
	a, b := c.node(t, "a"), c.node(t, "b")
	bob := &recorder{}
	alice := mustJoin(t, a.room, &recorder{}, "alice")
	mustJoin(t, b.room, bob, "bob")
	waitLine(t, bob, "* Welcome, bob! 2 users online. Type /help for commands.")
	a.room.LinkDown()
	var once sync.Once
	testHookRename = func() {
		once.Do(func() {
			c.mu.Lock()
			snap := &Snapshot{Seq: uint64(len(c.log)), Claims: maps(c.claims)}
			c.mu.Unlock()
			if u := a.room.LinkUp(snap); len(u) != 0 {
				t.Errorf("unclaimed: %v", u)
			}
		})
	}
	defer func() { testHookRename = nil }()
	alice.Handle("/nick alice2")
	waitLine(t, bob, "* alice is now known as alice2")
	c.mu.Lock()
	_, claimed := c.claims["alice2"]
	c.mu.Unlock()
	if !claimed {
		t.Fatal("alice2 is not claimed")
	}
}

// joinAsync joins r as nick in a goroutine; the channel is closed when Join
// has returned.
func joinAsync(t *testing.T, r *Room, s Session, nick string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := r.Join(s, nick, Info{}); err != nil {
			t.Error(err)
		}
	}()
	return done
}
