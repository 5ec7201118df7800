package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"netchat/internal/chat"
	"netchat/internal/cluster"
	"netchat/internal/server"
)

// wait bounds every wait for something that should happen.
const wait = 15 * time.Second

// testNode is one netchat server of a cluster: a node, its room, and the
// TCP server in front of it.
type testNode struct {
	name string
	node *cluster.Node
	room *chat.Room
	srv  *server.Server
	addr string
	stop func()
}

type nodeOpts struct {
	history int
	ttl     time.Duration
	record  func(chat.Event)
}

func logger(name string) *slog.Logger {
	if testing.Verbose() || os.Getenv("NETCHAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startNode starts a node of the cluster at url, serving on a loopback port.
func startNode(t testing.TB, url, name string, o nodeOpts) *testNode {
	t.Helper()
	if o.ttl == 0 {
		o.ttl = 30 * time.Second
	}
	if o.history == 0 {
		o.history = 5
	}
	n, err := cluster.Connect(context.Background(), cluster.Options{URLs: url, Name: name, NodeTTL: o.ttl, Logger: logger(name)})
	if err != nil {
		t.Fatal(err)
	}
	room := chat.NewClusterRoom(chat.Config{Name: "test", History: o.history, NoticeBatchAbove: 500, Record: o.record}, n)
	if err := n.Start(context.Background(), room); err != nil {
		t.Fatal(err)
	}
	sc := server.Defaults()
	sc.MaxConnsPerIP = 0
	sc.Logger = logger(name)
	srv := server.New(room, sc)
	ln, err := srv.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tn := &testNode{name: name, node: n, room: room, srv: srv, addr: ln.Addr().String()}
	stopped := false
	tn.stop = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		_ = n.Close(ctx)
	}
	t.Cleanup(tn.stop)
	return tn
}

// client is a raw TCP chat client.
type client struct {
	t    testing.TB
	name string
	c    net.Conn
	r    *bufio.Reader
}

// dial connects to addr and returns the client and its greeting.
func dial(t testing.TB, addr string) (*client, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c, r: bufio.NewReader(c)}
	return cl, cl.next()
}

// join connects to addr as nick and returns the client after its welcome
// line, which it checks against welcome if given.
func join(t testing.TB, addr, nick string, welcome string) *client {
	t.Helper()
	c, _ := dial(t, addr)
	c.name = nick
	c.send(nick)
	got := c.next()
	if welcome != "" && got != welcome {
		t.Fatalf("%s: welcome %q, want %q", nick, got, welcome)
	}
	if !strings.HasPrefix(got, "* Welcome, ") {
		t.Fatalf("%s: got %q, want a welcome", nick, got)
	}
	return c
}

func (c *client) send(line string) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c.c, line+"\r\n"); err != nil {
		c.t.Fatalf("%s: send %q: %v", c.name, line, err)
	}
}

// next reads the next line (without CR LF).
func (c *client) next() string {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(wait))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("%s: read: %v (partial %q)", c.name, err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("%s: line %q does not end in CR LF", c.name, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads the next lines and checks them, in order.
func (c *client) expect(lines ...string) {
	c.t.Helper()
	for _, want := range lines {
		if got := c.next(); got != want {
			c.t.Fatalf("%s: got %q, want %q", c.name, got, want)
		}
	}
}

// until reads lines until want and returns the lines before it.
func (c *client) until(want string) []string {
	c.t.Helper()
	var before []string
	for {
		l := c.next()
		if l == want {
			return before
		}
		before = append(before, l)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The node-kill test runs a node in a child process (this test binary,
// re-executed): these variables tell it where to connect.
const (
	envChildURL  = "NETCHAT_CLUSTER_CHILD_URL"
	envChildName = "NETCHAT_CLUSTER_CHILD_NAME"
	envChildTTL  = "NETCHAT_CLUSTER_CHILD_TTL"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(envChildURL); url != "" {
		runChild(url, os.Getenv(envChildName), os.Getenv(envChildTTL))
		return
	}
	os.Exit(m.Run())
}

// runChild is a node that prints its chat address and serves until it is
// killed (or its stdin closes).
func runChild(url, name, ttl string) {
	d, err := time.ParseDuration(ttl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	n, err := cluster.Connect(context.Background(), cluster.Options{URLs: url, Name: name, NodeTTL: d})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	room := chat.NewClusterRoom(chat.Config{Name: "test", History: 5, NoticeBatchAbove: 500}, n)
	if err := n.Start(context.Background(), room); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	sc := server.Defaults()
	sc.MaxConnsPerIP = 0
	srv := server.New(room, sc)
	ln, err := srv.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	go func() { _ = srv.Serve(ln) }()
	fmt.Println("ADDR", ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// openBucket opens one of the cluster's key-value buckets on the NATS
// server at url, over a connection of the test's own.
func openBucket(t *testing.T, url, name string) jetstream.KeyValue {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	kv, err := js.KeyValue(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// nickFree tries to join n's room as nick (and leaves at once).
func nickFree(n *testNode, nick string) bool {
	u, err := n.room.Join(nullSession{}, nick, chat.Info{})
	if err == nil {
		u.Leave("")
	}
	return err == nil
}
