package cluster

import (
	"reflect"
	"testing"
	"time"

	"netchat/internal/chat"
)

func TestBatchRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Unix(1700000000, 123456789)
	evs := []chat.Replicated{
		{Kind: chat.KindJoin, Seq: 1, Time: at, User: 7, Nick: "Alice", Fold: "alice"},
		{Kind: chat.KindMsg, Seq: 2, Time: at, User: 7, Nick: "Alice", Text: "héllo ✓"},
		{Kind: chat.KindSync, Seq: 3, Time: at, Users: []chat.Member{{ID: 7, Nick: "Alice", Fold: "alice"}, {ID: 9, Nick: "b", Fold: "b"}}},
		{Kind: chat.KindGone, Seq: 4, Time: at, Text: "deadnode"},
		{Kind: chat.KindLeave, Seq: 5, Time: at, User: 7, Text: "lunch"},
	}
	b := appendBatchHeader(nil, "node1", "host:8088")
	for i := range evs {
		b = appendEvent(b, &evs[i])
	}
	got, err := decodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		evs[i].Node, evs[i].NodeName = "node1", "host:8088"
		for j := range evs[i].Users {
			evs[i].Users[j].Node = "node1"
		}
		if !got[i].Time.Equal(evs[i].Time) {
			t.Fatalf("event %d time %v, want %v", i, got[i].Time, evs[i].Time)
		}
		got[i].Time = evs[i].Time
	}
	if !reflect.DeepEqual(got, evs) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, evs)
	}
	for n := range b {
		if _, err := decodeBatch(b[:n]); err == nil && n > 0 && n != len(b) {
			// A cut on an event boundary is a valid shorter batch; any
			// other cut must be refused.
			if _, err2 := decodeBatch(b[n:]); err2 == nil {
				t.Fatalf("both halves of a cut at %d decode", n)
			}
		}
	}
}

func TestPrivateRoundTrip(t *testing.T) {
	t.Parallel()
	p := &chat.Private{From: "n1", Gate: 42, Sender: 3, SenderNick: "alice", Target: 9, Text: "psst"}
	got, err := decodePrivate(encodePrivate(p))
	if err != nil {
		t.Fatal(err)
	}
	if *got != *p {
		t.Fatalf("got %+v, want %+v", got, p)
	}
	for _, bad := range [][]byte{nil, []byte("NP"), []byte("NP\x02"), append(encodePrivate(p), 0)} {
		if _, err := decodePrivate(bad); err == nil {
			t.Fatalf("decodePrivate(%q) accepted", bad)
		}
	}
}

// FuzzDecodeBatch: log messages come from the network; decoding never
// panics, and whatever decodes encodes back to the same bytes.
func FuzzDecodeBatch(f *testing.F) {
	ev := chat.Replicated{Kind: chat.KindMsg, Seq: 1, Time: time.Unix(0, 5), User: 1, Nick: "a", Text: "hi"}
	f.Add(appendEvent(appendBatchHeader(nil, "n", "name"), &ev))
	f.Add([]byte("NC\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := decodeBatch(data)
		if err != nil {
			return
		}
		if len(data) < 3 {
			t.Fatalf("accepted %q", data)
		}
		if len(evs) == 0 {
			return
		}
		b := appendBatchHeader(nil, evs[0].Node, evs[0].NodeName)
		for i := range evs {
			b = appendEvent(b, &evs[i])
		}
		again, err := decodeBatch(b)
		if err != nil || len(again) != len(evs) {
			t.Fatalf("re-encoded batch: %v, %d events, want %d", err, len(again), len(evs))
		}
	})
}

// FuzzDecodePrivate: private messages come from the network too.
func FuzzDecodePrivate(f *testing.F) {
	f.Add(encodePrivate(&chat.Private{From: "n", Gate: 1, Sender: 2, SenderNick: "a", Target: 3, Text: "x"}))
	f.Add([]byte("NP\x01\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodePrivate(data)
		if err != nil {
			return
		}
		if got := encodePrivate(p); string(got) != string(data) {
			// Uvarints have one shortest form; the encoder writes it,
			// the decoder may accept longer ones.
			if q, err := decodePrivate(got); err != nil || *q != *p {
				t.Fatalf("re-encoded private: %v %+v, want %+v", err, q, p)
			}
		}
	})
}
