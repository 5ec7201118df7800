package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// The histogram groups values (nanoseconds) by power of two and splits each
// power into histSub equal buckets. A bucket is then at most 1/histSub of
// its lower bound wide, and reporting its midpoint is off by at most half
// that: HistRelErr. Memory is fixed however many samples arrive, which lets
// every client reader own one and record without locking.
const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	// Values of 2^histMaxExp ns (about 18 minutes) and more share the last
	// bucket; no bounded run produces them, and Max stays exact anyway.
	histMaxExp  = 40
	histBuckets = (histMaxExp - histSubBits + 1) * histSub
)

// HistRelErr bounds the relative error of Histogram.Quantile.
const HistRelErr = 1.0 / (2 * histSub)

// Histogram is a log-bucketed latency histogram. It is not safe for
// concurrent use: give each goroutine its own and Merge them.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

func histBucket(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	if v >= 1<<histMaxExp {
		return histBuckets - 1
	}
	shift := bits.Len64(uint64(v)) - histSubBits - 1
	return (shift+1)<<histSubBits + int(v>>shift) - histSub
}

// histRange returns the inclusive range of values in bucket b.
func histRange(b int) (lo, hi int64) {
	if b < histSub {
		return int64(b), int64(b)
	}
	shift := b>>histSubBits - 1
	lo = int64(b&(histSub-1)+histSub) << shift
	return lo, lo + int64(1)<<shift - 1
}

// Record adds one sample in nanoseconds; negative values (clock steps)
// count as 0.
func (h *Histogram) Record(v int64) {
	v = max(v, 0)
	h.counts[histBucket(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n++
	h.sum += float64(v)
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest sample exactly.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest sample exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the exact mean.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the q-quantile (0..1): the midpoint of the bucket that
// holds the sample of rank ceil(q·n), clamped to the exact min and max so
// that p0 and p100 are exact.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histRange(b)
			return time.Duration(min(max(lo+(hi-lo)/2, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
