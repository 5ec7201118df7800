package server

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// capacity is the chunk memory a queue holds.
func (q *queue) capacity() int {
	n := 0
	for _, c := range q.chunks {
		n += cap(c)
	}
	return n
}

// TestQueueStreamAndMemory: random appends and partial writes come out as
// the same byte stream, and a queue never holds more chunk memory than
// what is queued plus two partly used chunks (the written head of the
// first and the free tail of the last).
func TestQueueStreamAndMemory(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var q queue
	var in, out bytes.Buffer
	const slack = 2 * 32 << 10
	seq := byte(0)
	for range 2000 {
		if rng.IntN(3) > 0 {
			b := make([]byte, rng.IntN(3000))
			for i := range b {
				seq++
				b[i] = seq
			}
			q.appendLine(nil, b, crlf)
			in.Write(b)
			in.Write(crlf)
		} else {
			iov, total := q.pending(nil, rng.IntN(100000)+1, 1+rng.IntN(maxIov))
			n := rng.IntN(total + 1)
			left := n
			for _, b := range iov {
				k := min(len(b), left)
				out.Write(b[:k])
				left -= k
			}
			q.consume(n)
		}
		if q.capacity() > q.n+slack {
			t.Fatalf("%d bytes queued in %d bytes of chunks", q.n, q.capacity())
		}
	}
	iov, total := q.pending(nil, 1<<30, 1<<20)
	for _, b := range iov {
		out.Write(b)
	}
	q.consume(total)
	if !bytes.Equal(in.Bytes(), out.Bytes()) {
		t.Fatalf("the stream changed: %d bytes in, %d out", in.Len(), out.Len())
	}
	if q.n != 0 || len(q.chunks) != 0 {
		t.Fatalf("empty queue holds %d bytes in %d chunks", q.n, len(q.chunks))
	}
}

// TestPoolIsBounded: however much went through queues, the pool keeps at
// most its budget per size class.
func TestPoolIsBounded(t *testing.T) {
	t.Parallel()
	p := newChunkPool(64 << 10)
	var held [][]byte
	for i := range 1000 {
		held = append(held, p.get(i%len(chunkSizes)))
	}
	for _, b := range held {
		p.put(b)
	}
	if kept := p.kept(); kept > len(chunkSizes)*64<<10 {
		t.Fatalf("the pool keeps %d bytes, budget %d", kept, len(chunkSizes)*64<<10)
	}
	p.put(make([]byte, 0, 1000)) // not a size class: not kept
	if kept := p.kept(); kept > len(chunkSizes)*64<<10 {
		t.Fatalf("the pool keeps %d bytes", kept)
	}
}
