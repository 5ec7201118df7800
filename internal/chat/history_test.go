package chat

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a Session that keeps what it is sent.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) Deliver(l []byte) <-chan struct{} {
	r.mu.Lock()
	r.lines = append(r.lines, string(l))
	r.mu.Unlock()
	return nil
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lines
	r.lines = nil
	return out
}

// fixedClock returns a clock at 15:04 local time, a second later each call.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2025, 6, 7, 15, 4, 0, 0, time.Local)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func mustJoin(t *testing.T, r *Room, s Session, nick string) *User {
	t.Helper()
	u, err := r.Join(s, nick, Info{})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestHistoryReplay: a joiner gets the last History messages and /me
// actions, oldest first, stamped, between the markers; private messages,
// joins, leaves and renames are not part of it.
func TestHistoryReplay(t *testing.T) {
	t.Parallel()
	r := NewRoom(Config{History: 3, Now: fixedClock()})
	alice := mustJoin(t, r, &recorder{}, "alice")
	bob := mustJoin(t, r, &recorder{}, "bob")
	for i := 1; i <= 4; i++ {
		alice.Handle(fmt.Sprint("message ", i))
	}
	bob.Handle("/me waves")
	bob.Handle("/msg alice secret")
	bob.Handle("/nick robert")
	var carol recorder
	mustJoin(t, r, &carol, "carol")
	want := []string{
		"* Welcome, carol! 3 users online. Type /help for commands.",
		"* --- recent messages ---",
		"[15:04] alice: message 3",
		"[15:04] alice: message 4",
		"[15:04] * bob waves",
		"* --- end of recent messages ---",
	}
	if got := carol.take(); !slices.Equal(got, want) {
		t.Fatalf("carol got\n%q\nwant\n%q", got, want)
	}
}

// TestHistoryEmptyAndDisabled: no markers without messages, nor with
// History 0 whatever was said.
func TestHistoryEmptyAndDisabled(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 5} {
		r := NewRoom(Config{History: n})
		alice := mustJoin(t, r, &recorder{}, "alice")
		if n == 0 {
			alice.Handle("hello")
			r.Seed([]Event{{Kind: KindMsg, Nick: "old", Text: "seeded"}})
		}
		var bob recorder
		mustJoin(t, r, &bob, "bob")
		if got := bob.take(); len(got) != 1 || !strings.HasPrefix(got[0], "* Welcome, bob!") {
			t.Errorf("History %d: bob got %q, want the welcome alone", n, got)
		}
	}
}

// TestHistorySeed: seeded events (from the transcript) come first, keep
// their own times, and only messages and /me count.
func TestHistorySeed(t *testing.T) {
	t.Parallel()
	r := NewRoom(Config{History: 3, Now: fixedClock()})
	at := time.Date(2024, 1, 1, 9, 30, 0, 0, time.Local)
	r.Seed([]Event{
		{Time: at, Kind: KindMsg, Nick: "old", Text: "one"},
		{Time: at, Kind: KindJoin, Nick: "old"},
		{Time: at.Add(time.Minute), Kind: KindMe, Nick: "old", Text: "two"},
		{Time: at, Kind: KindNick, Nick: "old", Text: "older"},
	})
	alice := mustJoin(t, r, &recorder{}, "alice")
	alice.Handle("three")
	var bob recorder
	mustJoin(t, r, &bob, "bob")
	want := []string{"* --- recent messages ---", "[09:30] old: one", "[09:31] * old two", "[15:04] alice: three", "* --- end of recent messages ---"}
	if got := bob.take()[1:]; !slices.Equal(got, want) {
		t.Fatalf("bob got\n%q\nwant\n%q", got, want)
	}
}

// TestRecordPublicEventsOnly: Config.Record gets every public event, in
// order, and never a private message.
func TestRecordPublicEventsOnly(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	r := NewRoom(Config{Record: func(ev Event) {
		mu.Lock()
		got = append(got, ev.Kind+" "+ev.Nick+" "+ev.Text)
		mu.Unlock()
	}})
	alice := mustJoin(t, r, &recorder{}, "alice")
	bob := mustJoin(t, r, &recorder{}, "bob")
	alice.Handle("hi")
	bob.Handle("/me waves")
	bob.Handle("/msg alice secret1")
	alice.Handle("c:bob:secret2")
	alice.Handle("/nick alicia")
	bob.Handle("/quit bye")
	alice.Leave("")
	want := []string{"join alice ", "join bob ", "msg alice hi", "me bob waves", "nick alice alicia", "leave bob bye", "leave alicia "}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("recorded\n%q\nwant\n%q", got, want)
	}
}

// TestNoStaleNotices: a user who joins while another user's join or leave
// is being announced does not get that notice: the user was not there when
// it happened, and its count is older than the one in the welcome. The
// second join is started from Config.Record, which comes between the change
// of membership and the announcement, and given a moment to get in first.
func TestNoStaleNotices(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KindJoin, KindLeave} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var r *Room
			var late recorder
			var once sync.Once
			joined := make(chan error, 1)
			r = NewRoom(Config{NoticeBatchAbove: 500, Record: func(ev Event) {
				if ev.Kind != kind || ev.Nick != "alice" {
					return
				}
				once.Do(func() {
					go func() {
						_, err := r.Join(&late, "late", Info{})
						joined <- err
					}()
					// Where the room is locked here (as it should be), the
					// join waits; where it is not, it gets in now.
					time.Sleep(50 * time.Millisecond)
				})
			}})
			mustJoin(t, r, &recorder{}, "keep")
			alice := mustJoin(t, r, &recorder{}, "alice")
			if kind == KindLeave {
				alice.Leave("")
			}
			select {
			case err := <-joined:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("late never joined")
			}
			for _, l := range late.take() {
				if strings.Contains(l, "alice") {
					t.Errorf("late got %q", l)
				}
			}
		})
	}
}
