package server

import (
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"netchat/internal/chat"
	"netchat/internal/line"
)

// Reasons a session can expire from outside its input (see session.expire).
const (
	expireNick     = "nickname timeout"
	expireIdle     = "idle"
	expireShutdown = "shutdown"
)

// transport is the connection under a session: TCP (plain or TLS) or a
// WebSocket. The session decides everything a user sees; the transport
// moves bytes and knows how to pause its input and how to hang up.
type transport interface {
	// pauseInput stops input until resumeInput: the session is stalled
	// (producer pacing) or holds more unprocessed lines than it wants.
	// Both are called with the session's input lock held.
	pauseInput()
	resumeInput()
	// stopInput ends input for good; the input lock is held.
	stopInput()
	// closeGraceful hangs up after the output was flushed, so that the
	// client gets every line (TCP: FIN, then drain what it still sends;
	// WebSocket: a close frame with code 1000).
	closeGraceful()
	// closeHard hangs up at once; reset asks TCP for a reset, for a peer
	// that does not read.
	closeHard(reset bool)
}

// session is one client of the room, whatever carries it: the nickname
// step, commands, flood control, pacing, the idle and nickname timeouts,
// the last-line rules and the ending. It consumes lines and produces
// lines; transports turn bytes or frames into lines and back.
type session struct {
	srv      *Server
	t        transport
	out      output
	ipKey    netip.Prefix // the per-IP limit's key (an address, or an IPv6 network)
	remote   string
	since    time.Time
	isJoined atomic.Bool
	lastIn   atomic.Int64 // unix nanoseconds of the last input (idle timeout)

	// Input side, guarded by inMu.
	inMu   sync.Mutex
	ended  bool
	user   *chat.User
	clean  []byte // scratch for sanitised lines; a poller lends its own
	held   []heldLine
	heldN  int  // bytes in held
	paused bool // too much input is held: stop reading
	// stalled is set while a stall runs; budget is the stall time left
	// for the current read (see stall).
	stalled  bool
	busy     bool // a call that may block on the network runs (see runBlocking)
	inputOff bool // the transport's input is paused
	budget   time.Duration
	timer    *time.Timer // runs held lines when the first is due
}

// held line kinds: a line, or an event that must keep its place after
// the lines before it.
const (
	heldLine_ uint8 = iota
	heldTooLong
	heldAYT
	heldInterrupt
	heldEOF
)

// heldLine is input that arrived but cannot run yet: flood control lags
// it, or the session is stalled, or lines before it are held.
type heldLine struct {
	kind     uint8
	admitted bool      // flood control has passed it (decided on arrival)
	due      time.Time // when it may run
	line     []byte    // sanitised
}

// maxHeld bounds the input a session holds before it stops reading its
// client; flood control keeps lagged lines far below it.
const maxHeld = 64 << 10

func newSession(s *Server, t transport, ipKey netip.Prefix, remote string) *session {
	ss := &session{srv: s, t: t, ipKey: ipKey, remote: remote, since: time.Now()}
	ss.out.srv = s
	ss.out.s = ss
	return ss
}

// Deliver implements chat.Session. It never blocks.
func (s *session) Deliver(l []byte) <-chan struct{} {
	return s.out.deliver(l, false)
}

// deliverLast queues l as the last line the client gets: anything
// delivered later, such as other users leaving during a shutdown, is
// dropped.
func (s *session) deliverLast(l []byte) {
	s.out.deliver(l, true)
}

// say queues a line for this client only.
func (s *session) say(l string) { s.out.deliver([]byte(l), false) }

// ---- input ----

// startRead begins a transport read: the stall budget is per read, as
// nats-server bounds the stalls of one read loop pass.
func (s *session) startRead() {
	s.budget = s.srv.stallMax
	if s.srv.cfg.IdleTimeout > 0 {
		s.lastIn.Store(time.Now().UnixNano())
	}
}

// inputLine handles one raw input line (without terminator); inMu is held.
func (s *session) inputLine(raw []byte) {
	if s.ended {
		return
	}
	s.srv.m.lineIn(len(raw))
	if h := s.srv.cfg.testHookLine; h != nil {
		h(raw)
	}
	s.clean = line.Sanitize(s.clean[:0], raw)
	if len(s.held) > 0 || s.waiting() {
		if s.user != nil && line.IsBlank(s.clean) {
			return
		}
		s.hold(heldLine_, s.clean)
		return
	}
	s.runLine(s.clean, false)
}

// inputEvent handles an input event that must keep its order with lines.
func (s *session) inputEvent(kind uint8) {
	if s.ended {
		return
	}
	if len(s.held) > 0 || s.waiting() {
		s.hold(kind, nil)
		return
	}
	s.runEvent(kind)
}

// hold queues input that cannot run yet; lines are admitted on arrival.
func (s *session) hold(kind uint8, l []byte) {
	h := heldLine{kind: kind}
	quit := kind == heldInterrupt
	if kind == heldLine_ {
		text := string(l)
		if s.user != nil {
			v, d := s.user.Admit(text)
			switch v {
			case chat.Dropped:
				return
			case chat.Flooded:
				s.flooded()
				return
			}
			h.admitted, h.due = true, time.Now().Add(d)
		}
		h.line = append([]byte(nil), l...)
		quit = chat.Parse(text).Op == chat.OpQuit
	}
	s.held = append(s.held, h)
	s.heldN += len(h.line)
	if quit {
		// Leaving is never lagged: what is held runs now, in order,
		// then the user leaves.
		for i := range s.held {
			s.held[i].due = time.Time{}
		}
		if !s.waiting() {
			s.runHeld()
		}
		return
	}
	if s.heldN > maxHeld {
		s.paused = true
		s.syncInput()
	}
}

// waiting reports whether held input must wait: a stall or a blocking
// call is under way.
func (s *session) waiting() bool { return s.stalled || s.busy }

// syncInput pauses or resumes the transport's input to match the
// session's state: input is off while stalled, while a blocking call runs
// and while too much is held. inMu is held.
func (s *session) syncInput() {
	off := (s.waiting() || s.paused) && !s.ended
	if off == s.inputOff || s.ended {
		return
	}
	s.inputOff = off
	if off {
		s.t.pauseInput()
	} else {
		s.t.resumeInput()
	}
}

// runLine runs one sanitised line; admitted says flood control passed it.
func (s *session) runLine(l []byte, admitted bool) {
	if s.user == nil {
		s.nickLine(l)
		return
	}
	if line.IsBlank(l) {
		return
	}
	text := string(l)
	if !admitted {
		v, d := s.user.Admit(text)
		switch v {
		case chat.Dropped:
			return
		case chat.Flooded:
			s.flooded()
			return
		case chat.RunLater:
			// Lagged: it runs when due, and everything after it waits.
			// It goes first: lines still held behind it arrived later.
			h := heldLine{kind: heldLine_, admitted: true, due: time.Now().Add(d), line: append([]byte(nil), l...)}
			s.held = append(s.held, heldLine{})
			copy(s.held[1:], s.held)
			s.held[0] = h
			s.heldN += len(l)
			s.scheduleHeld()
			return
		}
	}
	if s.srv.blocking && s.srv.room.MayBlock(text) {
		// A rename in a cluster claims the nickname over the network.
		s.runBlocking(func() func() {
			end, backlog := s.user.Run(text)
			return func() { s.afterRun(end, backlog) }
		})
		return
	}
	s.afterRun(s.user.Run(text))
}

// afterRun handles what Run returned; inMu is held.
func (s *session) afterRun(end chat.End, backlog <-chan struct{}) {
	switch end {
	case chat.Stay:
		if backlog != nil {
			s.stall(backlog)
		}
	case chat.Flood:
		s.flooded()
	default:
		s.endSession("quit", true)
	}
}

// runBlocking runs call, which may block on the network (a cluster's
// nickname claim), on a goroutine of its own, never on a poller that
// serves other sessions. Meanwhile the session's input waits (held in
// order, and the transport not read); then the function call returned
// runs with inMu held, and the held input goes on. inMu is held.
func (s *session) runBlocking(call func() (then func())) {
	s.busy = true
	s.syncInput()
	go func() {
		then := call()
		s.inMu.Lock()
		defer s.inMu.Unlock()
		defer s.recoverSession()
		s.busy = false
		then()
		if !s.ended {
			s.runHeld()
		}
	}()
}

func (s *session) flooded() {
	s.srv.m.flood()
	s.endSession("flooding", true)
}

// nickLine is the nickname step (SPEC §2.1).
func (s *session) nickLine(l []byte) {
	nick := strings.TrimSpace(string(l))
	if nick == "" {
		return
	}
	// The welcome and the recent history are queued as the user joins;
	// they must never trip the slow-consumer rule of a client that reads
	// (a history of long lines can be larger than the send queue), so
	// they are allowed on top of it until they are written.
	s.out.mu.Lock()
	before := s.out.q.n
	s.out.allowance = 1 << 30
	s.out.mu.Unlock()
	join := func() (*chat.User, error) {
		return s.srv.room.Join(s, nick, chat.Info{RemoteAddr: s.remote, Since: s.since})
	}
	if !s.srv.blocking {
		u, err := join()
		s.joined(nick, u, err, before)
		return
	}
	s.runBlocking(func() func() {
		u, err := join()
		return func() {
			if s.ended {
				// Gone while joining (a timeout, a shutdown).
				if u != nil {
					u.Leave("")
				}
				return
			}
			s.joined(nick, u, err, before)
		}
	})
}

// joined completes the nickname step; inMu is held.
func (s *session) joined(nick string, u *chat.User, err error, before int) {
	s.out.mu.Lock()
	s.out.allowance = max(s.out.q.n-before, 0)
	s.out.mu.Unlock()
	if err != nil {
		s.say("! " + err.Error())
		return
	}
	s.user = u
	s.lastIn.Store(time.Now().UnixNano())
	s.isJoined.Store(true)
	s.srv.log.Debug("joined", "remote", s.remote, "nick", nick)
}

// runEvent runs an input event.
func (s *session) runEvent(kind uint8) {
	switch kind {
	case heldTooLong:
		s.say("! line too long (max " + strconv.Itoa(s.srv.cfg.MaxLine) + " bytes)")
	case heldAYT:
		s.say("* yes")
	case heldInterrupt:
		// Ctrl-C in telnet ends the session like /quit.
		if s.user != nil {
			s.user.Run("/quit")
		}
		s.endSession("quit", true)
	case heldEOF:
		s.endSession("eof", true)
	}
}

// scheduleHeld arms the timer for the first held line, or runs it if due.
func (s *session) scheduleHeld() {
	if len(s.held) == 0 || s.waiting() || s.ended {
		return
	}
	d := time.Until(s.held[0].due)
	if d <= 0 {
		s.runHeld()
		return
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.onTimer)
	} else {
		s.timer.Reset(d)
	}
}

func (s *session) onTimer() {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	defer s.recoverSession()
	s.runHeld()
}

// runHeld runs the held input that is due, in order, until something
// must wait again; inMu is held.
func (s *session) runHeld() {
	for len(s.held) > 0 && !s.waiting() && !s.ended {
		h := s.held[0]
		if h.kind == heldLine_ && time.Until(h.due) > 0 {
			s.scheduleHeld()
			return
		}
		s.held[0] = heldLine{}
		s.held = s.held[1:]
		s.heldN -= len(h.line)
		if h.kind == heldLine_ {
			s.runLine(h.line, h.admitted)
		} else {
			s.runEvent(h.kind)
		}
	}
	if len(s.held) == 0 {
		s.held = nil
	}
	if s.paused && s.heldN <= maxHeld/2 {
		s.paused = false
	}
	s.syncInput()
}

// stall pauses this session's input because a line it sent went to a
// client whose queue is above its high-water mark: TCP flow control then
// paces the sender, and a reader that drains catches up instead of being
// cut off by one burst. A stall ends when the laggard has caught up or
// after at most stallEpisode, and the stalls of one read add up to at most
// Config.StallMax, so a sender is never held longer than that for what it
// sent in one read, and never anybody else. inMu is held.
func (s *session) stall(backlog <-chan struct{}) {
	ttl := min(stallEpisode, s.budget)
	if ttl <= 0 {
		return
	}
	if h := s.srv.cfg.testHookStall; h != nil {
		h(ttl, s.srv.stallMax-s.budget)
	}
	s.stalled = true
	s.syncInput()
	s.srv.m.stall()
	start := time.Now()
	go func() {
		t := time.NewTimer(ttl)
		select {
		case <-backlog:
		case <-t.C:
		}
		t.Stop()
		s.inMu.Lock()
		defer s.inMu.Unlock()
		defer s.recoverSession()
		s.budget -= time.Since(start)
		s.stalled = false
		if !s.ended {
			s.runHeld() // resumes the input unless it must stay off
		}
	}()
}

// stallEpisode bounds one stall; Config.StallMax bounds the stalls of one
// read. nats-server stalls 2–5 ms per episode and 10 ms per read.
const stallEpisode = 5 * time.Millisecond

// inputTooLong reports a line over the limit.
func (s *session) inputTooLong() { s.inputEvent(heldTooLong) }

// inputEOF handles the client's half-close: every line it sent is answered
// before the connection closes (SPEC §2.4).
func (s *session) inputEOF() { s.inputEvent(heldEOF) }

// ---- lifetime ----

// greeting is the first line a connection gets.
func (s *session) greeting() []byte { return []byte(s.srv.room.Greeting()) }

// endSession marks the session over and closes the connection on another
// goroutine (gracefully: after flushing). inMu is held. It is idempotent.
func (s *session) endSession(why string, graceful bool) {
	if s.ended {
		return
	}
	s.ended = true
	s.isJoined.Store(false)
	s.held, s.heldN = nil, 0
	if s.timer != nil {
		s.timer.Stop()
	}
	s.t.stopInput()
	nick := ""
	if s.user != nil {
		s.user.Leave("")
		nick = s.user.Nick()
	}
	go func() {
		if graceful {
			s.finish(why)
		} else {
			s.out.closeNow(why)
		}
		s.srv.forget(s)
		s.out.mu.Lock()
		reason := s.out.why
		s.out.mu.Unlock()
		s.srv.log.Info("disconnect", "remote", s.remote, "nick", nick, "reason", reason,
			"duration", time.Since(s.since).Round(time.Millisecond))
	}()
}

// endAsync ends the session of a connection that was just closed. The
// session's input side must learn of it: a poller does not notice a socket
// closed under it. Asynchronous, because the caller may hold this
// session's inMu (a user's own command overflowing its queue).
func (s *session) endAsync(why string) {
	go func() {
		s.inMu.Lock()
		s.endSession(why, false)
		s.inMu.Unlock()
	}()
}

// finish waits (bounded) until everything queued has been written, then
// hangs up gracefully.
func (s *session) finish(why string) {
	s.out.mu.Lock()
	if s.out.why == "" {
		s.out.why = why
	}
	s.out.mu.Unlock()
	if !s.out.waitDrained(closeLinger) {
		s.out.closeNow(why)
		return
	}
	s.out.mu.Lock()
	dead := s.out.dead
	s.out.markDead(why)
	s.out.mu.Unlock()
	if dead {
		return
	}
	s.t.closeGraceful()
}

// expire ends the session from outside its input: a timeout found by the
// sweeper, or a shutdown.
func (s *session) expire(kind string) {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.ended {
		return
	}
	switch kind {
	case expireNick:
		if s.user != nil {
			return // joined in the meantime
		}
		s.say("! nickname timeout")
	case expireIdle:
		// The sweeper's view may be a moment old: input that arrived since
		// keeps the user.
		if s.user == nil || time.Since(time.Unix(0, s.lastIn.Load())) < s.srv.cfg.IdleTimeout {
			return
		}
		s.say(chat.IdleNotice(s.srv.cfg.IdleTimeout))
	}
	s.endSession(kind, true)
}

// recoverSession contains a panic in one session's input processing: it is
// logged and that session is closed; the server and every other session
// go on. Deferred with inMu held.
func (s *session) recoverSession() {
	if p := recover(); p != nil {
		s.srv.log.Error("session panic", "remote", s.remote, "panic", p, "stack", string(debug.Stack()))
		s.endSession("internal error", false)
	}
}
