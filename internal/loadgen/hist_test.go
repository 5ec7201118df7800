package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistBucketsTileTheRange(t *testing.T) {
	prevHi := int64(-1)
	for b := range histBuckets {
		lo, hi := histRange(b)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d is [%d,%d], previous ended at %d", b, lo, hi, prevHi)
		}
		if histBucket(lo) != b || histBucket(hi) != b {
			t.Fatalf("bucket %d [%d,%d] maps back to %d and %d", b, lo, hi, histBucket(lo), histBucket(hi))
		}
		if lo >= histSub && float64(hi-lo+1)/float64(lo) > 2*HistRelErr {
			t.Fatalf("bucket %d [%d,%d] is wider than the stated error allows", b, lo, hi)
		}
		prevHi = hi
	}
	if histBucket(math.MaxInt64) != histBuckets-1 || histBucket(-5) != 0 {
		t.Fatal("out-of-range values are not clamped to the end buckets")
	}
}

// TestHistQuantiles compares the histogram with exact order statistics of
// a wide, skewed distribution (about 10µs to seconds, like latencies).
func TestHistQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	all := make([]int64, 0, 200_000)
	var sum float64
	for range cap(all) {
		v := int64(10_000 * math.Exp(rng.NormFloat64()*2+2))
		h.Record(v)
		all = append(all, v)
		sum += float64(v)
	}
	slices.Sort(all)
	for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := max(int(math.Ceil(q*float64(len(all)))), 1)
		want := all[rank-1]
		got := int64(h.Quantile(q))
		if rel := math.Abs(float64(got-want)) / float64(want); rel > HistRelErr {
			t.Errorf("q%.3f = %d, exact %d: relative error %.4f > %.4f", q, got, want, rel, HistRelErr)
		}
	}
	if h.Min() != time.Duration(all[0]) || h.Max() != time.Duration(all[len(all)-1]) {
		t.Errorf("min/max %v/%v, want exact %v/%v", h.Min(), h.Max(), all[0], all[len(all)-1])
	}
	if want := time.Duration(sum / float64(len(all))); h.Mean() != want {
		t.Errorf("mean %v, want %v", h.Mean(), want)
	}
	if h.Count() != uint64(len(all)) {
		t.Errorf("count %d, want %d", h.Count(), len(all))
	}
}

func TestHistMerge(t *testing.T) {
	var a, b, both Histogram
	for i := range int64(1000) {
		v := i * i * 37
		both.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var empty, m Histogram
	m.Merge(&empty)
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&empty)
	if m != both {
		t.Fatalf("merged histogram differs: count %d/%d min %v/%v max %v/%v",
			m.Count(), both.Count(), m.Min(), both.Min(), m.Max(), both.Max())
	}
	if empty.Quantile(0.5) != 0 || empty.Mean() != 0 {
		t.Fatal("an empty histogram reports non-zero values")
	}
}
