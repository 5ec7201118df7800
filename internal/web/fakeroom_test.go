package web_test

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"netchat/internal/web"
)

// peerWait bounds every wait of the fake room and its users.
const peerWait = 10 * time.Second

// fakeRoom stands in for the chat room behind /ws until the real session
// glue exists: it speaks the lines of docs/PROTOCOL.md that the page reads
// (greeting, nickname refusals, welcome, join/leave/rename notices, /who,
// messages, /me, private messages, /quit), one text frame per line. It is
// deliberately small: the room's rules are tested in internal/chat.
type fakeRoom struct {
	name string

	mu    sync.Mutex
	users map[string]*fakeUser // by lower-cased nickname
	conns map[*websocket.Conn]bool
}

type fakeUser struct {
	nick string
	c    *websocket.Conn
}

var fakeNickRE = regexp.MustCompile(`^[\p{L}\p{N}_-]{1,20}$`)

func newFakeRoom(name string) *fakeRoom {
	return &fakeRoom{name: name, users: map[string]*fakeUser{}, conns: map[*websocket.Conn]bool{}}
}

// send writes one line; a client that cannot take it within the bound is
// the test's failure to notice, not the room's to wait for.
func send(c *websocket.Conn, line string) {
	ctx, cancel := context.WithTimeout(context.Background(), peerWait)
	defer cancel()
	_ = c.Write(ctx, websocket.MessageText, []byte(line))
}

// othersLocked sends line to every user but skip; r.mu is held, so every
// user sees the room's lines in one order.
func (r *fakeRoom) othersLocked(skip *fakeUser, line string) {
	for _, u := range r.users {
		if u != skip {
			send(u.c, line)
		}
	}
}

// serveWS is the fake's Config.ServeWS.
func (r *fakeRoom) serveWS(s *web.Server, w http.ResponseWriter, req *http.Request, _ netip.AddrPort) {
	c, err := websocket.Accept(w, req, s.AcceptOptions())
	if err != nil {
		return
	}
	defer c.CloseNow()
	r.mu.Lock()
	r.conns[c] = true
	send(c, "Welcome to netchat ("+r.name+")! "+strconv.Itoa(len(r.users))+" users online. Please enter a nickname:")
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
	}()

	var me *fakeUser
	ctx := context.Background()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			break
		}
		line := string(data)
		if strings.TrimSpace(line) == "" {
			continue
		}
		if me == nil {
			me = r.join(c, strings.TrimSpace(line))
			continue
		}
		if !r.handle(me, line) {
			// Gone from the room before the close handshake, which
			// waits for the client to answer.
			r.mu.Lock()
			delete(r.conns, c)
			r.mu.Unlock()
			c.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
	if me != nil {
		r.leave(me, "")
	}
}

func (r *fakeRoom) join(c *websocket.Conn, nick string) *fakeUser {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !fakeNickRE.MatchString(nick):
		send(c, "! invalid nickname: use only letters, digits, _ and - (1-20 characters)")
		return nil
	case r.users[strings.ToLower(nick)] != nil:
		send(c, "! nickname taken: "+nick)
		return nil
	}
	u := &fakeUser{nick: nick, c: c}
	r.users[strings.ToLower(nick)] = u
	n := strconv.Itoa(len(r.users))
	send(c, "* Welcome, "+nick+"! "+n+" users online. Type /help for commands.")
	r.othersLocked(u, "* "+nick+" joined ("+n+" online)")
	return u
}

func (r *fakeRoom) leave(u *fakeUser, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.users[strings.ToLower(u.nick)] != u {
		return
	}
	delete(r.users, strings.ToLower(u.nick))
	line := "* " + u.nick + " left (" + strconv.Itoa(len(r.users)) + " online)"
	if reason != "" {
		line += ": " + reason
	}
	r.othersLocked(u, line)
}

// handle runs one line of a joined user; false means the user quit.
func (r *fakeRoom) handle(u *fakeUser, line string) bool {
	word, rest, _ := strings.Cut(line, " ")
	switch {
	case line == "l" || word == "/who":
		r.mu.Lock()
		var nicks []string
		for _, o := range r.users {
			nicks = append(nicks, o.nick)
		}
		r.mu.Unlock()
		sort.Slice(nicks, func(i, j int) bool { return strings.ToLower(nicks[i]) < strings.ToLower(nicks[j]) })
		send(u.c, "* "+strconv.Itoa(len(nicks))+" online: "+strings.Join(nicks, ", "))
	case word == "/nick" || strings.HasPrefix(line, "n:"):
		nick := strings.TrimSpace(rest)
		if word != "/nick" {
			nick = strings.TrimSpace(line[2:])
		}
		r.rename(u, nick)
	case word == "/me":
		r.mu.Lock()
		r.othersLocked(u, "* "+u.nick+" "+rest)
		r.mu.Unlock()
	case word == "/msg" || strings.HasPrefix(line, "c:"):
		var to, text string
		if word == "/msg" {
			to, text, _ = strings.Cut(rest, " ")
		} else {
			to, text, _ = strings.Cut(line[2:], ":")
		}
		r.mu.Lock()
		target := r.users[strings.ToLower(to)]
		r.mu.Unlock()
		if target == nil {
			send(u.c, "! no such user: "+to)
			break
		}
		send(target.c, "[private] "+u.nick+": "+text)
		send(u.c, "[private to "+to+"] "+text)
	case word == "/quit" || line == "quit":
		send(u.c, "* bye")
		r.leave(u, rest)
		return false
	case strings.HasPrefix(line, "//"):
		r.broadcast(u, line[1:])
	case strings.HasPrefix(line, "/"):
		send(u.c, "! unknown command: "+word+" (try /help)")
	case strings.HasPrefix(line, "b:"):
		r.broadcast(u, line[2:])
	default:
		r.broadcast(u, line)
	}
	return true
}

func (r *fakeRoom) broadcast(u *fakeUser, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.othersLocked(u, u.nick+": "+text)
}

func (r *fakeRoom) rename(u *fakeUser, nick string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !fakeNickRE.MatchString(nick) {
		send(u.c, "! invalid nickname: use only letters, digits, _ and - (1-20 characters)")
		return
	}
	if o := r.users[strings.ToLower(nick)]; o != nil && o != u {
		send(u.c, "! nickname taken: "+nick)
		return
	}
	old := u.nick
	delete(r.users, strings.ToLower(old))
	u.nick = nick
	r.users[strings.ToLower(nick)] = u
	line := "* " + old + " is now known as " + nick
	send(u.c, line)
	r.othersLocked(u, line)
}

// shutdown ends every session as the real server does on SIGTERM: a last
// line, then a normal close.
func (r *fakeRoom) shutdown() {
	r.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			send(c, "* server shutting down")
			c.Close(websocket.StatusNormalClosure, "")
		})
	}
	wg.Wait()
}

// startFakeRoom serves the page with a fake room behind /ws and returns
// the room and the page's URL.
func startFakeRoom(t *testing.T, name string) (*fakeRoom, string) {
	t.Helper()
	room := newFakeRoom(name)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var s *web.Server
	s, err = web.New(web.Config{
		ServeWS: func(w http.ResponseWriter, r *http.Request, remote netip.AddrPort) { room.serveWS(s, w, r, remote) },
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return room, "http://" + ln.Addr().String() + "/"
}

// wsPeer is a second user of the room speaking the protocol over a Go
// WebSocket client, as the page does.
type wsPeer struct {
	t    *testing.T
	c    *websocket.Conn
	nick string
}

// joinWS connects to the WebSocket of the page at pageURL as nick and
// returns once the room welcomed it.
func joinWS(t *testing.T, pageURL, nick string) chatPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerWait)
	defer cancel()
	url := "ws" + strings.TrimPrefix(pageURL, "http") + "ws"
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", nick, url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	p := &wsPeer{t: t, c: c, nick: nick}
	p.ExpectPrefix("Welcome to netchat (")
	p.Send(nick)
	p.ExpectPrefix("* Welcome, " + nick + "! ")
	return p
}

func (p *wsPeer) Send(line string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerWait)
	defer cancel()
	if err := p.c.Write(ctx, websocket.MessageText, []byte(line)); err != nil {
		p.t.Fatalf("%s: sending %q: %v", p.nick, line, err)
	}
}

// ExpectPrefix reads lines until one starts with prefix and returns it.
func (p *wsPeer) ExpectPrefix(prefix string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerWait)
	defer cancel()
	var seen []string
	for {
		_, data, err := p.c.Read(ctx)
		if err != nil {
			p.t.Fatalf("%s: waiting for %q (after %q): %v", p.nick, prefix, seen, err)
		}
		if strings.HasPrefix(string(data), prefix) {
			return string(data)
		}
		seen = append(seen, string(data))
	}
}

func (p *wsPeer) Expect(line string) {
	p.t.Helper()
	if got := p.ExpectPrefix(line); got != line {
		p.t.Fatalf("%s: got %q, want %q", p.nick, got, line)
	}
}

func (p *wsPeer) Close() {
	p.c.Close(websocket.StatusGoingAway, "")
}

// TestFakeRoom checks the fake against the protocol lines the page relies
// on, so that the browser tests test the page and not the fake.
func TestFakeRoom(t *testing.T) {
	t.Parallel()
	_, pageURL := startFakeRoom(t, "fake")
	alice := joinWS(t, pageURL, "alice")
	bob := joinWS(t, pageURL, "bob")
	alice.Expect("* bob joined (2 online)")
	alice.Send("hi")
	bob.Expect("alice: hi")
	bob.Send("/who")
	bob.Expect("* 2 online: alice, bob")
	bob.Send("/nick Bobby")
	bob.Expect("* bob is now known as Bobby")
	alice.Expect("* bob is now known as Bobby")
	alice.Send("/msg Bobby psst")
	alice.Expect("[private to Bobby] psst")
	bob.Expect("[private] alice: psst")
	bob.Send("/quit lunch")
	bob.Expect("* bye")
	alice.Expect("* Bobby left (1 online): lunch")
}
