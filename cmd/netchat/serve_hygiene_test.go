package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPoisonedTranscriptReplayedClean: a transcript.jsonl with hostile
// records (escape sequences, a bidi override, a message far above
// --max-line, an unknown kind, an impossible nickname, raw control bytes
// in the JSON) is replayed to a user joining over a real socket exactly as
// live input would have reached them: cleaned by the same hygiene, the
// rest skipped, and every skip logged as a warning.
func TestPoisonedTranscriptReplayedClean(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	at := time.Date(2025, 6, 7, 15, 4, 0, 0, time.UTC)
	const hostile = "\x1b[2J\x1b]0;owned\x07evil \u202etxt.exe\x9b"
	var file strings.Builder
	add := func(kind, nick, text string) {
		b, err := json.Marshal(record{Time: at, Kind: kind, Nick: nick, Text: text, Node: "n"})
		if err != nil {
			t.Fatal(err)
		}
		file.Write(b)
		file.WriteString("\n")
	}
	add("msg", "alice", "hello")
	add("msg", "mallory", hostile)
	add("msg", "mallory", strings.Repeat("A", 100_000))
	add("admin", "mallory", "unknown kind")
	add("msg", "bad nick\x1b[31m", "invalid nickname")
	add("msg", "server", "reserved nickname")
	add("me", "carol", "\x07waves")
	add("msg", "mallory", "\x1b\x07\x08") // nothing left once cleaned
	file.WriteString("{\"time\":\"2025-06-07T15:04:00Z\",\"kind\":\"msg\",\"nick\":\"m\",\"text\":\"raw \x1b byte\",\"node\":\"n\"}\n")
	add("msg", "alice", "bye")
	if err := os.WriteFile(filepath.Join(dir, "transcript.jsonl"), []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	o := testServeOptions()
	o.dataDir = dir
	o.logLevel = "warn"
	o.logFormat = "json"
	s := startServeLogged(t, o)
	addr := s.addrs["chat"]

	erin := chatJoin(t, addr, "erin")
	got := erin.expectHistory()

	// What live input makes of the same bytes: bob relays them to dave.
	dave := chatJoin(t, addr, "dave")
	dave.expectHistory()
	bob := chatJoin(t, addr, "bob")
	bob.expectHistory()
	dave.expect("* bob joined (3 online)")
	bob.send(hostile)
	live := strings.TrimPrefix(dave.expectPrefix("bob: "), "bob: ")

	stamp := "[" + at.Local().Format("15:04") + "] "
	want := []string{
		stamp + "alice: hello",
		stamp + "mallory: " + live,
		stamp + "* carol waves",
		stamp + "alice: bye",
	}
	if !slices.Equal(got, want) {
		t.Errorf("replayed history:\n%q\nwant\n%q", got, want)
	}
	for _, l := range got {
		if i := strings.IndexFunc(l, func(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }); i >= 0 {
			t.Errorf("a control character reached the user: %q", l)
		}
	}

	s.stop()
	var hygiene, unknown, unparsable map[string]any
	for _, r := range logRecords(t, s.logs.String()) {
		switch r["msg"] {
		case "transcript history failed input hygiene":
			hygiene = r
		case "transcript lines with an unknown kind skipped":
			unknown = r
		case "unparsable lines in transcript skipped":
			unparsable = r
		}
	}
	for name, want := range map[string]float64{"skipped": 4, "too_long": 1, "invalid_nick": 2, "blank": 1, "text_cleaned": 2} {
		if hygiene == nil || hygiene[name] != want || hygiene["level"] != "WARN" {
			t.Errorf("hygiene warning %v: want %s=%v", hygiene, name, want)
		}
	}
	if unknown == nil || unknown["lines"] != float64(1) || unknown["kind"] != "admin" || unknown["level"] != "WARN" {
		t.Errorf("unknown kind warning: %v", unknown)
	}
	if unparsable == nil || unparsable["lines"] != float64(1) {
		t.Errorf("unparsable line warning: %v", unparsable)
	}
}
