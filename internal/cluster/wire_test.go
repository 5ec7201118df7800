package cluster

import (
	"reflect"
	"strconv"
	"strings"
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

// TestLineBatchBound: a batch of one line of the longest text, from the
// longest nickname in the widest characters, is within the bound Connect
// checks against the NATS server's max_payload, and so is a private
// message.
func TestLineBatchBound(t *testing.T) {
	t.Parallel()
	const maxLine = 4096
	nick := strings.Repeat("\U00020000", chat.MaxNickLen)
	text := strings.Repeat("x", maxLine)
	id, name := newID(), "a-rather-long-node-name.example:8088"
	bound := lineBatchBound(maxLine, id, name)
	for _, kind := range []string{chat.KindMsg, chat.KindMe, chat.KindNick, chat.KindLeave} {
		ev := &chat.Replicated{Kind: kind, Seq: 1<<64 - 1, Time: time.Unix(1<<40, 0), User: 1<<64 - 1, Nick: nick, Fold: nick, Text: text}
		if got := len(appendEvent(appendBatchHeader(nil, id, name), ev)); got > bound {
			t.Errorf("%s: %d bytes, bound %d", kind, got, bound)
		}
	}
	p := &chat.Private{From: id, Gate: 1<<64 - 1, Sender: 1<<64 - 1, SenderNick: nick, Target: 1<<64 - 1, Text: text}
	if got := len(encodePrivate(p)); got > bound {
		t.Errorf("private: %d bytes, bound %d", got, bound)
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
	sync := bigSync("n", 9, 40)
	b := appendBatchHeader(nil, "n", "name")
	for _, p := range syncParts(&sync, 1024) {
		b = appendEvent(b, p)
	}
	f.Add(b)
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
		// Whatever parts of syncs it holds, the assembler passes every
		// other event through, and never more events than it was given.
		out := syncAssembler{}.assemble(again)
		others := 0
		for _, ev := range evs {
			if ev.Kind != chat.KindSync {
				others++
			}
		}
		if len(out) > len(evs) || len(out) < others {
			t.Fatalf("assembled %d events from %d (%d not syncs)", len(out), len(evs), others)
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

// bigSync is node's sync of n users whose nicknames are 20 four-byte runes
// (the longest a nickname gets in bytes).
func bigSync(node string, seq uint64, n int) chat.Replicated {
	ev := chat.Replicated{Node: node, NodeName: node, Kind: chat.KindSync, Seq: seq, Time: time.Unix(1700000000, 0)}
	for i := range n {
		nick := strings.Repeat("𝒜", 19) + string(rune('𝒜'+i%26))
		ev.Users = append(ev.Users, chat.Member{Node: node, ID: uint64(i + 1), Nick: nick + strconv.Itoa(i), Fold: nick + strconv.Itoa(i)})
	}
	return ev
}

// A node's sync too big for one NATS message travels in parts, each
// within the limit, and comes out of the assembler whole, once, with
// other nodes' events passing through in their places.
func TestSyncParts(t *testing.T) {
	t.Parallel()
	const limit = 128 << 10
	sync := bigSync("n1", 42, 19000) // about 3.6 MB in one event
	parts := syncParts(&sync, limit)
	if len(parts) < 20 {
		t.Fatalf("%d parts, want the sync split in many", len(parts))
	}
	var wire [][]byte
	for i, p := range parts {
		b := appendEvent(appendBatchHeader(nil, "n1", "n1"), p)
		if len(b) > limit+200 {
			t.Fatalf("part %d is %d bytes, over the limit of %d", i, len(b), limit)
		}
		wire = append(wire, b)
	}
	other := appendEvent(appendBatchHeader(nil, "n2", "n2"), &chat.Replicated{Kind: chat.KindMsg, Seq: 7, Time: sync.Time, User: 3, Nick: "bob", Text: "hi"})

	a := syncAssembler{}
	var got []chat.Replicated
	for i, b := range wire {
		evs, err := decodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.assemble(evs)...)
		if i == 3 {
			evs, _ := decodeBatch(other)
			got = append(got, a.assemble(evs)...)
		}
	}
	if len(got) != 2 || got[0].Kind != chat.KindMsg || got[1].Kind != chat.KindSync {
		t.Fatalf("assembled %d events (%v), want bob's line, then the sync", len(got), kinds(got))
	}
	whole := got[1]
	if whole.Seq != 42 || whole.User != 0 || whole.Text != "" || !whole.Time.Equal(sync.Time) {
		t.Fatalf("assembled sync: seq %d, user %d, text %q", whole.Seq, whole.User, whole.Text)
	}
	if !reflect.DeepEqual(whole.Users, sync.Users) {
		t.Fatalf("assembled sync has %d users, want the %d sent, in order", len(whole.Users), len(sync.Users))
	}
	if len(a) != 0 {
		t.Fatalf("assembler keeps %d partial syncs after a complete one", len(a))
	}

	// A small sync is one event, as before.
	small := bigSync("n1", 43, 3)
	if p := syncParts(&small, limit); len(p) != 1 || p[0].User != 0 || p[0].Text != "" || len(p[0].Users) != 3 {
		t.Fatalf("a small sync split into %d parts", len(p))
	}
	empty := chat.Replicated{Kind: chat.KindSync, Node: "n1", Seq: 44}
	if p := syncParts(&empty, limit); len(p) != 1 || len(p[0].Users) != 0 || p[0].Text != "" {
		t.Fatalf("a sync of nobody: %d parts", len(p))
	}
}

// The assembler never hands the room part of a sync: one whose first parts
// it missed is skipped, one whose node died is dropped, and the next whole
// sync of that node comes through.
func TestSyncAssemblerPartial(t *testing.T) {
	t.Parallel()
	sync := bigSync("n1", 5, 3000)
	parts := syncParts(&sync, 64<<10)
	if len(parts) < 3 {
		t.Fatalf("%d parts, want at least 3", len(parts))
	}
	feed := func(a syncAssembler, evs ...*chat.Replicated) []chat.Replicated {
		var in []chat.Replicated
		for _, ev := range evs {
			in = append(in, *ev)
		}
		return a.assemble(in)
	}

	a := syncAssembler{}
	if got := feed(a, parts[1:]...); len(got) != 0 {
		t.Fatalf("a sync without its first part gave %v", kinds(got))
	}
	if got := feed(a, parts...); len(got) != 1 || len(got[0].Users) != 3000 {
		t.Fatalf("the next whole sync gave %v", kinds(got))
	}

	a = syncAssembler{}
	gone := &chat.Replicated{Node: "n2", Kind: chat.KindGone, Text: "n1"}
	if got := feed(a, parts[0], gone, parts[1]); len(got) != 1 || got[0].Kind != chat.KindGone {
		t.Fatalf("parts around the node's death gave %v", kinds(got))
	}
	if len(a) != 0 {
		t.Fatal("a dead node's partial sync is kept")
	}

	// A part of another sync (another Seq) in the middle: both dropped.
	a = syncAssembler{}
	later := bigSync("n1", 6, 3000)
	lparts := syncParts(&later, 64<<10)
	if got := feed(a, parts[0], lparts[1]); len(got) != 0 {
		t.Fatalf("mixed parts gave %v", kinds(got))
	}
	if got := feed(a, lparts...); len(got) != 1 || got[0].Seq != 6 {
		t.Fatalf("the next whole sync gave %v", kinds(got))
	}
}

func kinds(evs []chat.Replicated) []string {
	var k []string
	for _, ev := range evs {
		k = append(k, ev.Kind+"/"+strconv.FormatUint(ev.Seq, 10))
	}
	return k
}
