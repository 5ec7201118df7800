package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects slog output from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func mustOpen(t *testing.T, opts Options) *Transcript {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tr, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// event makes the i-th test event; kinds cycle through every kind.
func event(i int) Event {
	kinds := []string{KindMsg, KindMe, KindJoin, KindLeave, KindNick}
	return Event{
		Time: time.Date(2025, 3, 1, 12, 0, 0, i*1001, time.UTC).Add(time.Duration(i) * time.Second),
		Kind: kinds[i%len(kinds)],
		Nick: fmt.Sprintf("user%d", i%7),
		Text: fmt.Sprintf("text %d <&> \"quoted\" ünïcødé", i),
		Node: "node-a",
	}
}

// transcriptFiles returns the rotated files oldest first, then the current.
func transcriptFiles(t *testing.T, dir string) []string {
	t.Helper()
	rotated, err := rotatedFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, name := range rotated {
		paths = append(paths, filepath.Join(dir, name))
	}
	return append(paths, filepath.Join(dir, CurrentName))
}

// readLines returns the lines of path (without '\n') and whether it ends in
// a newline.
func readLines(t *testing.T, path string) (lines []string, terminated bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		return nil, true
	}
	terminated = data[len(data)-1] == '\n'
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"), terminated
}

// readAll parses every line of every transcript file, failing on any line
// that does not parse.
func readAll(t *testing.T, dir string) []Event {
	t.Helper()
	var evs []Event
	for _, p := range transcriptFiles(t, dir) {
		lines, terminated := readLines(t, p)
		if !terminated {
			t.Errorf("%s does not end in a newline", p)
		}
		for i, l := range lines {
			var ev Event
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("%s line %d: %v: %q", p, i+1, err, l)
			}
			evs = append(evs, ev)
		}
	}
	return evs
}

func sameEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) || g.Kind != w.Kind || g.Nick != w.Nick || g.Text != w.Text || g.Node != w.Node {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func messagesOnly(evs []Event) []Event {
	return slices.DeleteFunc(slices.Clone(evs), func(e Event) bool {
		return e.Kind != KindMsg && e.Kind != KindMe
	})
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	const n = 200
	var want []Event
	tr := mustOpen(t, Options{Dir: dir, FsyncInterval: time.Hour, MaxSize: 4096, QueueLen: n})
	for i := range n {
		ev := event(i)
		want = append(want, ev)
		tr.Record(ev)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if tr.Dropped() != 0 {
		t.Fatalf("dropped %d events with a queue as long as the input", tr.Dropped())
	}
	files := transcriptFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("want several rotated files, got %v", files)
	}
	sameEvents(t, readAll(t, dir), want)

	// Every field is present in every line, "node" and empty text included.
	lines, _ := readLines(t, files[0])
	for _, key := range []string{`"time":`, `"kind":`, `"nick":`, `"text":`, `"node":`} {
		if !strings.Contains(lines[0], key) {
			t.Errorf("line %q lacks %s", lines[0], key)
		}
	}

	// The current file holds fewer messages than asked for, so Recent has
	// to reach back across rotation boundaries.
	curLines, _ := readLines(t, files[len(files)-1])
	msgs := messagesOnly(want)
	for _, recent := range []int{1, 5, len(curLines) + 10, len(msgs), len(msgs) + 5} {
		t.Run(fmt.Sprintf("recent=%d", recent), func(t *testing.T) {
			tr := mustOpen(t, Options{Dir: dir, Recent: recent})
			wantN := min(recent, len(msgs))
			sameEvents(t, tr.Recent(recent), msgs[len(msgs)-wantN:])
			sameEvents(t, tr.Recent(recent+100), msgs[len(msgs)-wantN:])
			if got := tr.Recent(1); wantN > 0 && (len(got) != 1 || got[0].Text != msgs[len(msgs)-1].Text) {
				t.Errorf("Recent(1) = %+v, want the newest message", got)
			}
			if got := tr.Recent(0); got != nil {
				t.Errorf("Recent(0) = %v", got)
			}
		})
	}
}

func TestRecentDefaultsAndNone(t *testing.T) {
	dir := t.TempDir()
	tr := mustOpen(t, Options{Dir: dir})
	for i := range 50 {
		tr.Record(Event{Kind: KindMsg, Nick: "a", Text: fmt.Sprint(i)})
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	tr = mustOpen(t, Options{Dir: dir})
	if got := len(tr.Recent(100)); got != DefaultRecent {
		t.Errorf("default Recent loaded %d, want %d", got, DefaultRecent)
	}
	if got := tr.Recent(100)[DefaultRecent-1].Text; got != "49" {
		t.Errorf("newest = %q, want 49", got)
	}
	if got := tr.Recent(100)[0].Time; got.IsZero() {
		t.Error("a zero Time was not stamped by the writer")
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	tr = mustOpen(t, Options{Dir: dir, Recent: -1})
	if got := tr.Recent(100); len(got) != 0 {
		t.Errorf("Recent -1 loaded %d events", len(got))
	}
}

func TestTornTranscript(t *testing.T) {
	good := func(i int) string {
		b, err := json.Marshal(Event{Time: time.Unix(int64(i), 0).UTC(), Kind: KindMsg, Nick: "bob", Text: fmt.Sprint("m", i), Node: "n"})
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	head := good(1) + good(2) + good(3)
	tests := []struct {
		name       string
		content    string
		wantRecent []string // texts
		wantLog    []string
		skipped    int // lines that must stay unparsable after appending
	}{
		{
			name:       "cut mid-JSON",
			content:    head + good(4)[:30],
			wantRecent: []string{"m1", "m2", "m3"},
			wantLog:    []string{"torn last line", "file=" + CurrentName, fmt.Sprintf("offset=%d", len(head))},
			skipped:    1,
		},
		{
			name:       "zero-filled tail",
			content:    head + "\x00\x00\x00\x00",
			wantRecent: []string{"m1", "m2", "m3"},
			wantLog:    []string{"torn last line", fmt.Sprintf("offset=%d", len(head))},
			skipped:    1,
		},
		{
			name:       "unparsable final line with newline",
			content:    head + "{\"time\":\n",
			wantRecent: []string{"m1", "m2", "m3"},
			wantLog:    []string{"torn last line", fmt.Sprintf("offset=%d", len(head))},
			skipped:    1,
		},
		{
			name:       "complete record missing only its newline",
			content:    head + strings.TrimSuffix(good(4), "\n"),
			wantRecent: []string{"m1", "m2", "m3", "m4"},
			wantLog:    []string{"lacks its newline", fmt.Sprintf("offset=%d", len(head))},
		},
		{
			name:       "garbage in the middle",
			content:    good(1) + "garbage\n" + good(2) + "{\"x\n" + good(3),
			wantRecent: []string{"m1", "m2", "m3"},
			wantLog:    []string{"unparsable lines", "lines=2", fmt.Sprintf("first_offset=%d", len(good(1)))},
			skipped:    2,
		},
		{
			name:       "only a fragment",
			content:    `{"time":"2025`,
			wantRecent: nil,
			wantLog:    []string{"torn last line", "offset=0"},
			skipped:    1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, CurrentName)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			log, logs := newLogger()
			tr := mustOpen(t, Options{Dir: dir, Logger: log})
			var texts []string
			for _, ev := range tr.Recent(100) {
				texts = append(texts, ev.Text)
			}
			if !slices.Equal(texts, tt.wantRecent) {
				t.Errorf("Recent texts = %q, want %q", texts, tt.wantRecent)
			}
			for _, w := range tt.wantLog {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, logs)
				}
			}

			tr.Record(Event{Kind: KindMsg, Nick: "carol", Text: "after"})
			tr.Record(Event{Kind: KindJoin, Nick: "dave"})
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			// The original bytes are untouched, and every line but the
			// skipped ones parses.
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(data), tt.content) {
				t.Fatalf("transcript was rewritten:\n%q", data)
			}
			lines, terminated := readLines(t, path)
			if !terminated {
				t.Error("transcript does not end in a newline")
			}
			bad := 0
			for _, l := range lines {
				var ev Event
				if json.Unmarshal([]byte(l), &ev) != nil {
					bad++
				}
			}
			if bad != tt.skipped {
				t.Errorf("%d unparsable lines, want %d:\n%s", bad, tt.skipped, data)
			}
			var last Event
			if err := json.Unmarshal([]byte(lines[len(lines)-2]), &last); err != nil || last.Text != "after" {
				t.Errorf("appended record = %+v, %v", last, err)
			}

			// A second restart sees the same history plus the new message.
			tr = mustOpen(t, Options{Dir: dir})
			got := tr.Recent(100)
			if len(got) != len(tt.wantRecent)+1 || got[len(got)-1].Text != "after" {
				t.Errorf("after restart Recent = %+v", got)
			}
		})
	}
}

func TestQueueFullNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	log, logs := newLogger()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	const queueLen = 4
	tr, err := open(Options{Dir: dir, QueueLen: queueLen, Logger: log}, hooks{
		beforeBatch: func() {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	tr.Record(Event{Kind: KindMsg, Text: "first"})
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("writer never picked up the first event")
	}
	// The writer is stuck holding "first"; the queue takes queueLen more.
	const n = 1000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			tr.Record(Event{Kind: KindMsg, Text: fmt.Sprint(i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Record blocked on a full queue")
	}
	if got, want := tr.Dropped(), uint64(n-queueLen); got != want {
		t.Errorf("Dropped = %d, want %d", got, want)
	}
	waitFor(t, 5*time.Second, "the drop warning", func() bool {
		return strings.Contains(logs.String(), "queue full")
	})
	if c := strings.Count(logs.String(), "queue full"); c != 1 {
		t.Errorf("%d drop warnings within a second, want 1:\n%s", c, logs)
	}
	close(release)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(readAll(t, dir)); got != 1+queueLen {
		t.Errorf("%d events written, want %d", got, 1+queueLen)
	}
	tr.Record(Event{Kind: KindMsg, Text: "late"})
	if got, want := tr.Dropped(), uint64(n-queueLen+1); got != want {
		t.Errorf("Record after Close: Dropped = %d, want %d", got, want)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	const maxSize = 1000
	tr := mustOpen(t, Options{Dir: dir, MaxSize: maxSize, FsyncInterval: time.Hour})
	var want []Event
	for i := range 100 {
		want = append(want, event(i))
		tr.Record(want[i])
	}
	huge := Event{Time: time.Unix(0, 0).UTC(), Kind: KindMsg, Nick: "big", Text: strings.Repeat("x", 3*maxSize)}
	want = append(want, huge, event(100))
	tr.Record(huge)
	tr.Record(event(100))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	files := transcriptFiles(t, dir)
	if len(files) < 5 {
		t.Fatalf("only %d files for ~%d bytes at max %d", len(files), 100*150, maxSize)
	}
	sawHuge := false
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		lines, _ := readLines(t, p)
		if strings.Contains(lines[0], `"big"`) {
			sawHuge = true
			if len(lines) != 1 {
				t.Errorf("oversized line shares %s with %d others", p, len(lines)-1)
			}
			continue
		}
		if st.Size() > maxSize {
			t.Errorf("%s is %d bytes, over MaxSize %d", p, st.Size(), maxSize)
		}
		if base := filepath.Base(p); base != CurrentName {
			if _, _, ok := parseRotatedName(base); !ok {
				t.Errorf("unexpected rotated name %s", base)
			}
		}
	}
	if !sawHuge {
		t.Error("oversized event not found")
	}
	// Many rotations within one second exercise the numeric suffixes, and
	// reading in name order gives back the recording order.
	sameEvents(t, readAll(t, dir), want)
}

func TestRotatedNameOrder(t *testing.T) {
	names := []string{
		"transcript-20250301T120000-10.jsonl",
		"transcript-20250301T120001.jsonl",
		"transcript-20250301T120000-2.jsonl",
		"transcript-20250301T120000.jsonl",
		"transcript-20241231T235959.jsonl",
		"transcript-20250301T120000-1.jsonl",
	}
	ignored := []string{
		"transcript.jsonl", "transcript-x.jsonl", "transcript-20250301T120000-0.jsonl",
		"transcript-20250301T120000.jsonl.gz", "notes.txt", "transcript-20250301T120000-a.jsonl",
	}
	dir := t.TempDir()
	for _, n := range append(slices.Clone(names), ignored...) {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rotatedFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"transcript-20241231T235959.jsonl",
		"transcript-20250301T120000.jsonl",
		"transcript-20250301T120000-1.jsonl",
		"transcript-20250301T120000-2.jsonl",
		"transcript-20250301T120000-10.jsonl",
		"transcript-20250301T120001.jsonl",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rotatedFiles =\n%q\nwant\n%q", got, want)
	}
}

func TestFsyncPolicy(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		// wantSync says whether an fsync must follow a write without any
		// further event or Close.
		wantSync bool
	}{
		{"always", 0, true},
		{"short interval", 10 * time.Millisecond, true},
		{"long interval", time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tr := mustOpen(t, Options{Dir: dir, FsyncInterval: tt.interval})
			path := filepath.Join(dir, CurrentName)
			for i := range 3 {
				tr.Record(event(i))
				// The write itself never waits for the fsync interval.
				waitFor(t, 5*time.Second, "the line on disk", func() bool {
					lines, _ := readLines(t, path)
					return len(lines) == i+1
				})
				if tt.wantSync {
					waitFor(t, 5*time.Second, "an fsync", func() bool {
						return tr.syncs.Load() >= uint64(i+1) || tt.interval > 0
					})
				}
			}
			if tt.wantSync {
				waitFor(t, 5*time.Second, "an fsync", func() bool { return tr.syncs.Load() > 0 })
			} else if s := tr.syncs.Load(); s != 0 {
				t.Errorf("%d fsyncs within an hour-long interval", s)
			}
			if tt.interval == 0 {
				if s := tr.syncs.Load(); s < 3 {
					t.Errorf("fsync always: %d fsyncs for 3 separate events", s)
				}
			}
			before := tr.syncs.Load()
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			if !tt.wantSync && tr.syncs.Load() != before+1 {
				t.Error("Close did not fsync pending data")
			}
		})
	}
}

func TestCloseIdempotent(t *testing.T) {
	tr := mustOpen(t, Options{Dir: t.TempDir()})
	tr.Record(event(0))
	for range 3 {
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteErrorsAreCountedNotFatal(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full:", err)
	}
	dir := t.TempDir()
	if err := os.Symlink("/dev/full", filepath.Join(dir, CurrentName)); err != nil {
		t.Fatal(err)
	}
	log, logs := newLogger()
	tr, err := Open(Options{Dir: dir, Logger: log, FsyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		tr.Record(event(i))
		if i%10 == 0 {
			waitFor(t, 5*time.Second, "the writer to fail", func() bool { return tr.WriteErrors() > uint64(i/10) })
		}
	}
	_ = tr.Close()
	if tr.WriteErrors() < 10 {
		t.Errorf("WriteErrors = %d, want one per failed batch", tr.WriteErrors())
	}
	out := logs.String()
	if !strings.Contains(out, "transcript write failed") {
		t.Errorf("write failure not logged:\n%s", out)
	}
	if c := strings.Count(out, "transcript write failed"); c > 2 {
		t.Errorf("write failure logged %d times, want rate-limited", c)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	tests := []Options{
		{},
		{Dir: t.TempDir(), FsyncInterval: -1},
		{Dir: t.TempDir(), MaxSize: -1},
		{Dir: t.TempDir(), QueueLen: -1},
	}
	for _, opts := range tests {
		if tr, err := Open(opts); err == nil {
			tr.Close()
			t.Errorf("Open(%+v) succeeded", opts)
		}
	}
}

func TestParseFsyncInterval(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"always", 0, false},
		{"Always", 0, false},
		{" always ", 0, false},
		{"1s", time.Second, false},
		{"200ms", 200 * time.Millisecond, false},
		{"1m30s", 90 * time.Second, false},
		{"0", 0, true},
		{"0s", 0, true},
		{"-1s", 0, true},
		{"", 0, true},
		{"never", 0, true},
		{"10", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseFsyncInterval(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseFsyncInterval(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestScanLinesBackward(t *testing.T) {
	type line struct {
		off        int64
		text       string
		terminated bool
		tooLong    bool
	}
	show := func(ls []line) string {
		var b strings.Builder
		for _, l := range ls {
			fmt.Fprintf(&b, "{%d %.10q %v %v}", l.off, l.text, l.terminated, l.tooLong)
		}
		return b.String()
	}
	// forward is the reference: the same split done the obvious way.
	forward := func(s string) []line {
		var out []line
		off := 0
		for off < len(s) {
			i := strings.IndexByte(s[off:], '\n')
			if i < 0 {
				l := line{int64(off), s[off:], false, len(s)-off > maxLineLen}
				if l.tooLong {
					l.text = ""
				}
				out = append(out, l)
				break
			}
			l := line{int64(off), s[off : off+i], true, i > maxLineLen}
			if l.tooLong {
				l.text = ""
			}
			out = append(out, l)
			off += i + 1
		}
		slices.Reverse(out)
		return out
	}
	inputs := []string{
		"", "\n", "\n\n", "a", "a\n", "ab\ncd", "ab\ncd\n", "\nab\n\ncd\n\n",
		"first line\nsecond, longer line\nthird",
		strings.Repeat("x", maxLineLen+1) + "\nshort\n",
		"short\n" + strings.Repeat("y", maxLineLen+5),
		strings.Repeat("z", maxLineLen) + "\n",
	}
	for _, in := range inputs {
		for _, chunk := range []int64{1, 2, 3, 7, readChunk} {
			if len(in) > 1000 && chunk < 1000 {
				continue // byte-sized chunks over a MiB take too long
			}
			var got []line
			err := scanLinesBackward(strings.NewReader(in), int64(len(in)), chunk, func(off int64, b []byte, terminated, tooLong bool) bool {
				got = append(got, line{off, string(b), terminated, tooLong})
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := forward(in); !slices.Equal(got, want) {
				t.Errorf("input %.20q (%d bytes), chunk %d:\n got %s\nwant %s", in, len(in), chunk, show(got), show(want))
			}
		}
	}
}

// TestReadBackStopsEarly checks that Open reads only what Recent needs: a
// damaged older file that holds nothing needed is not even reported.
func TestReadBackStopsEarly(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "transcript-20200101T000000.jsonl"), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := mustOpen(t, Options{Dir: dir})
	for i := range 10 {
		tr.Record(Event{Kind: KindMsg, Text: fmt.Sprint(i)})
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	log, logs := newLogger()
	tr = mustOpen(t, Options{Dir: dir, Recent: 5, Logger: log})
	if len(tr.Recent(5)) != 5 || strings.Contains(logs.String(), "transcript-2020") {
		t.Errorf("Recent = %v; log:\n%s", tr.Recent(5), logs)
	}
	tr = mustOpen(t, Options{Dir: dir, Recent: 50, Logger: log})
	if len(tr.Recent(50)) != 10 || !strings.Contains(logs.String(), "transcript-2020") {
		t.Errorf("Recent = %v; log:\n%s", tr.Recent(50), logs)
	}
}

// lineCount counts complete lines in path.
func lineCount(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n
}
