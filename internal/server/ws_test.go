package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"netchat/internal/chat"
)

type connKey struct{}

// startWeb serves WebSocket sessions of s on a loopback HTTP server, the
// way internal/web does, and returns the /ws URL.
func (s *testServer) startWeb(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
			if err != nil {
				return
			}
			s.ServeWebSocket(ws, r.Context().Value(connKey{}).(net.Conn), netip.MustParseAddrPort(r.RemoteAddr))
		}),
	}
	go func() { _ = hs.Serve(WrapListener(ln)) }()
	t.Cleanup(func() { _ = hs.Close() })
	return "ws://" + ln.Addr().String() + "/ws"
}

// wsClient is a WebSocket chat client for tests.
type wsClient struct {
	t    testing.TB
	name string
	ws   *websocket.Conn
}

func dialWS(t testing.TB, url string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &wsClient{t: t, ws: ws}
}

// joinWS connects to url as nick and consumes the greeting and welcome.
func joinWS(t testing.TB, url, nick string) *wsClient {
	t.Helper()
	c := dialWS(t, url)
	c.name = nick
	c.expectPrefix("Welcome to netchat (")
	c.send(nick)
	c.expectPrefix("* Welcome, " + nick + "! ")
	return c
}

func (c *wsClient) send(lines ...string) {
	c.t.Helper()
	for _, l := range lines {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		err := c.ws.Write(ctx, websocket.MessageText, []byte(l))
		cancel()
		if err != nil {
			c.t.Fatalf("%s: send %q: %v", c.name, l, err)
		}
	}
}

func (c *wsClient) read() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err == nil && typ != websocket.MessageText {
		err = errors.New("not a text frame")
	}
	return string(b), err
}

func (c *wsClient) readLine() string {
	c.t.Helper()
	l, err := c.read()
	if err != nil {
		c.t.Fatalf("%s: reading a frame: %v", c.name, err)
	}
	if strings.ContainsAny(l, "\r\n") {
		c.t.Fatalf("%s: frame %q holds a line terminator", c.name, l)
	}
	return l
}

func (c *wsClient) expect(want string) {
	c.t.Helper()
	if got := c.readLine(); got != want {
		c.t.Fatalf("%s: got %q, want %q", c.name, got, want)
	}
}

func (c *wsClient) expectPrefix(p string) {
	c.t.Helper()
	if got := c.readLine(); !strings.HasPrefix(got, p) {
		c.t.Fatalf("%s: got %q, want a line starting with %q", c.name, got, p)
	}
}

// expectClose reads until the server closes and returns the lines and
// the close status.
func (c *wsClient) expectClose() ([]string, websocket.StatusCode) {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.read()
		if err != nil {
			st := websocket.CloseStatus(err)
			if st == -1 {
				c.t.Fatalf("%s: waiting for the close: %v (lines %q)", c.name, err, lines)
			}
			return lines, st
		}
		lines = append(lines, l)
	}
}

// TestWebSocketAndTCPShareTheRoom: a browser user and a telnet user chat
// both ways, privately too, see each other in /who and renames, and a
// closed tab gives exactly one leave notice.
func TestWebSocketAndTCPShareTheRoom(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(rc *chat.Config, _ *Config) { rc.History = 0 })
	url := s.startWeb(t)
	tcp := s.join(t, "telnetter")
	web := joinWS(t, url, "browser")
	tcp.expect("* browser joined (2 online)")

	web.send("hello from the web")
	tcp.expect("browser: hello from the web")
	tcp.send("hello from telnet")
	web.expect("telnetter: hello from telnet")
	web.send("/me waves")
	tcp.expect("* browser waves")

	web.send("/msg telnetter psst")
	web.expect("[private to telnetter] psst")
	tcp.expect("[private] browser: psst")
	tcp.send("c:browser:back")
	tcp.expect("[private to browser] back")
	web.expect("[private] telnetter: back")

	web.send("/who")
	web.expect("* 2 online: browser, telnetter")
	web.send("/nick surfer")
	web.expect("* browser is now known as surfer")
	tcp.expect("* browser is now known as surfer")

	// The server answers the close handshake (else Close waits 5s and
	// fails).
	if err := web.ws.Close(websocket.StatusGoingAway, "tab closed"); err != nil {
		t.Fatalf("closing: %v", err)
	}
	tcp.expect("* surfer left (1 online)")
	tcp.expectNothing()
	waitFor(t, "the connection to be forgotten", func() bool { return s.Conns() == 1 })
}

// TestWebSocketLimits: a frame longer than --max-line gets the same reply
// as a long TCP line and the session goes on; the connection limit counts
// WebSocket clients too, and a refused one gets the reason as a frame.
func TestWebSocketLimits(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(rc *chat.Config, sc *Config) {
		rc.History = 0
		sc.MaxLine = 64
		sc.MaxConns = 2
	})
	url := s.startWeb(t)
	tcp := s.join(t, "tcp")
	web := joinWS(t, url, "web")
	tcp.expect("* web joined (2 online)")
	web.send(strings.Repeat("x", 65))
	web.expect("! line too long (max 64 bytes)")
	web.send(strings.Repeat("y", 64))
	tcp.expect("web: " + strings.Repeat("y", 64))

	third := dialWS(t, url)
	lines, st := third.expectClose()
	if strings.Join(lines, "|") != "! server full, try again later" || st != websocket.StatusTryAgainLater {
		t.Fatalf("the third client got %q and close status %v", lines, st)
	}
	// Control characters from a browser never reach others either.
	web.send("a\x1b[2Jb\x07c")
	tcp.expect("web: a[2Jbc")
}

// TestWebSocketShutdown: on shutdown a browser user gets the notice as
// the last line and a normal close (1000).
func TestWebSocketShutdown(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	url := s.startWeb(t)
	web := joinWS(t, url, "web")
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		errc <- s.Shutdown(ctx)
	}()
	lines, st := web.expectClose()
	if strings.Join(lines, "|") != "* server shutting down" || st != websocket.StatusNormalClosure {
		t.Fatalf("got %q and close status %v, want the notice and 1000", lines, st)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketIdleTimeout: the idle timeout applies to browser users.
func TestWebSocketIdleTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(_ *chat.Config, sc *Config) { sc.IdleTimeout = 300 * time.Millisecond })
	url := s.startWeb(t)
	web := joinWS(t, url, "web")
	lines, st := web.expectClose()
	if strings.Join(lines, "|") != "* disconnected: idle for 300ms" || st != websocket.StatusNormalClosure {
		t.Fatalf("got %q and close status %v", lines, st)
	}
}

// TestWebSocketKeepalive: the server pings every KeepAlive; a browser
// that answers stays, one that does not (here: a client that never reads,
// so its pongs are never sent) is dropped with one leave notice.
func TestWebSocketKeepalive(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(rc *chat.Config, sc *Config) {
		rc.History = 0
		sc.KeepAlive = 150 * time.Millisecond
	})
	url := s.startWeb(t)
	tcp := s.join(t, "watcher")
	alive := joinWS(t, url, "alive")
	tcp.expect("* alive joined (2 online)")
	// alive reads all the time (its library answers the pings meanwhile).
	got := make(chan string, 16)
	go func() {
		for {
			l, err := alive.read()
			if err != nil {
				close(got)
				return
			}
			got <- l
		}
	}()
	mute := dialWS(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, _, err := mute.ws.Read(ctx); err != nil { // the greeting, then no more reading
		t.Fatal(err)
	}
	if err := mute.ws.Write(ctx, websocket.MessageText, []byte("mute")); err != nil {
		t.Fatal(err)
	}
	tcp.expect("* mute joined (3 online)")
	tcp.expect("* mute left (2 online)")
	// Several pings later alive is still there.
	tcp.send("/who")
	tcp.expect("* 2 online: alive, watcher")
	for _, want := range []string{"* mute joined (3 online)", "* mute left (2 online)"} {
		select {
		case l, ok := <-got:
			if !ok || l != want {
				t.Fatalf("alive got %q (open %v), want %q", l, ok, want)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("alive: %q did not arrive", want)
		}
	}
}
