package web_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"netchat/internal/chat"
	"netchat/internal/server"
	"netchat/internal/web"
)

// realRoom is the real chat server with the page in front of it: the
// browser tests' room in earnest. Its other users are telnet-style TCP
// users. It can be restarted on the same web address, so that the page's
// reconnect can be tested against a real shutdown.
type realRoom struct {
	t       *testing.T
	name    string
	webAddr string

	mu       sync.Mutex
	chat     *server.Server
	page     *web.Server
	chatAddr string
}

func startRealRoom(t *testing.T, name string) *realRoom {
	t.Helper()
	r := &realRoom{t: t, name: name, webAddr: "127.0.0.1:0"}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// start runs a fresh chat server and the page in front of it.
func (r *realRoom) start() {
	t := r.t
	room := chat.NewRoom(chat.Config{Name: r.name, History: 20, NoticeBatchAbove: 500})
	cfg := server.Defaults()
	cfg.MaxConnsPerIP = 0
	srv := server.New(room, cfg)
	chatLn, err := srv.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(chatLn) }()
	page, err := web.New(web.Config{Sessions: srv})
	if err != nil {
		t.Fatal(err)
	}
	webLn, err := net.Listen("tcp", r.webAddr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = page.Serve(webLn) }()
	r.mu.Lock()
	r.chat, r.page, r.chatAddr, r.webAddr = srv, page, chatLn.Addr().String(), webLn.Addr().String()
	r.mu.Unlock()
}

func (r *realRoom) stop() {
	r.mu.Lock()
	srv, page := r.chat, r.page
	r.mu.Unlock()
	_ = page.Close()
	ctx, cancel := context.WithTimeout(context.Background(), peerWait)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// restart shuts the server down as SIGTERM does (every session gets
// "* server shutting down" and, on WebSocket, a normal close) and starts
// a new one on the same web address.
func (r *realRoom) restart() {
	r.stop()
	r.start()
}

func (r *realRoom) underTest() roomUnderTest {
	return roomUnderTest{
		pageURL: "http://" + r.webAddr + "/",
		join:    r.joinTCP,
		dropAll: r.restart,
	}
}

// tcpPeer is a telnet-style user of the real room.
type tcpPeer struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	nick string
}

func (r *realRoom) joinTCP(t *testing.T, nick string) chatPeer {
	t.Helper()
	r.mu.Lock()
	addr := r.chatAddr
	r.mu.Unlock()
	c, err := net.DialTimeout("tcp", addr, peerWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := &tcpPeer{t: t, c: c, r: bufio.NewReader(c), nick: nick}
	p.ExpectPrefix("Welcome to netchat (")
	p.Send(nick)
	p.ExpectPrefix("* Welcome, " + nick + "! ")
	return p
}

func (p *tcpPeer) Send(line string) {
	p.t.Helper()
	_ = p.c.SetWriteDeadline(time.Now().Add(peerWait))
	if _, err := p.c.Write([]byte(line + "\r\n")); err != nil {
		p.t.Fatalf("%s: sending %q: %v", p.nick, line, err)
	}
}

// ExpectPrefix reads lines until one starts with prefix and returns it.
func (p *tcpPeer) ExpectPrefix(prefix string) string {
	p.t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(peerWait))
	var seen []string
	for {
		l, err := p.r.ReadString('\n')
		if err != nil {
			p.t.Fatalf("%s: waiting for %q (after %q): %v", p.nick, prefix, seen, err)
		}
		l = strings.TrimSuffix(l, "\r\n")
		if strings.HasPrefix(l, prefix) {
			return l
		}
		seen = append(seen, l)
	}
}

func (p *tcpPeer) Expect(line string) {
	p.t.Helper()
	if got := p.ExpectPrefix(line); got != line {
		p.t.Fatalf("%s: got %q, want %q", p.nick, got, line)
	}
}

func (p *tcpPeer) Close() { p.c.Close() }

// TestPageRealServer runs the page's scenario in Chromium against the real
// chat server: the other users are TCP (telnet/nc) users, hostile HTML
// from them is shown as text, and after a real shutdown the page shows it
// and reconnects to the restarted server.
func TestPageRealServer(t *testing.T) {
	t.Parallel()
	checkPage(t, startRealRoom(t, "real").underTest())
}
