package server

// Output queues are byte streams kept in chunks of a few fixed sizes, so
// that what a client costs follows what is queued for it: a queue of n
// bytes holds at most n plus two partly used chunks, never the doubling
// slack of one growing buffer, and nothing is copied when it grows. A
// writer takes everything queued as one vector write while producers keep
// appending to the tail chunk's free space, which the writer never reads.

import "sync"

// chunkSizes are the chunk size classes. A queue's first chunk is the
// smallest that fits the first line: a fan-out to thousands of idle users
// needs a chunk for each of them at the same moment, each for one short
// line. Each further chunk is the next class up, so a client that falls
// behind gets big chunks (few system-call vectors) after a few small ones.
var chunkSizes = [...]int{512, 2 << 10, 8 << 10, 32 << 10}

// poolBudget bounds the bytes the chunk pool keeps for reuse, per size
// class, so that a burst to many slow clients is not pinned in memory
// after they are gone.
const poolBudget = 2 << 20

// pool recycles chunks, one bounded free list per size class. Bounded
// channels rather than sync.Pool: they store slices without boxing and
// their bound is a number of bytes that can be stated.
var pool = newChunkPool(poolBudget)

type chunkPool struct {
	free [len(chunkSizes)]chan []byte
}

func newChunkPool(perClass int) *chunkPool {
	p := &chunkPool{}
	for i, size := range chunkSizes {
		p.free[i] = make(chan []byte, perClass/size)
	}
	return p
}

// get returns an empty chunk of size class class.
func (p *chunkPool) get(class int) []byte {
	select {
	case b := <-p.free[class]:
		return b
	default:
		return make([]byte, 0, chunkSizes[class])
	}
}

// put recycles b if it is a pooled size and there is room.
func (p *chunkPool) put(b []byte) {
	for i, size := range chunkSizes {
		if cap(b) == size {
			select {
			case p.free[i] <- b[:0]:
			default:
			}
			return
		}
	}
}

// kept reports the bytes the pool holds, for tests.
func (p *chunkPool) kept() int {
	n := 0
	for i, size := range chunkSizes {
		n += len(p.free[i]) * size
	}
	return n
}

// classFor returns the smallest size class holding n bytes, or the largest.
func classFor(n int) int {
	for i, size := range chunkSizes {
		if n <= size {
			return i
		}
	}
	return len(chunkSizes) - 1
}

// queue is a byte stream in chunks: chunks[0][head:], chunks[1], …,
// chunks[len-1]. It is not safe for concurrent use by itself; the owner
// locks it. One writer at a time may read what pending returned without
// the lock while producers append: they only write past the lengths that
// pending saw.
type queue struct {
	chunks [][]byte
	head   int // bytes of chunks[0] already written
	n      int // bytes queued, not yet written
}

// appendLine appends prefix, line and suffix (framing around one line).
func (q *queue) appendLine(prefix, line, suffix []byte) {
	n := len(prefix) + len(line) + len(suffix)
	if last := len(q.chunks) - 1; last >= 0 {
		if c := q.chunks[last]; cap(c)-len(c) >= n {
			// The common case: the line fits in the tail chunk.
			c = append(c, prefix...)
			c = append(c, line...)
			q.chunks[last] = append(c, suffix...)
			q.n += n
			return
		}
	}
	q.write(prefix)
	q.write(line)
	q.write(suffix)
}

// write appends b.
func (q *queue) write(b []byte) {
	if len(b) == 0 {
		return
	}
	q.n += len(b)
	for len(b) > 0 {
		last := len(q.chunks) - 1
		if last < 0 || len(q.chunks[last]) == cap(q.chunks[last]) {
			class := classFor(len(b))
			if last >= 0 {
				class = max(class, min(classFor(cap(q.chunks[last]))+1, len(chunkSizes)-1))
			}
			q.chunks = append(q.chunks, pool.get(class))
			last++
		}
		c := q.chunks[last]
		k := min(len(b), cap(c)-len(c))
		q.chunks[last] = append(c, b[:k]...)
		b = b[k:]
	}
}

// pending appends to iov the queued bytes, at most max of them in at most
// maxIov vectors, and returns it with their total.
func (q *queue) pending(iov [][]byte, max, maxIov int) ([][]byte, int) {
	total := 0
	for i, c := range q.chunks {
		if i == 0 {
			c = c[q.head:]
		}
		if len(c) == 0 {
			continue
		}
		if total+len(c) > max {
			c = c[:max-total]
		}
		iov = append(iov, c)
		total += len(c)
		if total == max || len(iov) == maxIov {
			break
		}
	}
	return iov, total
}

// consume drops the first n written bytes and recycles the chunks they
// emptied. A tail chunk that was written completely is recycled too: an
// idle client holds no chunk.
func (q *queue) consume(n int) {
	q.n -= n
	for n > 0 {
		c := q.chunks[0]
		left := len(c) - q.head
		if n < left {
			q.head += n
			return
		}
		n -= left
		q.head = 0
		if len(q.chunks) == 1 {
			// The last chunk, all written: appends go to a fresh chunk.
			pool.put(c)
			q.chunks[0] = nil
			q.chunks = q.chunks[:0]
			return
		}
		pool.put(c)
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
	}
}

// reset drops everything queued.
func (q *queue) reset() {
	for i, c := range q.chunks {
		pool.put(c)
		q.chunks[i] = nil
	}
	q.chunks, q.head, q.n = q.chunks[:0], 0, 0
}

// iovPool recycles the vectors writers build, which are transient.
var iovPool = sync.Pool{New: func() any { s := make([][]byte, 0, 16); return &s }}
