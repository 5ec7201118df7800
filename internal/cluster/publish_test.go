package cluster

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"netchat/internal/chat"
)

// Whatever the NATS server's max_payload, the batches a node builds stay
// within it (an event never pushes a nearly full batch over the limit),
// and together they carry every event once, in order.
func TestPublishBatchesFit(t *testing.T) {
	t.Parallel()
	for _, payload := range []int64{8 << 10, 64 << 10, 1 << 20} {
		t.Run(strconv.FormatInt(payload, 10), func(t *testing.T) {
			n := &Node{id: "node-id", opt: Options{Name: "host:8088"}, pubWake: make(chan struct{}, 1), m: newMetrics(nil, nil)}
			n.payload.Store(payload)
			nick := strings.Repeat("𠀀", 20) // 80 bytes
			var sent []string
			for i := range 400 {
				// Lines of many lengths up to the default --max-line,
				// and pairs that bring a batch to just under half
				// max_payload, then add a longest line.
				size := (i * 97) % 4090
				if i%3 != 0 {
					size = []int{3900, 4085}[i%3-1]
				}
				text := strings.Repeat("x", size) + strconv.Itoa(i%10)
				sent = append(sent, text)
				n.Publish(&chat.Replicated{Kind: chat.KindMsg, Seq: uint64(i + 1), Time: time.Unix(1, 0), User: 1, Nick: nick, Text: text})
				if i == 200 {
					sync := bigSync("node-id", 1000, 3000)
					n.Publish(&sync)
				}
			}
			batches := append(n.batches, n.batch)
			var got []string
			syncs := syncAssembler{}
			wholeSyncs := 0
			for i, b := range batches {
				if len(b) > int(payload) {
					t.Fatalf("batch %d is %d bytes, over max_payload %d", i, len(b), payload)
				}
				evs, err := decodeBatch(b)
				if err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
				for _, ev := range syncs.assemble(evs) {
					if ev.Kind == chat.KindSync {
						wholeSyncs++
						if len(ev.Users) != 3000 {
							t.Fatalf("the sync came out with %d users", len(ev.Users))
						}
						continue
					}
					got = append(got, ev.Text)
				}
			}
			if wholeSyncs != 1 {
				t.Fatalf("%d syncs came out, want 1", wholeSyncs)
			}
			if len(got) != len(sent) {
				t.Fatalf("%d lines came out of %d batches, want %d", len(got), len(batches), len(sent))
			}
			for i := range sent {
				if got[i] != sent[i] {
					t.Fatalf("line %d out of order or changed", i)
				}
			}
		})
	}
}
