package cluster_test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"netchat/internal/chat"
	"netchat/internal/cluster/natstest"
)

// TestNodeKilled kills a node (a child process, SIGKILL) with two users:
// within the node TTL their nicknames are free again, and each user on the
// two surviving nodes gets exactly one leave notice for each of them.
func TestNodeKilled(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	ns := natstest.Start(t)
	n1 := startNode(t, ns.URL(), "k1", nodeOpts{ttl: ttl})
	n2 := startNode(t, ns.URL(), "k2", nodeOpts{ttl: ttl})

	addr3, kill := startChild(t, ns.URL(), "k3", ttl)

	alice := join(t, n1.addr, "alice", "")
	waitFor(t, "k2 to see alice", func() bool { return n2.room.Online() == 1 })
	bob := join(t, n2.addr, "bob", "* Welcome, bob! 2 users online. Type /help for commands.")
	alice.expect("* bob joined (2 online)")
	carol := join(t, addr3, "carol", "* Welcome, carol! 3 users online. Type /help for commands.")
	dave := join(t, addr3, "dave", "* Welcome, dave! 4 users online. Type /help for commands.")
	carol.expect("* dave joined (4 online)")
	for _, c := range []*client{alice, bob} {
		c.expect("* carol joined (3 online)", "* dave joined (4 online)")
	}
	carol.send("last words")
	alice.expect("carol: last words")
	bob.expect("carol: last words")

	killed := time.Now()
	kill()
	// Their nicknames come free: poll by joining (and leaving at once).
	var freeAfter time.Duration
	waitFor(t, "carol's nickname to be free", func() bool {
		u, err := n1.room.Join(nullSession{}, "Carol", chat.Info{})
		if err != nil {
			return false
		}
		freeAfter = time.Since(killed)
		u.Leave("")
		return true
	})
	t.Logf("nickname free %v after the kill (node TTL %v)", freeAfter.Round(time.Millisecond), ttl)
	if freeAfter > ttl+time.Second {
		// Generous for a busy machine; the design frees them within 3/4
		// of the TTL plus the cleanup.
		t.Errorf("nickname free only %v after the kill, TTL %v", freeAfter, ttl)
	}
	// One leave notice for each, in the same order everywhere, then the
	// probe's join and leave.
	for _, c := range []*client{alice, bob} {
		c.expect("* carol left (3 online)", "* dave left (2 online)", "* Carol joined (3 online)", "* Carol left (2 online)")
	}
	// And no second notice: the next line after them is a marker.
	alice.send("marker")
	bob.expect("alice: marker")
	bob.send("marker back")
	alice.expect("bob: marker back")
	alice.send("/who")
	alice.expect("* 2 online: alice, bob")
	_ = dave
}

// startChild starts a node in a child process (this test binary, see
// TestMain) and returns its chat address and a function that kills it
// (SIGKILL: no goodbye).
func startChild(t *testing.T, url, name string, ttl time.Duration) (addr string, kill func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildURL+"="+url, envChildName+"="+name, envChildTTL+"="+ttl.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		stdin.Close()
	})
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addrc <- a
			}
		}
	}()
	select {
	case addr = <-addrc:
	case <-time.After(wait):
		t.Fatal("the child node did not start")
	}
	return addr, func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Error(err)
		}
	}
}
