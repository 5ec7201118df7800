// Package chat is the chat room: users, nicknames, commands and notices.
//
// It knows nothing about sockets. A transport (TCP/TLS, WebSocket, a cluster
// bridge) implements Session for each connection, calls Room.Join with the
// nickname the user chose, then feeds every sanitised input line to
// User.Handle and calls User.Leave when the connection ends. Everything the
// user should see comes back through Session.Deliver.
package chat

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Session is the transport side of one user.
type Session interface {
	// Deliver queues one line for the user. line carries no terminator; the
	// transport adds its own (CR LF on TCP). The same slice is handed to
	// every recipient of a broadcast, so Deliver must copy what it keeps
	// and must not modify it. Deliver must never block: a transport that
	// cannot keep up drops the user (slow consumer) instead of stalling the
	// sender.
	//
	// Deliver returns nil, or, while the user is falling behind (its
	// output queue is above a high-water mark), a channel that is closed
	// once it has caught up. The room hands that channel to the transport
	// of the user whose line caused the delivery (see User.Run), which may
	// then stop reading that user for a moment: producer pacing, as
	// nats-server stalls a fast producer.
	Deliver(line []byte) (backlog <-chan struct{})
}

// Event is a public event, handed to Config.Record for the transcript.
// Private messages are never events.
type Event struct {
	Time time.Time
	Kind string // msg, me, join, leave, nick
	Nick string
	Text string // message; new nickname for "nick"; quit reason for "leave"
	// Node is the name of the node the event happened on, in cluster
	// mode; empty otherwise.
	Node string
}

// Event kinds.
const (
	KindMsg   = "msg"
	KindMe    = "me"
	KindJoin  = "join"
	KindLeave = "leave"
	KindNick  = "nick"
)

// Config holds the room's settings; the zero value of each field is usable.
type Config struct {
	// Name appears in the greeting.
	Name string
	// History is how many recent public messages a joining user is shown.
	History int
	// NoticeBatchAbove: while at most this many users are online, every
	// join and leave is its own notice; above it they are summed into one
	// line per second so a join storm costs O(N) lines, not O(N²).
	// Negative disables batching.
	NoticeBatchAbove int
	// MsgRate is the per-user token bucket rate in lines/s (0 = no limit)
	// and MsgBurst its depth.
	MsgRate  float64
	MsgBurst int
	// Record, if set, receives every public event. It must not block, and
	// for joins and leaves it is called with the room locked, so it must
	// not call back into the room.
	Record func(Event)
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// Room is one chat room. All methods are safe for concurrent use.
type Room struct {
	cfg Config

	// mu guards the membership. Fan-out holds it for reading while it
	// walks members (Deliver never blocks, so that is short); joins and
	// leaves take it for writing and change members in place in O(1), so
	// a storm of N joins costs O(N), not the O(N²) of copy-on-write.
	mu      sync.RWMutex
	byFold  map[string]*User
	members []*User // in no particular order; User.idx is the position
	online  atomic.Int64

	batch   sync.Mutex
	joined  int
	left    int
	pending bool // a flush is scheduled

	hist history

	rep *replica // cluster mode; nil in a single process (see replica.go)
}

// NewRoom returns an empty room.
func NewRoom(cfg Config) *Room {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Name == "" {
		cfg.Name = "netchat"
	}
	if cfg.MsgBurst <= 0 {
		cfg.MsgBurst = 1
	}
	r := &Room{cfg: cfg, byFold: make(map[string]*User)}
	r.hist.init(cfg.History)
	return r
}

// Online is the number of joined users.
func (r *Room) Online() int { return int(r.online.Load()) }

// Greeting is the first line a new connection gets, before the nickname.
func (r *Room) Greeting() string {
	return "Welcome to netchat (" + r.cfg.Name + ")! " + strconv.Itoa(r.Online()) +
		" users online. Please enter a nickname:"
}

// Info describes the connection behind a user, for /whoami.
type Info struct {
	RemoteAddr string
	Since      time.Time
}

// User is a joined member of the room.
type User struct {
	room *Room
	sess Session
	info Info

	// nick and fold change only on rename, under room.mu; the user's own
	// goroutine (the only one that renames) may read them without the lock.
	nick string
	fold string
	idx  int  // position in room.members, guarded by room.mu
	gone bool // guarded by room.mu
	// dropIdx indexes drops; small, next to gone, so that a user stays in
	// its allocation size class.
	dropIdx uint8
	// left is gone, readable without the lock: after Leave, Admit, Run
	// and Handle do nothing.
	left atomic.Bool

	*clusterUser // cluster mode only (replica.go); nil in a single process

	limiter *rate.Limiter
	lagMax  time.Duration // the longest delay flood control imposes before dropping
	drops   [floodDrops]time.Time
}

// Nick is the user's current nickname.
func (u *User) Nick() string {
	u.room.mu.RLock()
	defer u.room.mu.RUnlock()
	return u.nick
}

// Join adds a user with the given nickname. On success the user has been
// sent the welcome line and the recent history, and everybody else the join
// notice. The error, if any, is a *NickError whose text the user should see.
//
// In a single process Join never blocks. In cluster mode (JoinBlocks) it
// claims the nickname cluster-wide and waits until the join has come back
// from the cluster's log: it may block on the network, bounded by a few
// seconds (past them the room carries on alone, see replica.go).
func (r *Room) Join(s Session, nick string, info Info) (*User, error) {
	if r.rep != nil {
		return r.joinCluster(s, nick, info)
	}
	fold, err := FoldNick(nick)
	if err != nil {
		return nil, err
	}
	u := r.newUser(s, nick, fold, info)

	r.mu.Lock()
	if _, taken := r.byFold[fold]; taken {
		r.mu.Unlock()
		return nil, &NickError{Nick: nick, Taken: true}
	}
	r.byFold[fold] = u
	u.idx = len(r.members)
	r.members = append(r.members, u)
	online := len(r.members)
	r.online.Store(int64(online))
	// The welcome and history are queued while the lock keeps every
	// broadcast out, so none can overtake them.
	s.Deliver([]byte("* Welcome, " + nick + "! " + strconv.Itoa(online) +
		" users online. Type /help for commands."))
	r.hist.replay(s)
	// The join is recorded and announced before the lock is released too:
	// a user who joins right after must not get this notice, with its
	// older count, after a welcome that already counted this user; and the
	// transcript gets the events in the order users saw them.
	r.record(KindJoin, nick, "")
	batch := r.batching(online)
	if !batch {
		r.deliverLocked(u, "* "+nick+" joined ("+strconv.Itoa(online)+" online)")
	}
	r.mu.Unlock()

	if batch {
		r.presence(true)
	}
	return u, nil
}

// Leave removes the user and tells everybody else. It is idempotent: however
// a user goes (quit, EOF, reset, timeout, kick), there is exactly one leave
// notice. reason, if not empty, is appended to the notice (/quit REASON).
func (u *User) Leave(reason string) {
	r := u.room
	if r.rep != nil {
		u.leaveCluster(reason)
		return
	}
	r.mu.Lock()
	if u.gone {
		r.mu.Unlock()
		return
	}
	u.gone = true
	u.left.Store(true)
	delete(r.byFold, u.fold)
	r.removeMemberLocked(u)
	online := len(r.members)
	r.online.Store(int64(online))
	nick := u.nick
	// Recorded and announced under the lock, as in Join.
	r.record(KindLeave, nick, reason)
	text := nick + " left"
	batch := r.batching(online)
	if !batch {
		// The count goes before the reason so the notice keeps the
		// fixed shape "* NICK left (N online)" that scripts match on.
		line := "* " + text + " (" + strconv.Itoa(online) + " online)"
		if reason != "" {
			line += ": " + reason
		}
		r.deliverLocked(u, line)
	}
	r.mu.Unlock()

	if batch {
		r.presence(false)
	}
}

// batching reports whether, with online users, joins and leaves are summed
// into one notice per second rather than announced one by one.
func (r *Room) batching(online int) bool {
	return r.cfg.NoticeBatchAbove >= 0 && online > r.cfg.NoticeBatchAbove
}

// deliverLocked sends line to every joined user except skip; r.mu is held.
// It returns the backlog of the first recipient that is falling behind.
func (r *Room) deliverLocked(skip *User, line string) <-chan struct{} {
	return r.fanout(skip, []byte(line))
}

// fanout hands line to every member but skip; r.mu is held (read or
// write). It returns the backlog channel of the first recipient that
// reported one: pacing waits for one laggard at a time, as nats-server's
// stalledWait does.
func (r *Room) fanout(skip *User, line []byte) (backlog <-chan struct{}) {
	for _, m := range r.members {
		if m != skip {
			if b := m.sess.Deliver(line); b != nil && backlog == nil {
				backlog = b
			}
		}
	}
	return backlog
}

// presence adds a join or leave to the per-second summary that replaces
// the single notices in a big room (see batching).
func (r *Room) presence(join bool) {
	r.batch.Lock()
	if join {
		r.joined++
	} else {
		r.left++
	}
	if !r.pending {
		r.pending = true
		time.AfterFunc(time.Second, r.flushPresence)
	}
	r.batch.Unlock()
}

func (r *Room) flushPresence() {
	r.batch.Lock()
	j, l := r.joined, r.left
	r.joined, r.left, r.pending = 0, 0, false
	r.batch.Unlock()
	if j == 0 && l == 0 {
		return
	}
	r.deliverOthers(nil, []byte("* "+strconv.Itoa(j)+" joined, "+strconv.Itoa(l)+
		" left ("+strconv.Itoa(r.Online())+" online)"))
}

// deliverOthers hands line to every joined user except skip.
func (r *Room) deliverOthers(skip *User, line []byte) {
	r.mu.RLock()
	r.fanout(skip, line)
	r.mu.RUnlock()
}

func (r *Room) record(kind, nick, text string) {
	if r.cfg.Record != nil {
		r.cfg.Record(Event{Time: r.cfg.Now(), Kind: kind, Nick: nick, Text: text})
	}
}

// message keeps a public message (msg or me): the recent history and the
// transcript get the same event, with one timestamp, in the same order, so
// the history replayed after a restart is the one users saw.
func (r *Room) message(kind, nick, text string) {
	ev := Event{Time: r.cfg.Now(), Kind: kind, Nick: nick, Text: text}
	r.hist.mu.Lock()
	r.hist.addLocked(ev)
	if r.cfg.Record != nil {
		r.cfg.Record(ev)
	}
	r.hist.mu.Unlock()
}

// publish keeps a public message from u and sends line to everybody else.
// Both happen under the read lock, so a user who joins meanwhile gets the
// message exactly once: in the history Join replays, or live, never both.
func (r *Room) publish(u *User, kind, text string, line []byte) <-chan struct{} {
	r.mu.RLock()
	r.message(kind, u.nick, text)
	backlog := r.fanout(u, line)
	r.mu.RUnlock()
	return backlog
}

// Seed loads past public messages (oldest first) into the recent history,
// e.g. from the transcript after a restart. Events other than msg and me
// are ignored.
func (r *Room) Seed(events []Event) {
	for _, ev := range events {
		if ev.Kind == KindMsg || ev.Kind == KindMe {
			r.hist.add(ev)
		}
	}
}

// End says whether a session goes on after a line, and if not, why.
type End uint8

// Outcomes of User.Handle and User.Run.
const (
	Stay  End = iota // keep going
	Quit             // the user asked to leave
	Flood            // the user was cut off for flooding
)

// Verdict is flood control's decision on an input line (see User.Admit).
type Verdict uint8

// Verdicts of User.Admit.
const (
	RunNow   Verdict = iota // execute the line at once
	RunLater                // execute it after the returned delay, in order
	Dropped                 // dropped; the user has been told "! slow down"
	Flooded                 // the user was cut off for flooding and has left
)

// Admit applies flood control to a line as it arrives (SPEC §2.4), and
// Run executes it. They are separate so that a transport can decide on
// every line the moment it is read but execute it later.
//
// Within the token bucket a line runs at once. A line over the rate is
// not dropped while the excess is small: it is lagged (RunLater, with the
// delay after which the bucket covers it), as IRC servers' "fakelag" lets
// a pasted block through at the allowed pace. Only a line that would have
// to wait longer than a whole burst's worth (MsgBurst/MsgRate) is dropped
// with "! slow down", and floodDrops such drops within floodWindow
// disconnect the user. So a 30-line paste arrives whole, paced, while 200
// lines sent at once are mostly dropped and end in "! flooding".
//
// The transport must run lagged lines, and every line after them, in
// order; the delays Admit returns for later lines already account for the
// earlier ones.
func (u *User) Admit(line string) (Verdict, time.Duration) {
	if u.limiter == nil || u.left.Load() {
		return RunNow, 0
	}
	cmd := Parse(line)
	// Leaving always works, even without tokens (a user being told to
	// slow down must still be able to /quit).
	if cmd.Op == OpNone || cmd.Op == OpQuit {
		return RunNow, 0
	}
	now := u.room.cfg.Now()
	res := u.limiter.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	switch {
	case !res.OK() || delay > u.lagMax:
		res.CancelAt(now)
		if u.dropped() == Flood {
			return Flooded, 0
		}
		return Dropped, 0
	case delay > 0:
		return RunLater, delay
	}
	return RunNow, 0
}

// Handle admits and runs one input line at once (it never lags: a line
// over the rate is dropped). Transports use Admit and Run instead.
func (u *User) Handle(line string) End {
	switch v, _ := u.Admit(line); v {
	case Dropped:
		return Stay
	case Flooded:
		return Flood
	}
	end, _ := u.Run(line)
	return end
}

// Run executes one input line that Admit accepted. The line must already
// be sanitised (valid UTF-8, no control characters). When it returns
// anything but Stay the user has already left the room and been sent
// their last line; the transport should flush and close the connection.
//
// backlog, if not nil, is closed once a recipient that is falling behind
// has caught up: the transport may stop reading this user's input until
// then, within its own bounds (producer pacing).
//
// After Leave, Run does nothing and returns Quit. In cluster mode a rename
// may block on the network (see Room.MayBlock).
func (u *User) Run(line string) (end End, backlog <-chan struct{}) {
	if u.left.Load() {
		return Quit, nil
	}
	cmd := Parse(line)
	r := u.room
	if r.rep != nil {
		return u.runCluster(cmd)
	}
	switch cmd.Op {
	case OpNone:
	case OpBroadcast:
		backlog = r.publish(u, KindMsg, cmd.Text, concat(u.nick, ": ", cmd.Text))
	case OpMe:
		backlog = r.publish(u, KindMe, cmd.Text, concat("* ", u.nick, " ", cmd.Text))
	case OpPrivate:
		backlog = u.private(cmd.Arg, cmd.Text)
	case OpNick:
		backlog = u.rename(cmd.Arg)
	default:
		return u.runLocal(cmd), nil
	}
	return Stay, backlog
}

// runLocal answers the commands that concern only the user who typed them,
// the same in single-process and cluster mode.
func (u *User) runLocal(cmd Command) End {
	switch cmd.Op {
	case OpWho:
		u.sess.Deliver([]byte(u.room.who()))
	case OpHelp:
		for _, l := range helpLines {
			u.sess.Deliver([]byte(l))
		}
	case OpWhoAmI:
		u.sess.Deliver([]byte("* you are " + u.Nick() + ", connected from " + u.info.RemoteAddr +
			" since " + u.info.Since.Format(time.TimeOnly)))
	case OpQuit:
		u.sess.Deliver([]byte("* bye"))
		u.Leave(cmd.Text)
		return Quit
	case OpUnknown:
		u.sess.Deliver([]byte("! unknown command: " + cmd.Arg + " (try /help)"))
	case OpUsage:
		u.sess.Deliver([]byte("! " + cmd.Text))
	}
	return Stay
}

// Flood control (SPEC §2.4): this many dropped lines within floodWindow
// disconnect the user.
const (
	floodDrops  = 3
	floodWindow = 10 * time.Second
)

func (u *User) dropped() End {
	now := u.room.cfg.Now()
	u.drops[u.dropIdx] = now
	u.dropIdx = (u.dropIdx + 1) % floodDrops
	// drops[dropIdx] is now the oldest of the last floodDrops drops.
	if oldest := u.drops[u.dropIdx]; !oldest.IsZero() && now.Sub(oldest) < floodWindow {
		u.sess.Deliver([]byte("! flooding"))
		u.Leave("")
		return Flood
	}
	u.sess.Deliver([]byte("! slow down"))
	return Stay
}

func (u *User) private(to, text string) <-chan struct{} {
	r := u.room
	var target *User
	if fold, err := FoldNick(to); err == nil {
		r.mu.RLock()
		target = r.byFold[fold]
		r.mu.RUnlock()
	}
	if target == nil {
		u.sess.Deliver([]byte("! no such user: " + to))
		return nil
	}
	r.mu.RLock()
	toNick := target.nick
	r.mu.RUnlock()
	backlog := target.sess.Deliver(concat("[private] ", u.nick, ": ", text))
	u.sess.Deliver(concat("[private to ", toNick, "] ", text))
	return backlog
}

func (u *User) rename(nick string) <-chan struct{} {
	fold, err := FoldNick(nick)
	if err != nil {
		u.sess.Deliver([]byte("! " + err.Error()))
		return nil
	}
	r := u.room
	r.mu.Lock()
	if u.gone {
		// Left meanwhile (Leave from another goroutine): the nickname
		// must not come back into the room.
		r.mu.Unlock()
		return nil
	}
	if other, taken := r.byFold[fold]; taken && other != u {
		r.mu.Unlock()
		u.sess.Deliver([]byte("! " + (&NickError{Nick: nick, Taken: true}).Error()))
		return nil
	}
	old := u.nick
	if old == nick {
		r.mu.Unlock()
		u.sess.Deliver([]byte("! you are already " + nick))
		return nil
	}
	delete(r.byFold, u.fold)
	r.byFold[fold] = u
	u.nick, u.fold = nick, fold
	// Recorded and announced under the lock, as joins and leaves are, so
	// nobody who joins meanwhile sees a rename of someone they never saw.
	r.record(KindNick, old, nick)
	backlog := r.deliverLocked(nil, "* "+old+" is now known as "+nick)
	r.mu.Unlock()
	return backlog
}

// removeMemberLocked takes u off the fan-out list; r.mu is held for
// writing.
func (r *Room) removeMemberLocked(u *User) {
	if u.idx < 0 || u.idx >= len(r.members) || r.members[u.idx] != u {
		return
	}
	last := len(r.members) - 1
	moved := r.members[last]
	r.members[u.idx] = moved
	moved.idx = u.idx
	r.members[last] = nil
	r.members = r.members[:last]
	u.idx = -1
}

func (r *Room) who() string {
	r.mu.RLock()
	var nicks []string
	if r.rep != nil {
		nicks = make([]string, 0, len(r.rep.byID))
		for _, m := range r.rep.byID {
			nicks = append(nicks, m.nick)
		}
	} else {
		nicks = make([]string, 0, len(r.members))
		for _, m := range r.members {
			nicks = append(nicks, m.nick)
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(nicks, func(a, b string) int {
		if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return "* " + strconv.Itoa(len(nicks)) + " online: " + strings.Join(nicks, ", ")
}

// runCluster is Run in cluster mode: public actions go through the
// cluster's log (replica.go), the rest is answered here as in Run.
func (u *User) runCluster(cmd Command) (End, <-chan struct{}) {
	switch cmd.Op {
	case OpBroadcast:
		u.publicCluster(KindMsg, cmd.Text)
	case OpMe:
		u.publicCluster(KindMe, cmd.Text)
	case OpPrivate:
		u.privateCluster(cmd.Arg, cmd.Text)
	case OpNick:
		u.renameCluster(cmd.Arg)
	default:
		if end := u.runLocal(cmd); end != Stay {
			return end, nil
		}
	}
	// The fan-out of this user's earlier line ran on the link's goroutine;
	// a recipient it found falling behind paces this user now.
	if b := u.backlog.Swap(nil); b != nil {
		return Stay, *b
	}
	return Stay, nil
}

func newLimiter(perSec float64, burst int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSec), burst)
}

// concat builds a line with a single allocation.
func concat(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// IdleNotice is the last line a user gets when dropped for silence.
func IdleNotice(d time.Duration) string {
	return "* disconnected: idle for " + d.String()
}
