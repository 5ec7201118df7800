package chat

import (
	"strconv"
	"testing"
	"time"
)

// countingSession is the cheapest possible transport: it only counts what
// it is given, so the benchmarks measure the room, not a fake queue.
type countingSession struct {
	lines int
	bytes int
}

func (s *countingSession) Deliver(l []byte) <-chan struct{} {
	s.lines++
	s.bytes += len(l)
	return nil
}

func BenchmarkParse(b *testing.B) {
	lines := []string{
		"hello everybody, how are you today?",
		"c:bob:a private word",
		"/msg bob a private word",
		"/me waves",
		"l",
		"n:alice2",
		"//not a command",
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = Parse(lines[i%len(lines)])
	}
}

// BenchmarkBroadcast1000 is one chat line from one user in a room of 1,000:
// parsing, formatting once, and handing the shared bytes to 999 sessions.
// ns/op divided by 999 is the room's cost per delivery.
func BenchmarkBroadcast1000(b *testing.B) {
	r := NewRoom(Config{NoticeBatchAbove: -1, Now: func() time.Time { return time.Unix(0, 0) }})
	sessions := make([]*countingSession, 1000)
	users := make([]*User, len(sessions))
	for i := range sessions {
		sessions[i] = &countingSession{}
		u, err := r.Join(sessions[i], "user"+strconv.Itoa(i), Info{})
		if err != nil {
			b.Fatal(err)
		}
		users[i] = u
	}
	for _, s := range sessions {
		*s = countingSession{}
	}
	b.ReportAllocs()
	for b.Loop() {
		if users[0].Handle("hello everybody, this is a line of chat") != Stay {
			b.Fatal("session ended")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*999), "ns/delivery")
	if sessions[1].lines != b.N || sessions[0].lines != 0 {
		b.Fatalf("deliveries: %d to a listener, %d to the sender; want %d and 0", sessions[1].lines, sessions[0].lines, b.N)
	}
}

// BenchmarkPrivate is one private message: two lookups and two deliveries.
func BenchmarkPrivate(b *testing.B) {
	r := NewRoom(Config{})
	alice, _ := r.Join(&countingSession{}, "alice", Info{})
	bob := &countingSession{}
	if _, err := r.Join(bob, "bob", Info{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		alice.Handle("/msg bob psst")
	}
	if bob.lines < b.N {
		b.Fatalf("bob got %d of %d", bob.lines, b.N)
	}
}

// BenchmarkJoinLeave1000 is a join and a leave in a room of 1,000 users
// (notices sent individually, below the batching threshold of 2,000).
func BenchmarkJoinLeave1000(b *testing.B) {
	r := NewRoom(Config{NoticeBatchAbove: 2000})
	for i := range 1000 {
		if _, err := r.Join(&countingSession{}, "user"+strconv.Itoa(i), Info{}); err != nil {
			b.Fatal(err)
		}
	}
	s := &countingSession{}
	b.ReportAllocs()
	for b.Loop() {
		u, err := r.Join(s, "newcomer", Info{})
		if err != nil {
			b.Fatal(err)
		}
		u.Leave("")
	}
}
