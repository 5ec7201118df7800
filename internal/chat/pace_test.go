package chat

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// manualClock is a clock that moves only when told to.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestAdmitPasteIsLagged: with 10/s and a burst of 20, a 30-line paste
// arriving at one instant is admitted whole: 20 lines at once, the next 10
// lagged by 100 ms more each, so they run at the allowed pace.
func TestAdmitPasteIsLagged(t *testing.T) {
	t.Parallel()
	clk := &manualClock{t: time.Unix(1e9, 0)}
	r := NewRoom(Config{MsgRate: 10, MsgBurst: 20, Now: clk.now})
	rec := &recorder{}
	u := mustJoin(t, r, rec, "paster")
	rec.take()
	for i := 1; i <= 30; i++ {
		v, d := u.Admit(fmt.Sprint("line ", i))
		switch {
		case i <= 20 && (v != RunNow || d != 0):
			t.Fatalf("line %d: %v %v, want RunNow", i, v, d)
		case i > 20 && (v != RunLater || d != time.Duration(i-20)*100*time.Millisecond):
			t.Fatalf("line %d: %v %v, want RunLater after %v", i, v, d, time.Duration(i-20)*100*time.Millisecond)
		}
	}
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("the paster was told %q, want nothing", got)
	}
}

// TestAdmitFloodIsCutOff: 200 lines at once (SPEC §2.4): after the burst
// and a burst's worth of lag, lines are dropped with "! slow down", and the
// third drop within 10 s disconnects with "! flooding".
func TestAdmitFloodIsCutOff(t *testing.T) {
	t.Parallel()
	clk := &manualClock{t: time.Unix(1e9, 0)}
	r := NewRoom(Config{MsgRate: 10, MsgBurst: 20, Now: clk.now, NoticeBatchAbove: 500})
	rec := &recorder{}
	u := mustJoin(t, r, rec, "flooder")
	watcher := &recorder{}
	mustJoin(t, r, watcher, "watcher")
	rec.take()
	watcher.take()
	var verdicts []Verdict
	for i := 1; i <= 200; i++ {
		v, _ := u.Admit(fmt.Sprint("spam ", i))
		verdicts = append(verdicts, v)
		if v == Flooded {
			break
		}
	}
	want := 40 + 3 // 20 at once, 20 lagged, 2 drops, the flood
	if len(verdicts) != want || verdicts[39] != RunLater || verdicts[40] != Dropped ||
		verdicts[41] != Dropped || verdicts[42] != Flooded {
		t.Fatalf("verdicts %v, want 20 RunNow, 20 RunLater, 2 Dropped, Flooded", verdicts)
	}
	if got := strings.Join(rec.take(), "|"); got != "! slow down|! slow down|! flooding" {
		t.Fatalf("flooder got %q", got)
	}
	if got := watcher.take(); len(got) != 1 || got[0] != "* flooder left (1 online)" {
		t.Fatalf("watcher got %q, want one leave notice", got)
	}
}

// TestAdmitQuitAlwaysRuns: a user who is being lagged or dropped can
// still leave at once, and empty lines cost nothing.
func TestAdmitQuitAlwaysRuns(t *testing.T) {
	t.Parallel()
	clk := &manualClock{t: time.Unix(1e9, 0)}
	r := NewRoom(Config{MsgRate: 1, MsgBurst: 1, Now: clk.now})
	u := mustJoin(t, r, &recorder{}, "q")
	if v, _ := u.Admit("one"); v != RunNow {
		t.Fatalf("first line: %v", v)
	}
	if v, d := u.Admit("two"); v != RunLater || d != time.Second {
		t.Fatalf("second line: %v %v, want RunLater 1s", v, d)
	}
	for _, l := range []string{"", "   ", "/quit bye", "quit"} {
		if v, d := u.Admit(l); v != RunNow || d != 0 {
			t.Fatalf("%q: %v %v, want RunNow", l, v, d)
		}
	}
	// The bucket refills with time: lag shrinks.
	clk.advance(2 * time.Second)
	if v, _ := u.Admit("three"); v != RunNow {
		t.Fatalf("after 2s: %v, want RunNow", v)
	}
}

// backlogSession reports a backlog channel on every delivery.
type backlogSession struct {
	recorder
	ch chan struct{}
}

func (s *backlogSession) Deliver(l []byte) <-chan struct{} {
	s.recorder.Deliver(l)
	return s.ch
}

// TestRunReturnsRecipientBacklog: a line delivered to a recipient that is
// falling behind hands the sender that recipient's backlog channel, for
// every kind of line that reaches other users; lines only the sender sees
// do not.
func TestRunReturnsRecipientBacklog(t *testing.T) {
	t.Parallel()
	r := NewRoom(Config{})
	alice := mustJoin(t, r, &recorder{}, "alice")
	slow := &backlogSession{ch: make(chan struct{})}
	mustJoin(t, r, slow, "slow")
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"hello", true},
		{"/me waves", true},
		{"c:slow:psst", true},
		{"/msg slow psst", true},
		{"/nick alice2", true},
		{"/who", false},
		{"/help", false},
		{"/whoami", false},
		{"/bogus", false},
		{"c:nobody:psst", false},
	} {
		end, backlog := alice.Run(tc.line)
		if end != Stay {
			t.Fatalf("%q: end %v", tc.line, end)
		}
		if got := backlog != nil; got != tc.want {
			t.Fatalf("%q: backlog returned %v, want %v", tc.line, got, tc.want)
		}
		if backlog != nil && backlog != (<-chan struct{})(slow.ch) {
			t.Fatalf("%q: not the recipient's channel", tc.line)
		}
	}
}
