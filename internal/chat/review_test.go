package chat

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// signalSession is a recorder that closes welcomed on its welcome line.
type signalSession struct {
	recorder
	once     sync.Once
	welcomed chan struct{}
}

func (s *signalSession) Deliver(l []byte) <-chan struct{} {
	s.recorder.Deliver(l)
	if strings.HasPrefix(string(l), "* Welcome,") {
		s.once.Do(func() { close(s.welcomed) })
	}
	return nil
}

// TestJoinDuringBroadcastGetsItOnce: a user who joins while a message is
// being sent gets it exactly once: in the recent history or live, not both.
func TestJoinDuringBroadcastGetsItOnce(t *testing.T) {
	t.Parallel()
	inRecord, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r := NewRoom(Config{History: 5, NoticeBatchAbove: 500, Record: func(ev Event) {
		if ev.Kind == KindMsg {
			once.Do(func() { close(inRecord); <-release })
		}
	}})
	alice := mustJoin(t, r, &recorder{}, "alice")
	sent := make(chan struct{})
	go func() { alice.Handle("hi"); close(sent) }()
	<-inRecord // the message is being kept

	bob := &signalSession{welcomed: make(chan struct{})}
	joined := make(chan struct{})
	go func() { mustJoin(t, r, bob, "bob"); close(joined) }()
	// Give the join the chance to overtake the message's fan-out. (With
	// the fix it cannot: it waits for the message, so this times out.)
	select {
	case <-bob.welcomed:
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	for _, ch := range []chan struct{}{sent, joined} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("message or join did not finish")
		}
	}
	n := 0
	for _, l := range bob.take() {
		if strings.HasSuffix(l, "alice: hi") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("bob got the message %d times, want once", n)
	}
}
