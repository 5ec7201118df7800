package history

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

func BenchmarkRecord(b *testing.B) {
	ev := Event{Time: time.Now(), Kind: KindMsg, Nick: "alice", Text: "hello, how is everyone doing today?", Node: "node-1"}
	open := func(b *testing.B) *Transcript {
		tr, err := Open(Options{Dir: b.TempDir(), FsyncInterval: DefaultFsyncInterval, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		return tr
	}
	// Record outruns any disk, so most events are dropped here; the figure
	// that matters is that the call stays cheap and allocation-free
	// whatever the writer is doing. dropped/op shows how many of them.
	b.Run("serial", func(b *testing.B) {
		tr := open(b)
		b.ReportAllocs()
		for b.Loop() {
			tr.Record(ev)
		}
		b.StopTimer()
		b.ReportMetric(float64(tr.Dropped())/float64(b.N), "dropped/op")
		_ = tr.Close()
	})
	b.Run("parallel", func(b *testing.B) {
		tr := open(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				tr.Record(ev)
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(tr.Dropped())/float64(b.N), "dropped/op")
		_ = tr.Close()
	})
}

// BenchmarkWriter measures what the writer goroutine sustains: encoding and
// writing full batches, without fsync. Its events/s is the rate above which
// Record starts dropping.
func BenchmarkWriter(b *testing.B) {
	t := &Transcript{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w, _, err := openWriter(t, Options{Dir: b.TempDir(), FsyncInterval: time.Hour, MaxSize: DefaultMaxSize})
	if err != nil {
		b.Fatal(err)
	}
	defer w.close()
	batch := make([]Event, maxBatch)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = Event{Time: time.Now(), Kind: KindMsg, Nick: "alice", Text: "hello, how is everyone doing today?", Node: "node-1"}
		}
		w.writeBatch(batch)
		n += len(batch)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}
