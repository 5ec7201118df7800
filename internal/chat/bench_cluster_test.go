package chat

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkApplyRemote1000 is one log message of 10 chat lines from a user
// of another node, applied in a cluster room with 1,000 local users: the
// cluster-mode fan-out. ns/op divided by 10,000 is the cost per delivery.
func BenchmarkApplyRemote1000(b *testing.B) {
	c := newMemCluster(b)
	c.claims["remote"] = Member{Node: "b", ID: 1, Nick: "remote", Fold: "remote"}
	l := c.node(b, "a")
	sessions := make([]*countingSession, 1000)
	for i := range sessions {
		sessions[i] = &countingSession{}
		if _, err := l.room.Join(sessions[i], "user"+strconv.Itoa(i), Info{}); err != nil {
			b.Fatal(err)
		}
	}
	// Joins are applied by the log's loop; wait until it is idle.
	for deadline := time.Now().Add(10 * time.Second); l.room.Online() != len(sessions)+1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the joins were not applied")
		}
	}
	c.mu.Lock()
	seq := uint64(len(c.log))
	c.mu.Unlock()
	batch := make([]Replicated, 10)
	for i := range batch {
		batch[i] = Replicated{Node: "b", NodeName: "b", Time: time.Unix(0, 0), Kind: KindMsg, User: 1, Nick: "remote", Text: "hello everybody, this is a line of chat"}
	}
	for _, s := range sessions {
		*s = countingSession{}
	}
	b.ReportAllocs()
	for b.Loop() {
		seq++
		for i := range batch {
			batch[i].Seq = seq*10 + uint64(i)
		}
		l.room.Apply(seq, batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10*len(sessions)), "ns/delivery")
	if sessions[0].lines != b.N*10 {
		b.Fatalf("a user got %d lines, want %d", sessions[0].lines, b.N*10)
	}
}
