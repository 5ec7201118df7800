package server

import (
	"bufio"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"netchat/internal/chat"
)

func TestGreetingCountsUsers(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	c := s.dial(t)
	_ = c
	s.join(t, "alice")
	s.join(t, "bob")
	c2, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	cl := &client{t: t, name: "c2", c: c2, r: bufio.NewReader(c2)}
	cl.expect("Welcome to netchat (test)! 2 users online. Please enter a nickname:")
}

func TestJoinWelcomeAndNotice(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice := s.join(t, "alice")
	bob := s.dial(t)
	bob.name = "bob"
	bob.send("bob")
	bob.expect("* Welcome, bob! 2 users online. Type /help for commands.")
	alice.expect("* bob joined (2 online)")
	bob.expectNothing()
}

func TestNicknameRejections(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	s.join(t, "Alice")
	c := s.dial(t)
	for _, tc := range []struct{ nick, want string }{
		{"alice", "! nickname taken: alice"},
		{"ＡＬＩＣＥ", "! nickname taken: ＡＬＩＣＥ"},
		{"server", `! invalid nickname: "server" is reserved`},
		{"a b", "! invalid nickname: use only letters, digits, _ and - (1-20 characters)"},
		{strings.Repeat("x", 21), "! invalid nickname: too long (max 20 characters)"},
	} {
		c.send(tc.nick)
		c.expect(tc.want)
	}
	c.send("", "   ") // blank lines are not nickname attempts
	c.send(strings.Repeat("x", 20))
	c.expectPrefix("* Welcome, " + strings.Repeat("x", 20) + "! 2 users online.")
}

func TestBroadcastNotEchoed(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	cs := s.joinAll(t, "alice", "bob", "carol")
	alice, bob, carol := cs[0], cs[1], cs[2]

	alice.send("hello", "b:short form", "//slash")
	for _, c := range []*client{bob, carol} {
		c.expect("alice: hello")
		c.expect("alice: short form")
		c.expect("alice: /slash")
	}
	alice.expectNothing()
}

func TestPrivateMessages(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	cs := s.joinAll(t, "alice", "bob", "carol")
	alice, bob, carol := cs[0], cs[1], cs[2]

	alice.send("c:bob:psst")
	bob.expect("[private] alice: psst")
	alice.expect("[private to bob] psst")
	for _, form := range []string{"/msg", "/w", "/tell"} {
		alice.send(form + " BOB hi " + form)
		bob.expect("[private] alice: hi " + form)
		alice.expect("[private to bob] hi " + form)
	}
	alice.send("/msg dave hi", "c:dave:hi")
	alice.expect("! no such user: dave")
	alice.expect("! no such user: dave")
	carol.expectNothing()
}

func TestRenameThenPrivate(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice := s.join(t, "alice")
	bob := s.join(t, "bob")
	alice.expect("* bob joined (2 online)")

	bob.send("n:robert")
	bob.expect("* bob is now known as robert")
	alice.expect("* bob is now known as robert")
	alice.send("/msg robert hi")
	bob.expect("[private] alice: hi")
	alice.expect("[private to robert] hi")
	alice.send("/msg bob hi")
	alice.expect("! no such user: bob")

	bob.send("/nick alice")
	bob.expect("! nickname taken: alice")
	bob.send("/nick robert")
	bob.expect("! you are already robert")
	bob.send("/nick Robert") // same folded nick: only the spelling changes
	bob.expect("* robert is now known as Robert")
	alice.expect("* robert is now known as Robert")
	bob.send("/nick no way")
	bob.expectPrefix("! invalid nickname: ")

	// The old nickname is free again.
	s.join(t, "bob")
}

func TestWhoSortedCaseInsensitively(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	c := s.join(t, "carol")
	s.join(t, "Bob")
	s.join(t, "alice")
	for _, cmd := range []string{"l", "/who", "/list", "/names"} {
		c.send(cmd)
		c.expectEventually("* 3 online: alice, Bob, carol")
	}
}

func TestHelpMeWhoamiUnknown(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice := s.join(t, "alice")
	bob := s.join(t, "bob")
	alice.expect("* bob joined (2 online)")

	for _, cmd := range []string{"help", "/help"} {
		alice.send(cmd)
		first := alice.readLine()
		if !strings.HasPrefix(first, "* ") {
			t.Fatalf("help line %q", first)
		}
		for range len(chat.HelpLines()) - 1 {
			alice.expectPrefix("* ")
		}
	}
	alice.send("/me waves")
	bob.expect("* alice waves")
	alice.send("/whoami")
	re := regexp.MustCompile(`^\* you are alice, connected from 127\.0\.0\.1:\d+ since \d\d:\d\d:\d\d$`)
	if l := alice.readLine(); !re.MatchString(l) {
		t.Fatalf("whoami: %q", l)
	}
	alice.send("/anything-else", "/foo bar")
	alice.expect("! unknown command: /anything-else (try /help)")
	alice.expect("! unknown command: /foo (try /help)")
	alice.expectNothing()
	bob.expectNothing()
}

func TestLeaveNoticeExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		leave  func(c *client)
		notice string
	}{
		{"quit", func(c *client) { c.send("quit"); c.expect("* bye"); c.expectClosed() }, "* leaver left (1 online)"},
		{"byebye", func(c *client) { c.send("byebye"); c.expect("* bye"); c.expectClosed() }, "* leaver left (1 online)"},
		{"slash quit reason", func(c *client) { c.send("/quit gone fishing"); c.expect("* bye"); c.expectClosed() },
			"* leaver left (1 online): gone fishing"},
		{"eof", func(c *client) { _ = c.c.(*net.TCPConn).CloseWrite(); c.expectClosed() }, "* leaver left (1 online)"},
		{"reset", func(c *client) {
			_ = c.c.(*net.TCPConn).SetLinger(0)
			_ = c.c.Close()
		}, "* leaver left (1 online)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, nil)
			stay := s.join(t, "stay")
			leaver := s.join(t, "leaver")
			stay.expect("* leaver joined (2 online)")
			tc.leave(leaver)
			stay.expect(tc.notice)
			stay.expectNothing()
			waitFor(t, "the room to empty", func() bool { return s.Room().Online() == 1 })
			// The nickname is free again.
			again := s.join(t, "leaver")
			stay.expect("* leaver joined (2 online)")
			again.send("/who")
			again.expect("* 2 online: leaver, stay")
		})
	}
}

func TestLineEndings(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice := s.join(t, "alice")
	bob := s.join(t, "bob")
	alice.expect("* bob joined (2 online)")
	bob.write([]byte("lf\ncrlf\r\nbare cr\rcr nul\r\x00after\n"))
	for _, want := range []string{"lf", "crlf", "bare cr", "cr nul", "after"} {
		alice.expect("bob: " + want)
	}
	alice.expectNothing()
}

func TestHalfCloseAnswersEverything(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	s.join(t, "bob")
	c := s.dial(t)
	c.write([]byte("alice\n/who\n"))
	_ = c.c.(*net.TCPConn).CloseWrite()
	lines := c.expectClosed()
	want := []string{"* Welcome, alice! 2 users online. Type /help for commands.", "* 2 online: alice, bob"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q, want %q", lines, want)
	}
}

// TestNoticeBatching: above NoticeBatchAbove users, joins and leaves are
// summed into at most one line per second (SPEC §2.4), in the exact
// format scripts match, and the single notices stop.
func TestNoticeBatching(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(rc *chat.Config, _ *Config) { rc.NoticeBatchAbove = 2 })
	cs := s.joinAll(t, "alice", "bob")
	alice := cs[0]
	// Above 2 online: carol and dave join, bob leaves; nothing single.
	s.join(t, "carol")
	s.join(t, "dave")
	cs[1].send("/quit")
	cs[1].expectClosed()
	re := regexp.MustCompile(`^\* (\d+) joined, (\d+) left \((\d+) online\)$`)
	joined, left := 0, 0
	for joined < 2 || left < 1 {
		l := alice.readLine()
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("alice got %q, want a summary notice", l)
		}
		j, _ := strconv.Atoi(m[1])
		lf, _ := strconv.Atoi(m[2])
		joined, left = joined+j, left+lf
	}
	if joined != 2 || left != 1 {
		t.Fatalf("summaries add up to %d joined, %d left; want 2 and 1", joined, left)
	}
	alice.expectNothing()
}
