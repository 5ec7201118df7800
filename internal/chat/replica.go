package chat

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Cluster mode (SPEC §6).
//
// In cluster mode the room is a replica of one shared, totally ordered log
// of public events (a JetStream stream, see internal/cluster). A local
// user's public action is not carried out at once: it is published to the
// log, and every node, this one included, applies the events in log order.
// So every node computes the same counts, the same notices (each exactly
// once: a second leave of the same user is a no-op everywhere), the same
// /who and the same history, and one sender's lines keep their order.
//
// Nicknames are claimed through the Link before a join or rename is
// published (Link.Claim, a network round trip outside the room's lock), and
// Join and renames wait until their own event has come back from the log:
// those are the two calls that may block (see Room.JoinBlocks).
//
// When the link is down the room goes on alone ("local mode"): events are
// applied at once, as in a single process, and nothing is published. When
// it comes back the link hands the room a fresh snapshot of the cluster
// (Room.LinkUp) and the room announces its own users again (a sync event).

// Link connects a room to the other nodes of a cluster; internal/cluster
// implements it over NATS. Methods the room calls while holding its lock
// (Publish, Private, Release) must not block and must not call back into
// the room; Claim and Trouble are called without the lock.
type Link interface {
	// NodeID is this node's unique id; NodeName its name for people.
	NodeID() string
	NodeName() string
	// Claim reserves fold cluster-wide for user id of this node. It may
	// block on the network. It returns ErrClaimTaken when somebody else
	// holds fold, and another error when the cluster cannot be asked.
	Claim(fold, nick string, id uint64) error
	// Release gives a claim back, asynchronously, once its holder left
	// or was renamed. A release while the link is down is kept until it
	// is back.
	Release(fold string, id uint64)
	// Publish queues ev for the log. It never blocks.
	Publish(ev *Replicated)
	// Private queues p for the node p.To. It never blocks.
	Private(p *Private)
	// Trouble tells the link that the cluster did not answer in time: it
	// brings the link down (calling Room.LinkDown before it returns) and
	// tries to re-establish it in the background.
	Trouble(reason string)
}

// ErrClaimTaken is Link.Claim's answer when another user holds the nickname.
var ErrClaimTaken = errors.New("nickname claimed by another user")

// Kinds of replicated events besides the public ones (KindJoin ... KindMe).
const (
	// KindSync states all users of a node (Replicated.Users), after its
	// link came back: nodes announce the differences as joins, leaves and
	// renames.
	KindSync = "sync"
	// KindGone says that node Replicated.Text died: each of its users
	// leaves (each once, however many nodes say so).
	KindGone = "gone"
)

// Replicated is one event of the cluster's log.
type Replicated struct {
	Node     string    // origin node id
	NodeName string    // origin node name (transcript)
	Seq      uint64    // the origin's counter, assigned by the room
	Time     time.Time // when it happened, origin's clock
	Kind     string
	User     uint64 // the user, an id unique within Node
	Nick     string // join: nickname; nick: new nickname; msg, me: sender
	Fold     string // join, nick: the folded nickname (the claim key)
	Text     string // msg, me: text; leave: reason; gone: the dead node's id
	Users    []Member

	done chan struct{} // closed once applied here (AnnounceGone)
}

// Member is a user as the cluster knows it.
type Member struct {
	Node string
	ID   uint64
	Nick string
	Fold string
}

// Private is a private message on its way to the node of its target.
type Private struct {
	From       string // sender's node id
	To         string // target's node id
	Gate       uint64 // deliver only once the log has been applied this far
	Sender     uint64
	SenderNick string
	Target     uint64
	Text       string
}

// Snapshot is the state of the cluster a node starts from when its link
// comes up: who holds which nickname, and the log's latest events up to
// and including sequence Seq, to be applied without notices (they also
// provide the recent history).
type Snapshot struct {
	Seq    uint64
	Claims map[string]Member // fold -> holder; a user of another node appears once, under its latest claim
	Window []Replicated
}

// NoticeLinkLost and NoticeLinkRestored are what local users are told when
// the cluster link goes and comes back (SPEC §6).
const (
	NoticeLinkLost     = "* cluster link lost, messages stay on this server"
	NoticeLinkRestored = "* cluster link restored"
)

// echoTimeout bounds how long a join or rename waits for its own event to
// come back from the log before the link is declared in trouble.
const echoTimeout = 3 * time.Second

type userKey struct {
	node string
	id   uint64
}

// replica is the cluster-mode state of a room; guarded by Room.mu except
// where noted.
type replica struct {
	// applyMu makes Apply, LinkDown and LinkUp take turns (taken before
	// Room.mu): a link going down in the middle of an Apply would apply
	// the sender's later lines, still pending, before the earlier ones
	// that Apply has taken off the pending list but not delivered yet.
	applyMu sync.Mutex

	link   Link
	self   string
	linked bool
	up     bool // the link has been up once (the first LinkUp is not a "restored")

	byID        map[userKey]*User // everybody in the cluster
	pendingJoin map[uint64]*User  // own joins published, not applied yet
	nextID      uint64            // guarded by pubMu

	// pubMu orders own publications: seq numbers, the pending list and
	// the outbox of private messages waiting for it to drain.
	pubMu     sync.Mutex
	pubSeq    uint64
	pending   []*Replicated
	localUpTo uint64 // own events up to here were applied in local mode
	echoSeq   uint64 // log position of the last own event that came back
	lostTold  bool   // the link was told of a lost own event
	outbox    []*Private

	seqMu      sync.Mutex
	appliedSeq uint64 // log position applied (guarded by seqMu)
	held       []heldPrivate
	// privMu makes releases of held private messages take turns, so
	// that they are delivered in the order they came (taken before
	// seqMu and Room.mu).
	privMu sync.Mutex
}

// clusterUser is what a user has in cluster mode only; guarded by Room.mu
// unless noted. node and id name the user cluster-wide; claimed says the
// nickname is claimed in the cluster; done is closed when the user's
// pending join or rename has been applied; backlog (atomic) is a
// recipient's backlog left by the fan-out of the user's last line, for
// the next Run to hand to the transport.
type clusterUser struct {
	node    string
	id      uint64
	claimed bool
	done    chan struct{}
	backlog atomic.Pointer[<-chan struct{}]
}

type heldPrivate struct {
	p  *Private
	at time.Time
}

// NewClusterRoom returns a room that is one replica of a cluster. It has no
// users and is in local mode until the link calls LinkUp.
func NewClusterRoom(cfg Config, link Link) *Room {
	r := NewRoom(cfg)
	r.rep = &replica{
		link:        link,
		self:        link.NodeID(),
		byID:        make(map[userKey]*User),
		pendingJoin: make(map[uint64]*User),
	}
	return r
}

// JoinBlocks reports whether Join, and Run or Handle of a rename line
// (see MayBlock), may block on the network: true in cluster mode, and only
// there (server.New also picks a cluster node's batching by it). A
// transport must then call them from a goroutine of the session's own,
// never from a goroutine that serves other sessions (a poller).
func (r *Room) JoinBlocks() bool { return r.rep != nil }

// MayBlock reports whether running line may block on the network: a
// rename in cluster mode (it claims the new nickname cluster-wide and waits
// for its event to come back). Cheap: a parse of the line, nothing more.
func (r *Room) MayBlock(line string) bool {
	return r.rep != nil && Parse(line).Op == OpNick
}

// publishLocked assigns ev its sequence number, remembers it until it comes
// back from the log, and hands it to the link; r.mu is held (read or write)
// and the room is linked.
func (r *Room) publishLocked(ev *Replicated) {
	rp := r.rep
	ev.Node, ev.NodeName = rp.self, rp.link.NodeName()
	if ev.Time.IsZero() {
		ev.Time = r.cfg.Now()
	}
	rp.pubMu.Lock()
	rp.pubSeq++
	ev.Seq = rp.pubSeq
	rp.pending = append(rp.pending, ev)
	rp.link.Publish(ev)
	rp.pubMu.Unlock()
}

// PendingSince is when the oldest own event still waiting to come back from
// the log was published (zero if none): the link's watchdog.
func (r *Room) PendingSince() time.Time {
	rp := r.rep
	rp.pubMu.Lock()
	defer rp.pubMu.Unlock()
	if len(rp.pending) == 0 {
		return time.Time{}
	}
	return rp.pending[0].Time
}

func (r *Room) newUser(s Session, nick, fold string, info Info) *User {
	u := &User{room: r, sess: s, info: info, nick: nick, fold: fold}
	if r.cfg.MsgRate > 0 {
		u.limiter = newLimiter(r.cfg.MsgRate, r.cfg.MsgBurst)
		// A burst's worth of lag (see Admit); the millisecond absorbs the
		// limiter's rounding at exactly that boundary.
		u.lagMax = time.Duration(float64(r.cfg.MsgBurst)/r.cfg.MsgRate*float64(time.Second)) + time.Millisecond
	}
	return u
}

// joinCluster is Join in cluster mode.
func (r *Room) joinCluster(s Session, nick string, info Info) (*User, error) {
	fold, err := FoldNick(nick)
	if err != nil {
		return nil, err
	}
	rp := r.rep
	r.mu.RLock()
	_, taken := r.byFold[fold]
	linked := rp.linked
	r.mu.RUnlock()
	if taken {
		return nil, &NickError{Nick: nick, Taken: true}
	}
	u := r.newUser(s, nick, fold, info)
	u.clusterUser = &clusterUser{node: rp.self}
	rp.pubMu.Lock()
	rp.nextID++
	u.id = rp.nextID
	rp.pubMu.Unlock()
	for attempt := 0; ; attempt++ {
		if linked {
			switch err := rp.link.Claim(fold, nick, u.id); {
			case err == nil:
				u.claimed = true
			case errors.Is(err, ErrClaimTaken):
				return nil, &NickError{Nick: nick, Taken: true}
			default:
				// The cluster cannot be asked: the user joins here
				// alone, and the claim is made when the link is back.
				rp.link.Trouble("nickname claim: " + err.Error())
			}
		}
		r.mu.Lock()
		if !rp.linked || u.claimed {
			break
		}
		if attempt == 2 {
			r.mu.Unlock()
			rp.link.Trouble("nickname claims keep failing")
			r.mu.Lock()
			break
		}
		// The link came back between a failed claim and now: an
		// unclaimed user must not join a linked room. Claim again.
		r.mu.Unlock()
		linked = true
	}
	if rp.linked && u.claimed {
		done := make(chan struct{})
		u.done = done
		rp.pendingJoin[u.id] = u
		r.publishLocked(&Replicated{Kind: KindJoin, User: u.id, Nick: nick, Fold: fold})
		r.mu.Unlock()
		r.awaitEcho(done)
		return u, nil
	}
	if other, taken := r.byFold[fold]; taken && other != u {
		r.mu.Unlock()
		if linked {
			rp.link.Release(fold, u.id) // made, or maybe made (see applyLeaveLocked)
		}
		return nil, &NickError{Nick: nick, Taken: true}
	}
	r.applyJoinLocked(u, r.cfg.Now(), false)
	r.mu.Unlock()
	return u, nil
}

// awaitEcho waits until done is closed (an own event was applied), or
// declares the link in trouble, which applies pending events locally and
// so closes done.
func (r *Room) awaitEcho(done chan struct{}) {
	t := time.NewTimer(echoTimeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	r.rep.link.Trouble("no answer from the cluster within " + echoTimeout.String())
	<-done
}

// applyJoinLocked adds u, a user of this node, to the room: welcome,
// history, notice, transcript. r.mu is held for writing.
func (r *Room) applyJoinLocked(u *User, at time.Time, silentNotice bool) {
	rp := r.rep
	r.byFold[u.fold] = u
	rp.byID[userKey{u.node, u.id}] = u
	u.idx = len(r.members)
	r.members = append(r.members, u)
	online := len(rp.byID)
	r.online.Store(int64(online))
	u.sess.Deliver([]byte("* Welcome, " + u.nick + "! " + strconv.Itoa(online) +
		" users online. Type /help for commands."))
	r.hist.replay(u.sess)
	if !rp.linked && rp.up {
		u.sess.Deliver([]byte(NoticeLinkLost))
	}
	r.recordAt(at, KindJoin, u.nick, "", rp.link.NodeName())
	if !silentNotice {
		r.announceJoinLocked(u, u.nick, online)
	}
	if u.done != nil {
		close(u.done)
		u.done = nil
	}
}

func (r *Room) announceJoinLocked(skip *User, nick string, online int) {
	if r.batching(online) {
		r.presence(true)
		return
	}
	r.deliverLocked(skip, "* "+nick+" joined ("+strconv.Itoa(online)+" online)")
}

func (r *Room) announceLeaveLocked(nick, reason string, online int) {
	if r.batching(online) {
		r.presence(false)
		return
	}
	line := "* " + nick + " left (" + strconv.Itoa(online) + " online)"
	if reason != "" {
		line += ": " + reason
	}
	r.deliverLocked(nil, line)
}

func (r *Room) recordAt(at time.Time, kind, nick, text, node string) {
	if r.cfg.Record != nil {
		r.cfg.Record(Event{Time: at, Kind: kind, Nick: nick, Text: text, Node: node})
	}
}

// leaveCluster is Leave in cluster mode. The user stops getting lines at
// once; the others are told when the leave comes back from the log.
func (u *User) leaveCluster(reason string) {
	r := u.room
	rp := r.rep
	r.mu.Lock()
	if u.gone {
		r.mu.Unlock()
		return
	}
	u.gone = true
	u.left.Store(true)
	r.removeMemberLocked(u)
	if rp.linked && u.claimed {
		r.publishLocked(&Replicated{Kind: KindLeave, User: u.id, Text: reason})
		r.mu.Unlock()
		return
	}
	r.applyLeaveLocked(userKey{u.node, u.id}, reason, r.cfg.Now(), "", false)
	r.mu.Unlock()
}

// applyLeaveLocked removes a user from the cluster's roster and tells
// everybody here; a user not in the roster (left already) is ignored.
func (r *Room) applyLeaveLocked(k userKey, reason string, at time.Time, nodeName string, silent bool) {
	rp := r.rep
	u, ok := rp.byID[k]
	if !ok {
		return
	}
	delete(rp.byID, k)
	if r.byFold[u.fold] == u {
		delete(r.byFold, u.fold)
	}
	u.gone = true
	u.left.Store(true)
	r.removeMemberLocked(u)
	online := len(rp.byID)
	r.online.Store(int64(online))
	if nodeName == "" {
		nodeName = rp.link.NodeName()
	}
	if silent {
		return
	}
	r.recordAt(at, KindLeave, u.nick, reason, nodeName)
	r.announceLeaveLocked(u.nick, reason, online)
	if k.node == rp.self {
		// Even if the claim is not known to be made: a claim whose
		// answer was lost may be stored all the same. A release frees
		// only this user's claim.
		rp.link.Release(u.fold, u.id)
	}
}

// applyRenameLocked renames a user everywhere in the room; the user, if
// local, gets the notice too.
// releaseOld gives the old nickname's claim back.
func (r *Room) applyRenameLocked(u *User, nick, fold string, at time.Time, nodeName string, silent, releaseOld bool) {
	rp := r.rep
	old, oldFold := u.nick, u.fold
	if old == nick {
		return
	}
	if r.byFold[oldFold] == u {
		delete(r.byFold, oldFold)
	}
	r.byFold[fold] = u
	u.nick, u.fold = nick, fold
	if silent {
		return
	}
	r.recordAt(at, KindNick, old, nick, nodeName)
	r.deliverLocked(nil, "* "+old+" is now known as "+nick)
	if releaseOld && oldFold != fold {
		rp.link.Release(oldFold, u.id)
	}
}

// renameCluster is a rename in cluster mode: claim the new nickname
// cluster-wide, publish, and wait until the rename has come back from the
// log, so that the user's next line already goes out under the new name.
func (u *User) renameCluster(nick string) {
	fold, err := FoldNick(nick)
	if err != nil {
		u.sess.Deliver([]byte("! " + err.Error()))
		return
	}
	// A link that comes back while the rename is under way makes it start
	// over: a rename made here alone would not reach the others.
	for range 3 {
		if !u.tryRenameCluster(nick, fold) {
			return
		}
	}
	u.sess.Deliver([]byte("! the cluster link is changing, try again: /nick " + nick))
}

// testHookRename, if set by a test, runs between a rename's first look at
// the room and its commit.
var testHookRename func()

// tryRenameCluster is one attempt of renameCluster; again says that the
// link came back meanwhile and nothing was done.
func (u *User) tryRenameCluster(nick, fold string) (again bool) {
	r := u.room
	rp := r.rep
	r.mu.RLock()
	other, taken := r.byFold[fold]
	old, oldFold, linked, wasClaimed := u.nick, u.fold, rp.linked, u.claimed
	r.mu.RUnlock()
	if testHookRename != nil {
		testHookRename()
	}
	switch {
	case taken && other != u:
		u.sess.Deliver([]byte("! " + (&NickError{Nick: nick, Taken: true}).Error()))
		return false
	case old == nick:
		u.sess.Deliver([]byte("! you are already " + nick))
		return false
	}
	// A new spelling of the user's nickname keeps its claim.
	claimed := wasClaimed && fold == oldFold
	// A claim of the new nickname is tried (below) only while linked; one
	// that errs may be stored all the same (see applyLeaveLocked), so a
	// rename that does not happen gives it back.
	giveBack := linked && wasClaimed && fold != oldFold
	// A new spelling of the same nickname is claimed too: the claim is ours
	// already, and its value gets the new spelling (other nodes' snapshots
	// show it).
	if linked && wasClaimed {
		switch err := rp.link.Claim(fold, nick, u.id); {
		case err == nil:
			claimed = true
		case errors.Is(err, ErrClaimTaken):
			u.sess.Deliver([]byte("! " + (&NickError{Nick: nick, Taken: true}).Error()))
			return false
		default:
			rp.link.Trouble("nickname claim: " + err.Error())
		}
	}

	r.mu.Lock()
	if u.gone {
		r.mu.Unlock()
		if giveBack {
			rp.link.Release(fold, u.id)
		}
		return false
	}
	if rp.linked && claimed {
		done := make(chan struct{})
		u.done = done
		r.publishLocked(&Replicated{Kind: KindNick, User: u.id, Nick: nick, Fold: fold})
		r.mu.Unlock()
		r.awaitEcho(done)
		return false
	}
	if rp.linked && !claimed {
		r.mu.Unlock()
		return true // linked since the start: claim, publish
	}
	if other, taken := r.byFold[fold]; taken && other != u {
		r.mu.Unlock()
		if giveBack {
			rp.link.Release(fold, u.id)
		}
		u.sess.Deliver([]byte("! " + (&NickError{Nick: nick, Taken: true}).Error()))
		return false
	}
	// Local mode: an unclaimed new name is claimed when the link is back.
	releaseOld := fold != oldFold // even if not known to be made (see applyLeaveLocked)
	u.claimed = claimed
	r.applyRenameLocked(u, nick, fold, r.cfg.Now(), rp.link.NodeName(), false, releaseOld)
	r.mu.Unlock()
	return false
}

// publicCluster is a broadcast or /me in cluster mode.
func (u *User) publicCluster(kind, text string) {
	r := u.room
	r.mu.RLock()
	if u.gone {
		r.mu.RUnlock()
		return
	}
	if r.rep.linked {
		r.publishLocked(&Replicated{Kind: kind, User: u.id, Nick: u.nick, Text: text})
		r.mu.RUnlock()
		return
	}
	r.applyMessageLocked(u, kind, u.nick, text, r.cfg.Now(), r.rep.link.NodeName())
	r.mu.RUnlock()
}

// applyMessageLocked keeps a public message and sends it to everybody here
// but its sender; r.mu is held (read or write).
func (r *Room) applyMessageLocked(sender *User, kind, nick, text string, at time.Time, nodeName string) {
	ev := Event{Time: at, Kind: kind, Nick: nick, Text: text, Node: nodeName}
	r.hist.mu.Lock()
	r.hist.addLocked(ev)
	if r.cfg.Record != nil {
		r.cfg.Record(ev)
	}
	r.hist.mu.Unlock()
	var line []byte
	if kind == KindMe {
		line = concat("* ", nick, " ", text)
	} else {
		line = concat(nick, ": ", text)
	}
	if b := r.fanout(sender, line); b != nil && sender != nil && sender.sess != nil {
		sender.backlog.Store(&b)
	}
}

// privateCluster is a private message in cluster mode.
func (u *User) privateCluster(to, text string) {
	r := u.room
	rp := r.rep
	var target *User
	var toNick string
	// Folded before taking the lock, as private does: folding is the
	// costly part, and joins and leaves wait behind the read lock.
	fold, ferr := FoldNick(to)
	r.mu.RLock()
	if ferr == nil {
		target = r.byFold[fold]
	}
	if target != nil {
		toNick = target.nick
	}
	linked := rp.linked
	from := u.nick
	r.mu.RUnlock()
	switch {
	case target == nil:
		u.sess.Deliver([]byte("! no such user: " + to))
		return
	case !linked && target.node != rp.self:
		u.sess.Deliver([]byte("! " + toNick + " is on another server, out of reach while the cluster link is down"))
		return
	}
	p := &Private{From: rp.self, To: target.node, Sender: u.id, SenderNick: from, Target: target.id, Text: text}
	if !linked {
		r.deliverPrivate(p)
	} else {
		// Not before this node's own events published so far have come
		// back: the target must see the sender's earlier lines first.
		rp.pubMu.Lock()
		if len(rp.pending) > 0 {
			rp.outbox = append(rp.outbox, p)
			rp.pubMu.Unlock()
		} else {
			// The last own event may have come back a moment ago and
			// its log position not be recorded as applied yet.
			floor := rp.echoSeq
			rp.pubMu.Unlock()
			r.sendPrivate(p, floor)
		}
	}
	u.sess.Deliver(concat("[private to ", toNick, "] ", text))
}

// sendPrivate sends p now: stamped with the log position applied here, so
// that its target's node delivers it only once it has applied as much.
func (r *Room) sendPrivate(p *Private, floor uint64) {
	rp := r.rep
	rp.seqMu.Lock()
	p.Gate = max(rp.appliedSeq, floor)
	rp.seqMu.Unlock()
	if p.To == rp.self {
		// Its gate holds here too: the sender's last line may have come
		// back from the log and not be delivered yet (Apply delivers a
		// run of lines after settling their echoes).
		r.ReceivePrivate(p)
		return
	}
	rp.link.Private(p)
}

// ReceivePrivate takes a private message from another node: delivered to
// its target here once this node has applied the log as far as the sender's
// node had (so it does not overtake the sender's earlier public lines).
//
// It joins the queue of held messages even when its position is applied:
// an earlier one of the same sender may be in it, being released.
func (r *Room) ReceivePrivate(p *Private) {
	rp := r.rep
	rp.seqMu.Lock()
	rp.held = append(rp.held, heldPrivate{p: p, at: time.Now()})
	rp.seqMu.Unlock()
	r.releaseHeld(gateApplied)
}

// gateApplied says that h's log position has been applied here.
func gateApplied(h heldPrivate, applied uint64) bool { return h.p.Gate <= applied }

// allHeld releases every held message (the link went down or came up).
func allHeld(heldPrivate, uint64) bool { return true }

// ReleaseHeld delivers private messages held for longer than d: the log
// position they wait for may never come (an event lost with the link).
func (r *Room) ReleaseHeld(d time.Duration) {
	r.releaseHeld(func(h heldPrivate, applied uint64) bool {
		return gateApplied(h, applied) || time.Since(h.at) >= d
	})
}

// releaseHeld delivers the held private messages that are ready, in the
// order they came. One release at a time (privMu): what another takes
// from the queue meanwhile is delivered after these.
func (r *Room) releaseHeld(ready func(h heldPrivate, applied uint64) bool) {
	rp := r.rep
	rp.privMu.Lock()
	defer rp.privMu.Unlock()
	rp.seqMu.Lock()
	if len(rp.held) == 0 {
		rp.seqMu.Unlock()
		return
	}
	var out []*Private
	keep := rp.held[:0]
	for _, h := range rp.held {
		if ready(h, rp.appliedSeq) {
			out = append(out, h.p)
		} else {
			keep = append(keep, h)
		}
	}
	clear(rp.held[len(keep):])
	rp.held = keep
	rp.seqMu.Unlock()
	for _, p := range out {
		r.deliverPrivate(p)
	}
}

func (r *Room) deliverPrivate(p *Private) {
	r.mu.RLock()
	t := r.rep.byID[userKey{r.rep.self, p.Target}]
	if t != nil && !t.gone && t.sess != nil {
		t.sess.Deliver(concat("[private] ", p.SenderNick, ": ", p.Text))
	}
	r.mu.RUnlock()
}

// Apply applies one message of the log, at log position seq: a batch of
// events from one node. The link calls it for every message, in log order,
// from one goroutine.
func (r *Room) Apply(seq uint64, evs []Replicated) {
	rp := r.rep
	rp.applyMu.Lock()
	defer rp.applyMu.Unlock()
	var flush []*Private
	var run []*Replicated
	var done []chan struct{}
	for i := range evs {
		ev := &evs[i]
		own := ev.Node == rp.self
		if own {
			skip, f, d := r.echoed(ev, seq, done)
			flush, done = append(flush, f...), d
			if skip {
				continue
			}
		}
		if ev.Kind == KindMsg || ev.Kind == KindMe {
			run = append(run, ev)
			continue
		}
		r.deliverRun(run)
		run = run[:0]
		r.mu.Lock()
		r.applyPresenceLocked(ev, false)
		r.mu.Unlock()
	}
	r.deliverRun(run)
	r.advance(seq, flush)
	for _, d := range done {
		close(d) // AnnounceGone's caller frees the claims only now
	}
}

// echoed settles an own event that came back from the log: it is no longer
// pending. skip says it was applied already, locally, while the link was
// down. flush is the private messages that waited for the pending events;
// done, the channels to close once the events are applied.
func (r *Room) echoed(ev *Replicated, seq uint64, done []chan struct{}) (skip bool, flush []*Private, _ []chan struct{}) {
	rp := r.rep
	rp.pubMu.Lock()
	defer rp.pubMu.Unlock()
	rp.echoSeq = seq
	skip = ev.Seq <= rp.localUpTo
	// Own events come back in the order published. Older ones still
	// pending were lost by the log (a publish dropped while the
	// connection stayed up): they stay pending, and the link goes down,
	// which applies them here (a join among them would wait forever
	// otherwise) and makes the node sync its users when it is back.
	lost := 0
	for lost < len(rp.pending) && rp.pending[lost].Seq < ev.Seq {
		lost++
	}
	if lost < len(rp.pending) && rp.pending[lost].Seq == ev.Seq {
		if d := rp.pending[lost].done; d != nil {
			done = append(done, d)
		}
		if lost == 0 {
			rp.pending[0] = nil
			rp.pending = rp.pending[1:]
		} else {
			rp.pending = slices.Delete(rp.pending, lost, lost+1)
		}
	}
	if lost > 0 && !rp.lostTold {
		rp.lostTold = true // once until the link is down
		go rp.link.Trouble("the cluster's log lost " + strconv.Itoa(lost) + " of this server's events")
	}
	if len(rp.pending) == 0 && len(rp.outbox) > 0 {
		flush, rp.outbox = rp.outbox, nil
	}
	return skip, flush, done
}

// deliverRun keeps consecutive public messages of the log and hands them to
// everybody here but their senders: each recipient gets all of them in a
// row, so that its writer sends them in one write.
func (r *Room) deliverRun(run []*Replicated) {
	if len(run) == 0 {
		return
	}
	rp := r.rep
	r.mu.RLock()
	defer r.mu.RUnlock()
	lines := make([][]byte, len(run))
	senders := make([]*User, len(run))
	r.hist.mu.Lock()
	for i, ev := range run {
		e := Event{Time: ev.Time, Kind: ev.Kind, Nick: ev.Nick, Text: ev.Text, Node: ev.NodeName}
		r.hist.addLocked(e)
		if r.cfg.Record != nil {
			r.cfg.Record(e)
		}
		if ev.Kind == KindMe {
			lines[i] = concat("* ", ev.Nick, " ", ev.Text)
		} else {
			lines[i] = concat(ev.Nick, ": ", ev.Text)
		}
		if ev.Node == rp.self {
			senders[i] = rp.byID[userKey{rp.self, ev.User}]
		}
	}
	r.hist.mu.Unlock()
	var backlogs []<-chan struct{}
	for _, m := range r.members {
		for i, l := range lines {
			if m == senders[i] {
				continue
			}
			if b := m.sess.Deliver(l); b != nil && senders[i] != nil {
				if backlogs == nil {
					backlogs = make([]<-chan struct{}, len(run))
				}
				if backlogs[i] == nil {
					backlogs[i] = b
				}
			}
		}
	}
	for i, b := range backlogs {
		if b != nil && senders[i].sess != nil {
			senders[i].backlog.Store(&b)
		}
	}
}

// advance records the applied log position, then sends what waited for it.
func (r *Room) advance(seq uint64, flush []*Private) {
	rp := r.rep
	rp.seqMu.Lock()
	if seq > rp.appliedSeq {
		rp.appliedSeq = seq
	}
	rp.seqMu.Unlock()
	for _, p := range flush {
		r.sendPrivate(p, seq)
	}
	r.releaseHeld(gateApplied)
}

// applyPresenceLocked applies a join, leave, rename, sync or gone event;
// r.mu is held for writing. silent applies it to the roster only (a
// snapshot's window).
func (r *Room) applyPresenceLocked(ev *Replicated, silent bool) {
	rp := r.rep
	own := ev.Node == rp.self
	k := userKey{ev.Node, ev.User}
	switch ev.Kind {
	case KindJoin:
		if own {
			u := rp.pendingJoin[ev.User]
			if u == nil {
				return // a window's old own event; local users are known
			}
			delete(rp.pendingJoin, ev.User)
			r.applyJoinLocked(u, ev.Time, silent)
			return
		}
		if _, ok := rp.byID[k]; ok {
			return
		}
		u := &User{room: r, nick: ev.Nick, fold: ev.Fold, idx: -1, clusterUser: &clusterUser{node: ev.Node, id: ev.User}}
		r.addRemoteLocked(u)
		if !silent {
			r.recordAt(ev.Time, KindJoin, ev.Nick, "", ev.NodeName)
			r.announceJoinLocked(nil, ev.Nick, len(rp.byID))
		}
	case KindLeave:
		if own && silent {
			return
		}
		r.applyLeaveLocked(k, ev.Text, ev.Time, ev.NodeName, silent)
	case KindNick:
		if own && silent {
			return
		}
		u, ok := rp.byID[k]
		if !ok {
			return
		}
		if own && u.done != nil {
			defer func() { close(u.done); u.done = nil }()
		}
		r.applyRenameLocked(u, ev.Nick, ev.Fold, ev.Time, ev.NodeName, silent, own && u.claimed)
	case KindSync:
		if own {
			return // the room built it from its own state
		}
		r.applySyncLocked(ev, silent)
	case KindGone:
		if ev.Text == rp.self {
			if !silent && !own {
				// Somebody took this node for dead: its claims may
				// be gone. The link re-establishes them.
				go rp.link.Trouble("the cluster took this node for dead")
			}
			return
		}
		var gone []userKey
		for k := range rp.byID {
			if k.node == ev.Text {
				gone = append(gone, k)
			}
		}
		slices.SortFunc(gone, func(a, b userKey) int { return cmp.Compare(a.id, b.id) })
		for _, k := range gone {
			r.applyLeaveLocked(k, "", ev.Time, ev.NodeName, silent)
		}
	}
}

func (r *Room) addRemoteLocked(u *User) {
	rp := r.rep
	rp.byID[userKey{u.node, u.id}] = u
	r.byFold[u.fold] = u
	r.online.Store(int64(len(rp.byID)))
}

// applySyncLocked makes the roster's users of node ev.Node those of the
// event: the differences are announced as leaves, renames and joins.
func (r *Room) applySyncLocked(ev *Replicated, silent bool) {
	rp := r.rep
	want := make(map[uint64]Member, len(ev.Users))
	for _, m := range ev.Users {
		want[m.ID] = m
	}
	var gone []userKey
	for k := range rp.byID {
		if k.node == ev.Node {
			if _, ok := want[k.id]; !ok {
				gone = append(gone, k)
			}
		}
	}
	slices.SortFunc(gone, func(a, b userKey) int { return cmp.Compare(a.id, b.id) })
	for _, k := range gone {
		r.applyLeaveLocked(k, "", ev.Time, ev.NodeName, silent)
	}
	for _, m := range ev.Users {
		k := userKey{ev.Node, m.ID}
		if u, ok := rp.byID[k]; ok {
			if u.nick != m.Nick {
				r.applyRenameLocked(u, m.Nick, m.Fold, ev.Time, ev.NodeName, silent, false)
			}
			continue
		}
		u := &User{room: r, nick: m.Nick, fold: m.Fold, idx: -1, clusterUser: &clusterUser{node: ev.Node, id: m.ID}}
		r.addRemoteLocked(u)
		if !silent {
			r.recordAt(ev.Time, KindJoin, m.Nick, "", ev.NodeName)
			r.announceJoinLocked(nil, m.Nick, len(rp.byID))
		}
	}
}

// LinkDown puts the room in local mode: its own events that have not come
// back from the log are applied here at once, in order, and local users are
// told. Idempotent.
func (r *Room) LinkDown() {
	rp := r.rep
	rp.applyMu.Lock()
	defer rp.applyMu.Unlock()
	r.mu.Lock()
	if !rp.linked {
		r.mu.Unlock()
		return
	}
	rp.linked = false
	rp.pubMu.Lock()
	pending, outbox := rp.pending, rp.outbox
	rp.pending, rp.outbox = nil, nil
	rp.localUpTo = rp.pubSeq
	rp.lostTold = false
	rp.pubMu.Unlock()
	for _, ev := range pending {
		if ev.done != nil {
			close(ev.done)
		}
		switch ev.Kind {
		case KindMsg, KindMe:
			r.applyMessageLocked(rp.byID[userKey{rp.self, ev.User}], ev.Kind, ev.Nick, ev.Text, ev.Time, ev.NodeName)
		default:
			r.applyPresenceLocked(ev, false)
		}
	}
	r.deliverLocked(nil, NoticeLinkLost)
	// Private messages still waiting for this node's earlier events to
	// come back: those to its own users are delivered here; those to
	// other servers cannot be, and their senders, who saw "[private to
	// X]", are told.
	type undelivered struct {
		from     *User
		to, text string
	}
	var lost []undelivered
	for _, p := range outbox {
		if p.To == rp.self {
			continue
		}
		from, to := rp.byID[userKey{rp.self, p.Sender}], rp.byID[userKey{p.To, p.Target}]
		if from != nil && from.sess != nil && to != nil {
			lost = append(lost, undelivered{from, to.nick, p.Text})
		}
	}
	r.mu.Unlock()
	for _, p := range outbox {
		if p.To == rp.self {
			r.deliverPrivate(p)
		}
	}
	for _, l := range lost {
		l.from.sess.Deliver([]byte("! " + l.to + " is on another server, out of reach while the cluster link is down; not delivered: " + l.text))
	}
	r.releaseHeld(allHeld)
}

// Linked reports whether the room is connected to its cluster.
func (r *Room) Linked() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.rep != nil && r.rep.linked
}

// LocalMembers lists this node's users (for the link to check their claims).
func (r *Room) LocalMembers() []Member {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Member, 0, len(r.members))
	for _, u := range r.members {
		out = append(out, Member{Node: u.node, ID: u.id, Nick: u.nick, Fold: u.fold})
	}
	return out
}

// LinkUp connects the room to its cluster again (or for the first time):
// the other nodes' users are taken from snap, the recent history from its
// window, and this node's users are announced to the others with a sync
// event. Every local user must hold a claim in snap.Claims; those who do
// not are returned and the room stays in local mode (the link claims them
// and calls again).
func (r *Room) LinkUp(snap *Snapshot) (unclaimed []Member) {
	rp := r.rep
	rp.applyMu.Lock()
	defer rp.applyMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range r.members {
		if c, ok := snap.Claims[u.fold]; !ok || c.Node != rp.self || c.ID != u.id {
			unclaimed = append(unclaimed, Member{Node: rp.self, ID: u.id, Nick: u.nick, Fold: u.fold})
		}
	}
	if len(unclaimed) > 0 || rp.linked {
		return unclaimed
	}
	// The roster: local users, plus everybody the claims name elsewhere.
	for k, u := range rp.byID {
		if k.node != rp.self {
			delete(rp.byID, k)
			if r.byFold[u.fold] == u {
				delete(r.byFold, u.fold)
			}
		}
	}
	for _, c := range snap.Claims {
		if c.Node == rp.self {
			continue
		}
		// One claim per user: the cluster keeps a renaming user's
		// latest (Snapshot.Claims).
		r.addRemoteLocked(&User{room: r, nick: c.Nick, fold: c.Fold, idx: -1, clusterUser: &clusterUser{node: c.Node, id: c.ID}})
	}
	var msgs []Event
	for i := range snap.Window {
		ev := &snap.Window[i]
		switch ev.Kind {
		case KindMsg, KindMe:
			msgs = append(msgs, Event{Time: ev.Time, Kind: ev.Kind, Nick: ev.Nick, Text: ev.Text, Node: ev.NodeName})
		default:
			// This node's own users are known here; but a node this
			// one declared dead concerns everybody else's.
			if ev.Node != rp.self || ev.Kind == KindGone {
				r.applyPresenceLocked(ev, true)
			}
		}
	}
	r.hist.reset(msgs)
	r.online.Store(int64(len(rp.byID)))
	for _, u := range r.members {
		u.claimed = true
	}

	rp.seqMu.Lock()
	rp.appliedSeq = snap.Seq
	rp.seqMu.Unlock()
	rp.pubMu.Lock()
	// Own events from before are history now; so are their echoes.
	rp.localUpTo = rp.pubSeq
	rp.pubMu.Unlock()
	rp.linked = true
	users := make([]Member, 0, len(r.members))
	for _, u := range r.members {
		users = append(users, Member{Node: rp.self, ID: u.id, Nick: u.nick, Fold: u.fold})
	}
	r.publishLocked(&Replicated{Kind: KindSync, Users: users})
	if rp.up {
		r.deliverLocked(nil, NoticeLinkRestored)
	}
	rp.up = true
	go r.releaseHeld(allHeld)
	return nil
}

// ForceRename renames local user id to nick (fold), in local mode, because
// its nickname was claimed elsewhere while the link was down. The link has
// claimed the new nickname already.
func (r *Room) ForceRename(id uint64, nick, fold string) {
	rp := r.rep
	r.mu.Lock()
	defer r.mu.Unlock()
	u := rp.byID[userKey{rp.self, id}]
	if u == nil || u.gone || u.sess == nil {
		rp.link.Release(fold, id)
		return
	}
	if rp.linked {
		// Never while linked: the link renames only users it could not
		// claim, and only before LinkUp.
		rp.link.Release(fold, id)
		return
	}
	u.sess.Deliver([]byte("* " + u.nick + " was claimed on another server while the cluster link was down"))
	u.claimed = true
	r.applyRenameLocked(u, nick, fold, r.cfg.Now(), rp.link.NodeName(), false, false)
}

// AnnounceGone publishes that node died: every node removes its users, each
// with one leave notice. The channel is closed once the event has been
// applied here; nil if the room is not linked.
func (r *Room) AnnounceGone(node string) <-chan struct{} {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.rep.linked {
		return nil
	}
	done := make(chan struct{})
	r.publishLocked(&Replicated{Kind: KindGone, Text: node, done: done})
	return done
}

// LocalHolder reports the id of the user of this node who holds fold.
func (r *Room) LocalHolder(fold string) (uint64, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := r.byFold[fold]
	if u == nil || u.node != r.rep.self || u.gone {
		return 0, false
	}
	return u.id, true
}
