package udp

import "net/netip"

// sourceLimiter is a token bucket per source address. It belongs to one
// echo loop, so it needs no lock, and it takes the time as an argument so
// that a whole batch is judged with one clock read.
type sourceLimiter struct {
	perNano   float64 // tokens added per nanosecond
	burst     float64
	max       int // buckets kept at most; bounds memory under spoofed floods
	buckets   map[netip.Addr]*bucket
	lastSweep int64
	sweeps    int // observed by tests
}

type bucket struct {
	tokens float64
	last   int64
}

// sweepEvery bounds how long idle buckets are kept (ns).
const sweepEvery = 10e9

// fullSweepGap is the least time (ns) between two sweeps forced by a new
// source meeting a full table. Without it, a flood from fresh addresses
// (any IPv6 /64 has 2^64 of them, no spoofing needed) cost a walk of the
// whole table per datagram and starved every other peer.
const fullSweepGap = 100e6

func newSourceLimiter(perSecond float64, burst, maxSources int) *sourceLimiter {
	if burst < 1 {
		burst = max(1, int(perSecond))
	}
	return &sourceLimiter{
		perNano: perSecond / 1e9,
		burst:   float64(burst),
		max:     maxSources,
		buckets: make(map[netip.Addr]*bucket),
	}
}

// allow reports whether one more reply to a may be sent at time now (ns on
// a monotonic clock).
func (l *sourceLimiter) allow(a netip.Addr, now int64) bool {
	if now-l.lastSweep > sweepEvery {
		l.sweep(now)
	}
	b := l.buckets[a]
	if b == nil {
		if len(l.buckets) >= l.max {
			if now-l.lastSweep >= fullSweepGap {
				l.sweep(now)
			}
			if len(l.buckets) >= l.max {
				// Every slot belongs to a source that is still busy: a new
				// source gets nothing rather than growing the table.
				return false
			}
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[a] = b
	}
	if now > b.last {
		b.tokens = min(l.burst, b.tokens+float64(now-b.last)*l.perNano)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets sources whose bucket has refilled: a fresh bucket would
// behave the same.
func (l *sourceLimiter) sweep(now int64) {
	l.lastSweep = now
	l.sweeps++
	for a, b := range l.buckets {
		if b.tokens+float64(now-b.last)*l.perNano >= l.burst {
			delete(l.buckets, a)
		}
	}
}
