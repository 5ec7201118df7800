package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"netchat/internal/syncbuf"
)

// histWait bounds every wait in these tests for something that should
// happen.
const histWait = 10 * time.Second

// loggedServe is a `serve` run in-process whose log is kept.
type loggedServe struct {
	addrs map[string]string
	logs  *syncbuf.Buffer
	stop  func() // stops the server and waits for runServe to return
}

// startServeLogged runs runServe like startServe, but keeps its log and can
// be stopped before the end of the test (to restart on the same data dir).
func startServeLogged(t *testing.T, o *serveOptions) *loggedServe {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	s := &loggedServe{addrs: map[string]string{}, logs: &syncbuf.Buffer{}}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, o, s.logs, func(kind string, a net.Addr) {
			mu.Lock()
			s.addrs[kind] = a.String()
			if kind == "chat" {
				close(ready)
			}
			mu.Unlock()
		})
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(histWait):
				t.Error("serve did not stop")
			}
		})
	}
	t.Cleanup(s.stop)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, s.logs)
	case <-time.After(histWait):
		t.Fatal("serve did not start listening")
	}
	mu.Lock()
	defer mu.Unlock()
	return s
}

// chatUser is a raw TCP chat user that reads exact lines.
type chatUser struct {
	t    *testing.T
	nick string
	c    net.Conn
	r    *bufio.Reader
}

// dialUser connects and reads the greeting, without choosing a nickname.
func dialUser(t *testing.T, addr string) *chatUser {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, histWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	u := &chatUser{t: t, c: c, r: bufio.NewReader(c)}
	u.expectPrefix("Welcome to netchat (")
	return u
}

// chatJoin connects as nick and reads up to the welcome line; the history
// block, if any, is next.
func chatJoin(t *testing.T, addr, nick string) *chatUser {
	t.Helper()
	u := dialUser(t, addr)
	u.nick = nick
	u.send(nick)
	u.expectPrefix("* Welcome, " + nick + "! ")
	return u
}

func (u *chatUser) send(lines ...string) {
	u.t.Helper()
	_ = u.c.SetWriteDeadline(time.Now().Add(histWait))
	for _, l := range lines {
		if _, err := io.WriteString(u.c, l+"\r\n"); err != nil {
			u.t.Fatalf("%s: send %q: %v", u.nick, l, err)
		}
	}
}

func (u *chatUser) readLine() string {
	u.t.Helper()
	_ = u.c.SetReadDeadline(time.Now().Add(histWait))
	l, err := u.r.ReadString('\n')
	if err != nil {
		u.t.Fatalf("%s: reading a line (got %q): %v", u.nick, l, err)
	}
	if !strings.HasSuffix(l, "\r\n") {
		u.t.Fatalf("%s: line %q not terminated by CR LF", u.nick, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func (u *chatUser) expect(want string) {
	u.t.Helper()
	if got := u.readLine(); got != want {
		u.t.Fatalf("%s: got %q, want %q", u.nick, got, want)
	}
}

func (u *chatUser) expectPrefix(prefix string) string {
	u.t.Helper()
	got := u.readLine()
	if !strings.HasPrefix(got, prefix) {
		u.t.Fatalf("%s: got %q, want a line starting with %q", u.nick, got, prefix)
	}
	return got
}

// expectEOF reads until the server closes the connection.
func (u *chatUser) expectEOF() {
	u.t.Helper()
	_ = u.c.SetReadDeadline(time.Now().Add(histWait))
	rest, err := io.ReadAll(u.r)
	if err != nil && !strings.Contains(err.Error(), "connection reset") {
		u.t.Fatalf("%s: waiting for the server to close: %v (read %q)", u.nick, err, rest)
	}
	if len(rest) > 0 {
		u.t.Fatalf("%s: unexpected lines before close: %q", u.nick, rest)
	}
	u.c.Close()
}

// expectNoHistory checks that no history block follows the welcome: the
// answer to /who comes right after it (the history, when there is one, is
// queued with the welcome, before any command can be answered).
func (u *chatUser) expectNoHistory() {
	u.t.Helper()
	u.send("/who")
	if l := u.readLine(); !whoRe.MatchString(l) {
		u.t.Fatalf("%s: got %q after the welcome, want the answer to /who", u.nick, l)
	}
}

var whoRe = regexp.MustCompile(`^\* \d+ online: `)

// expectHistory reads the recent-messages block that follows the welcome
// and returns its lines between the markers.
func (u *chatUser) expectHistory() []string {
	u.t.Helper()
	u.expect("* --- recent messages ---")
	var lines []string
	for {
		l := u.readLine()
		if l == "* --- end of recent messages ---" {
			return lines
		}
		lines = append(lines, l)
		if len(lines) > 1000 {
			u.t.Fatalf("%s: no end of recent messages", u.nick)
		}
	}
}

// sync makes sure the server has handled every line u sent so far.
func (u *chatUser) sync() {
	u.t.Helper()
	u.send("/whoami")
	u.expectPrefix("* you are ")
}

// record is one transcript line as SPEC §2.5 defines it.
type record struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	Nick string    `json:"nick"`
	Text string    `json:"text"`
	Node string    `json:"node"`
}

var recordFields = []string{"kind", "nick", "node", "text", "time"}

// parseRecord parses one transcript line strictly: exactly the five
// fields, an RFC 3339 time, a known kind and a nickname.
func parseRecord(line []byte) (record, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return record{}, err
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, recordFields) {
		return record{}, fmt.Errorf("fields %v, want %v", keys, recordFields)
	}
	var ts string
	if err := json.Unmarshal(fields["time"], &ts); err != nil {
		return record{}, fmt.Errorf("time: %v", err)
	}
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		return record{}, fmt.Errorf("time: %v", err)
	}
	var r record
	if err := json.Unmarshal(line, &r); err != nil {
		return record{}, err
	}
	switch r.Kind {
	case "msg", "me", "join", "leave", "nick":
	default:
		return record{}, fmt.Errorf("unknown kind %q", r.Kind)
	}
	if r.Nick == "" {
		return record{}, errors.New("no nick")
	}
	return r, nil
}

// readTranscript reads one transcript file. Every line must parse, except
// that a last line without its newline that does not parse is returned as
// torn (that is what a crash may leave).
func readTranscript(t *testing.T, path string) (recs []record, torn string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	for i, l := range lines {
		if l == "" {
			continue
		}
		r, err := parseRecord([]byte(strings.TrimSuffix(l, "\n")))
		if err != nil {
			if i == len(lines)-1 && !strings.HasSuffix(l, "\n") {
				return recs, l
			}
			t.Fatalf("%s line %d %q: %v", path, i+1, l, err)
		}
		recs = append(recs, r)
	}
	return recs, ""
}

// transcriptPaths lists the transcript files in dir, oldest first: the
// rotated ones by their time stamp and sequence number, then the current
// one if it exists.
func transcriptPaths(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	type rotated struct {
		stamp string
		seq   int
		name  string
	}
	var rot []rotated
	re := regexp.MustCompile(`^transcript-(\d{8}T\d{6})(?:-(\d+))?\.jsonl$`)
	current := false
	for _, e := range entries {
		if e.Name() == "transcript.jsonl" {
			current = true
			continue
		}
		if m := re.FindStringSubmatch(e.Name()); m != nil {
			seq, _ := strconv.Atoi(m[2])
			rot = append(rot, rotated{m[1], seq, e.Name()})
		}
	}
	slices.SortFunc(rot, func(a, b rotated) int {
		if c := strings.Compare(a.stamp, b.stamp); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	var paths []string
	for _, r := range rot {
		paths = append(paths, filepath.Join(dir, r.name))
	}
	if current {
		paths = append(paths, filepath.Join(dir, "transcript.jsonl"))
	}
	return paths
}

// historyLine is how the history block shows a msg or me record.
func historyLine(r record) string {
	stamp := "[" + r.Time.Local().Format("15:04") + "] "
	if r.Kind == "me" {
		return stamp + "* " + r.Nick + " " + r.Text
	}
	return stamp + r.Nick + ": " + r.Text
}

func uniqueMarker(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return what + "-" + hex.EncodeToString(b)
}

// TestTranscriptScriptedSession: after a scripted session the transcript
// holds exactly its public events, one JSON object per line with the
// fields of SPEC §2.5, in order; the private messages of the session
// (/msg and c:) appear in no file under the data dir.
func TestTranscriptScriptedSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o := testServeOptions()
	o.dataDir = dir
	o.node = "node-a"
	o.fsyncInterval = "always"
	o.logLevel = "debug"
	before := time.Now()
	s := startServeLogged(t, o)
	addr := s.addrs["chat"]

	secret1, secret2 := uniqueMarker(t, "PRIVATE1"), uniqueMarker(t, "PRIVATE2")
	alice := chatJoin(t, addr, "alice")
	bob := chatJoin(t, addr, "bob")
	alice.expect("* bob joined (2 online)")
	alice.send("hello everyone")
	bob.expect("alice: hello everyone")
	bob.send("/me waves")
	alice.expect("* bob waves")
	alice.send("/msg bob " + secret1)
	bob.expect("[private] alice: " + secret1)
	alice.expect("[private to bob] " + secret1)
	bob.send("c:alice:" + secret2)
	alice.expect("[private] bob: " + secret2)
	bob.expect("[private to alice] " + secret2)
	alice.send("/nick alicia")
	alice.expect("* alice is now known as alicia")
	bob.expect("* alice is now known as alicia")
	alice.send("b:still here") // the tutorial's broadcast form
	bob.expect("alicia: still here")
	bob.send("/quit gotta go")
	bob.expect("* bye")
	bob.expectEOF()
	alice.expect("* bob left (1 online): gotta go")
	alice.send("/quit")
	alice.expect("* bye")
	alice.expectEOF()
	s.stop() // closes the transcript: everything recorded is on disk
	after := time.Now()

	paths := transcriptPaths(t, dir)
	if len(paths) != 1 || filepath.Base(paths[0]) != "transcript.jsonl" {
		t.Fatalf("transcript files %v, want transcript.jsonl alone", paths)
	}
	recs, torn := readTranscript(t, paths[0])
	if torn != "" {
		t.Fatalf("torn last line after a clean stop: %q", torn)
	}
	type ev struct{ kind, nick, text string }
	want := []ev{
		{"join", "alice", ""},
		{"join", "bob", ""},
		{"msg", "alice", "hello everyone"},
		{"me", "bob", "waves"},
		{"nick", "alice", "alicia"},
		{"msg", "alicia", "still here"},
		{"leave", "bob", "gotta go"},
		{"leave", "alicia", ""},
	}
	var got []ev
	last := before
	for i, r := range recs {
		got = append(got, ev{r.Kind, r.Nick, r.Text})
		if r.Node != "node-a" {
			t.Errorf("record %d: node %q, want node-a", i, r.Node)
		}
		if r.Time.Before(last) || r.Time.After(after) {
			t.Errorf("record %d: time %v not in order within [%v, %v]", i, r.Time, last, after)
		}
		last = r.Time
	}
	if !slices.Equal(got, want) {
		t.Errorf("transcript events:\n got %v\nwant %v", got, want)
	}

	// Private messages are nowhere under the data dir, nor in the log.
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, secret := range []string{secret1, secret2} {
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("private message text %q found in %s", secret, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{secret1, secret2} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("private message text %q found in the debug log", secret)
		}
	}
}

// TestHistoryReplayAcrossRestart: joiners get the last --history public
// messages, oldest first, framed by the markers; after a restart on the
// same data dir the history is the same, continues with new messages, and
// follows a changed --history.
func TestHistoryReplayAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serve := func(history int) *loggedServe {
		o := testServeOptions()
		o.dataDir = dir
		o.history = history
		o.logLevel = "info"
		return startServeLogged(t, o)
	}
	histRe := regexp.MustCompile(`^\[\d\d:\d\d\] `)
	stripStamps := func(t *testing.T, lines []string) []string {
		t.Helper()
		var out []string
		for _, l := range lines {
			if !histRe.MatchString(l) {
				t.Fatalf("history line %q lacks its [HH:MM] stamp", l)
			}
			out = append(out, histRe.ReplaceAllString(l, ""))
		}
		return out
	}

	s1 := serve(5)
	alice := chatJoin(t, s1.addrs["chat"], "alice")
	alice.expectNoHistory() // a fresh data dir has none
	for i := 1; i <= 8; i++ {
		if i%3 == 0 {
			alice.send(fmt.Sprintf("/me does thing %d", i))
		} else {
			alice.send(fmt.Sprintf("message %d", i))
		}
	}
	alice.sync()
	carol := chatJoin(t, s1.addrs["chat"], "carol")
	want := []string{"alice: message 4", "alice: message 5", "* alice does thing 6", "alice: message 7", "alice: message 8"}
	if got := stripStamps(t, carol.expectHistory()); !slices.Equal(got, want) {
		t.Fatalf("history before the restart:\n got %q\nwant %q", got, want)
	}
	alice.c.Close()
	carol.c.Close()
	s1.stop()

	// The stamps after a restart come from the transcript's times.
	var msgs []record
	for _, p := range transcriptPaths(t, dir) {
		recs, _ := readTranscript(t, p)
		for _, r := range recs {
			if r.Kind == "msg" || r.Kind == "me" {
				msgs = append(msgs, r)
			}
		}
	}
	if len(msgs) != 8 {
		t.Fatalf("%d messages in the transcript, want 8", len(msgs))
	}
	var wantStamped []string
	for _, r := range msgs[3:] {
		wantStamped = append(wantStamped, historyLine(r))
	}

	s2 := serve(5)
	if !strings.Contains(s2.logs.String(), "history_loaded=5") {
		t.Errorf("no history_loaded=5 in the log:\n%s", s2.logs)
	}
	dave := chatJoin(t, s2.addrs["chat"], "dave")
	if got := dave.expectHistory(); !slices.Equal(got, wantStamped) {
		t.Fatalf("history after the restart:\n got %q\nwant %q", got, wantStamped)
	}
	dave.send("after restart", "/me is back")
	dave.sync()
	erin := chatJoin(t, s2.addrs["chat"], "erin")
	want = []string{"* alice does thing 6", "alice: message 7", "alice: message 8", "dave: after restart", "* dave is back"}
	if got := stripStamps(t, erin.expectHistory()); !slices.Equal(got, want) {
		t.Fatalf("history after the restart and new messages:\n got %q\nwant %q", got, want)
	}
	dave.c.Close()
	erin.c.Close()
	s2.stop()

	s3 := serve(3)
	frank := chatJoin(t, s3.addrs["chat"], "frank")
	want = []string{"alice: message 8", "dave: after restart", "* dave is back"}
	if got := stripStamps(t, frank.expectHistory()); !slices.Equal(got, want) {
		t.Fatalf("history with --history 3:\n got %q\nwant %q", got, want)
	}
	frank.c.Close()
	s3.stop()

	s4 := serve(50) // more than there is: all of it, across both runs
	gina := chatJoin(t, s4.addrs["chat"], "gina")
	if got := gina.expectHistory(); len(got) != 10 {
		t.Fatalf("history with --history 50 has %d lines, want all 10: %q", len(got), got)
	}
}

// TestHistoryZero: --history 0 sends no history block, with or without a
// data dir; the transcript is still written.
func TestHistoryZero(t *testing.T) {
	t.Parallel()
	for _, withDir := range []bool{false, true} {
		t.Run(fmt.Sprintf("data-dir=%v", withDir), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if withDir {
				// A transcript from an earlier run, which must not be shown.
				old := `{"time":"2025-01-02T03:04:05Z","kind":"msg","nick":"old","text":"from before","node":"n"}` + "\n"
				if err := os.WriteFile(filepath.Join(dir, "transcript.jsonl"), []byte(old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			o := testServeOptions()
			o.history = 0
			if withDir {
				o.dataDir = dir
			}
			s := startServeLogged(t, o)
			alice := chatJoin(t, s.addrs["chat"], "alice")
			alice.expectNoHistory()
			alice.send("one", "/me two")
			alice.sync()
			bob := chatJoin(t, s.addrs["chat"], "bob")
			bob.send("/who")
			bob.expect("* 2 online: alice, bob")
			alice.c.Close()
			bob.c.Close()
			s.stop()
			if !withDir {
				return
			}
			recs, _ := readTranscript(t, filepath.Join(dir, "transcript.jsonl"))
			var texts []string
			for _, r := range recs {
				if r.Kind == "msg" || r.Kind == "me" {
					texts = append(texts, r.Text)
				}
			}
			if want := []string{"from before", "one", "two"}; !slices.Equal(texts, want) {
				t.Errorf("transcript messages %q, want %q", texts, want)
			}
		})
	}
}

// TestTranscriptTornLastLine: a transcript whose last line was cut (by
// hand here, by a crash in life) loads with that line skipped and
// reported with the file name and offset; the valid messages before it
// are the history, and the next append starts on a line of its own. A last
// line that is complete but lacks its newline is kept.
func TestTranscriptTornLastLine(t *testing.T) {
	t.Parallel()
	base := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	valid := []record{
		{Time: base, Kind: "join", Nick: "old", Node: "n"},
		{Time: base.Add(time.Minute), Kind: "msg", Nick: "old", Text: "first", Node: "n"},
		{Time: base.Add(2 * time.Minute), Kind: "me", Nick: "old", Text: "stretches", Node: "n"},
		{Time: base.Add(3 * time.Minute), Kind: "msg", Nick: "old", Text: "third ✓", Node: "n"},
	}
	last := record{Time: base.Add(4 * time.Minute), Kind: "msg", Nick: "old", Text: "the last one", Node: "n"}
	var good bytes.Buffer
	for _, r := range valid {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		good.Write(append(b, '\n'))
	}
	lastLine, err := json.Marshal(last)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		tail []byte   // what follows the valid lines
		warn string   // the log message expected
		kept []record // messages the history shows
	}{
		{"cut mid-record", lastLine[:len(lastLine)/2], "torn last line in transcript skipped", valid[1:]},
		{"cut before the newline", lastLine, "last line of transcript lacks its newline", append(valid[1:len(valid):len(valid)], last)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "transcript.jsonl")
			content := append(bytes.Clone(good.Bytes()), tc.tail...)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			o := testServeOptions()
			o.dataDir = dir
			o.logLevel = "info"
			s := startServeLogged(t, o)

			var warning string
			for _, l := range strings.Split(s.logs.String(), "\n") {
				if strings.Contains(l, tc.warn) {
					warning = l
				}
			}
			offset := "offset=" + strconv.Itoa(good.Len())
			if warning == "" || !strings.Contains(warning, "level=WARN") ||
				!strings.Contains(warning, "file=transcript.jsonl") || !strings.Contains(warning, offset) {
				t.Fatalf("want a warning %q with file=transcript.jsonl and %s; log:\n%s", tc.warn, offset, s.logs)
			}

			var want []string
			for _, r := range tc.kept {
				want = append(want, historyLine(r))
			}
			alice := chatJoin(t, s.addrs["chat"], "alice")
			if got := alice.expectHistory(); !slices.Equal(got, want) {
				t.Fatalf("history:\n got %q\nwant %q", got, want)
			}
			alice.send("new after the cut")
			alice.sync()
			alice.c.Close()
			s.stop()

			// The fragment kept its own line: the records appended after it
			// all parse, and the file is whole up to the fragment.
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, content) {
				t.Fatalf("the transcript before the cut was changed:\n%s", data)
			}
			rest := strings.TrimPrefix(string(data), string(content))
			if !strings.HasPrefix(rest, "\n") {
				t.Fatalf("the first append after the cut does not start a new line: %q", rest)
			}
			var texts []string
			for i, l := range strings.Split(strings.TrimSuffix(rest[1:], "\n"), "\n") {
				r, err := parseRecord([]byte(l))
				if err != nil {
					t.Fatalf("line %d appended after the cut: %q: %v", i+1, l, err)
				}
				texts = append(texts, r.Kind+":"+r.Text)
			}
			if want := []string{"join:", "msg:new after the cut", "leave:"}; !slices.Equal(texts, want) {
				t.Errorf("appended after the cut: %q, want %q", texts, want)
			}

			// And the next start still has all of the valid history.
			s2 := startServeLogged(t, o)
			bob := chatJoin(t, s2.addrs["chat"], "bob")
			got := bob.expectHistory()
			if len(got) != len(want)+1 || !slices.Equal(got[:len(want)], want) ||
				!strings.HasSuffix(got[len(want)], "] alice: new after the cut") {
				t.Fatalf("history after the next restart:\n got %q\nwant %q and alice's new message", got, want)
			}
		})
	}
}

// TestHelperServe is not a test: TestCrashSIGKILL runs the test binary
// again with it, to have a real `netchat serve` process to kill.
func TestHelperServe(t *testing.T) {
	if os.Getenv("NETCHAT_HELPER_SERVE") != "1" {
		t.Skip("helper process for TestCrashSIGKILL")
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv("NETCHAT_HELPER_SERVE_ARGS")), &args); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	// Should the parent die without killing us, its end of our stdin
	// closes: stop then, and in any case after a while.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(4)
	}()
	time.AfterFunc(2*time.Minute, func() { os.Exit(5) })
	os.Exit(run(append([]string{"serve"}, args...)))
}

// serveProcess is a `netchat serve` child process.
type serveProcess struct {
	cmd    *exec.Cmd
	logs   *syncbuf.Buffer
	addr   string
	exited chan error
}

func startServeProcess(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	enc, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$", "-test.count=1", "-test.timeout=3m")
	cmd.Env = append(os.Environ(), "NETCHAT_HELPER_SERVE=1", "NETCHAT_HELPER_SERVE_ARGS="+string(enc))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProcess{cmd: cmd, logs: &syncbuf.Buffer{}, exited: make(chan error, 1)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(histWait):
			t.Error("serve process did not exit after SIGKILL")
		}
		_ = stdin.Close()
	})
	addrc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`msg="chat server listening" addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			_, _ = p.logs.Write([]byte(sc.Text() + "\n"))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		p.exited <- cmd.Wait()
	}()
	select {
	case p.addr = <-addrc:
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("serve exited before listening: %v\n%s", err, p.logs)
	case <-time.After(histWait):
		t.Fatalf("serve did not report its address\n%s", p.logs)
	}
	return p
}

// TestCrashSIGKILL: a real serve process is killed with SIGKILL during
// steady traffic. Every transcript line but possibly a torn last one
// parses, each user's messages are in order, and a restart on the same
// data dir starts and shows the last messages, in order, as history.
func TestCrashSIGKILL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"-l", "127.0.0.1:0", "--data-dir", dir, "--fsync-interval", "10ms",
		"--log-level", "info", "--history", "10", "--msg-rate", "0", "--node", "crashnode",
		"--transcript-max-size", "16KiB", "--name", "crash"}
	p := startServeProcess(t, args...)

	// Three users chat as fast as the server takes it; each drains what it
	// is sent so that none becomes a slow consumer.
	const users = 3
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var conns []net.Conn
	t.Cleanup(func() {
		close(stop)
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	for i := range users {
		u := chatJoin(t, p.addr, fmt.Sprintf("user%d", i))
		conns = append(conns, u.c)
		_ = u.c.SetDeadline(time.Time{})
		wg.Go(func() { _, _ = io.Copy(io.Discard, u.c) })
		wg.Go(func() {
			w := bufio.NewWriter(u.c)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				_ = u.c.SetWriteDeadline(time.Now().Add(histWait))
				if n%5 == 4 {
					fmt.Fprintf(w, "/me counts %d\n", n)
				} else {
					fmt.Fprintf(w, "%s says %d\n", u.nick, n)
				}
				if n%8 == 7 {
					if err := w.Flush(); err != nil {
						return // the server is gone
					}
				}
			}
		})
	}

	// Kill it in full flow, once the transcript has rotated a few times.
	deadline := time.Now().Add(30 * time.Second)
	for {
		paths := transcriptPaths(t, dir)
		if len(paths) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the transcript did not grow: %v\n%s", paths, p.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != -1 {
			t.Fatalf("serve did not die from SIGKILL: %v\n%s", err, p.logs)
		}
		p.exited <- err
	case <-time.After(histWait):
		t.Fatal("serve still running after SIGKILL")
	}

	// Every line of every file parses, but for a torn last line of the
	// newest file; each user's numbers only go up.
	paths := transcriptPaths(t, dir)
	var msgs []record
	var tornTail bool
	lastN := map[string]int{}
	for i, path := range paths {
		recs, torn := readTranscript(t, path)
		if torn != "" {
			if i != len(paths)-1 || filepath.Base(path) != "transcript.jsonl" {
				t.Fatalf("%s: torn line %q in a file that is not the current one", path, torn)
			}
			t.Logf("torn last line: %q", torn)
			tornTail = true
		}
		for _, r := range recs {
			if r.Node != "crashnode" {
				t.Fatalf("%s: node %q", path, r.Node)
			}
			if r.Kind != "msg" && r.Kind != "me" {
				continue
			}
			f := strings.Fields(r.Text)
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				t.Fatalf("%s: unexpected message %q", path, r.Text)
			}
			if prev, ok := lastN[r.Nick]; ok && n <= prev {
				t.Fatalf("%s: %s's message %d after %d", path, r.Nick, n, prev)
			}
			lastN[r.Nick] = n
			msgs = append(msgs, r)
		}
	}
	if len(msgs) < 10 {
		t.Fatalf("only %d messages in the transcript", len(msgs))
	}
	t.Logf("%d messages in %d files before the kill", len(msgs), len(paths))
	var want []string
	for _, r := range msgs[len(msgs)-10:] {
		want = append(want, historyLine(r))
	}

	// Restart on the same data dir: it starts, and shows the last ten.
	p2 := startServeProcess(t, args...)
	if !strings.Contains(p2.logs.String(), "history_loaded=10") {
		t.Errorf("restart did not load 10 messages:\n%s", p2.logs)
	}
	if tornTail && !strings.Contains(p2.logs.String(), "torn last line in transcript skipped") {
		t.Errorf("the torn last line was not reported:\n%s", p2.logs)
	}
	if strings.Contains(p2.logs.String(), "unparsable lines") {
		t.Errorf("restart found damage beyond a torn last line:\n%s", p2.logs)
	}
	u := chatJoin(t, p2.addr, "checker")
	if got := u.expectHistory(); !slices.Equal(got, want) {
		t.Fatalf("history after the crash:\n got %q\nwant %q", got, want)
	}
	// And it goes on recording.
	u.send("after the crash")
	u.sync()
	u2 := chatJoin(t, p2.addr, "other")
	if got := u2.expectHistory(); !strings.HasSuffix(got[len(got)-1], "] checker: after the crash") {
		t.Fatalf("history after a new message: %q", got)
	}
}
