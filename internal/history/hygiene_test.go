package history

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHygieneClean(t *testing.T) {
	t.Parallel()
	noSpace := func(nick string) error {
		if nick == "" || strings.ContainsAny(nick, " \x1b") {
			return errors.New("invalid")
		}
		return nil
	}
	ev := func(kind, nick, text string) Event { return Event{Kind: kind, Nick: nick, Text: text} }
	tests := []struct {
		name string
		in   Event
		want string // text kept; "" = skipped
		log  string // counter that must be 1 in the warning; "" = no warning
	}{
		{"plain", ev(KindMsg, "alice", "hello"), "hello", ""},
		{"me", ev(KindMe, "alice", "waves"), "waves", ""},
		{"escape sequence", ev(KindMsg, "alice", "a\x1b[2Jb"), "a[2Jb", "text_cleaned=1"},
		{"C1 and invalid UTF-8", ev(KindMsg, "alice", "a\u009b\xffb"), "a\ufffdb", "text_cleaned=1"},
		{"backspace erases", ev(KindMsg, "alice", "ab\bc"), "ac", "text_cleaned=1"},
		{"at the limit", ev(KindMsg, "alice", strings.Repeat("x", 16)), strings.Repeat("x", 16), ""},
		{"over the limit", ev(KindMsg, "alice", strings.Repeat("x", 17)), "", "too_long=1"},
		{"invalid nickname", ev(KindMsg, "a b", "hi"), "", "invalid_nick=1"},
		{"blank once cleaned", ev(KindMsg, "alice", "\x1b\x07 "), "", "blank=1"},
		{"join is not history", ev(KindJoin, "alice", ""), "", "other_kind=1"},
		{"unknown kind", ev("admin", "alice", "x"), "", "other_kind=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, logs := newLogger()
			got := Hygiene{MaxLine: 16, ValidNick: noSpace, Logger: log}.Clean([]Event{tt.in})
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("kept %+v, want it skipped", got)
			case tt.want != "" && (len(got) != 1 || got[0].Text != tt.want || got[0].Nick != tt.in.Nick):
				t.Errorf("got %+v, want text %q", got, tt.want)
			}
			switch {
			case tt.log == "" && logs.String() != "":
				t.Errorf("unexpected log: %s", logs)
			case tt.log != "" && (!strings.Contains(logs.String(), tt.log) || !strings.Contains(logs.String(), "level=WARN")):
				t.Errorf("log %q lacks a warning with %s", logs, tt.log)
			}
		})
	}
}

// TestHygieneKeepsOrder: what passes keeps its order; one warning sums up
// many skips.
func TestHygieneKeepsOrder(t *testing.T) {
	t.Parallel()
	var in []Event
	for i := range 10 {
		text := "m" + string(rune('0'+i))
		if i%3 == 0 {
			text = strings.Repeat("x", 100)
		}
		in = append(in, Event{Kind: KindMsg, Nick: "n", Text: text})
	}
	log, logs := newLogger()
	var texts []string
	for _, ev := range (Hygiene{MaxLine: 50, Logger: log}).Clean(in) {
		texts = append(texts, ev.Text)
	}
	if want := []string{"m1", "m2", "m4", "m5", "m7", "m8"}; !slices.Equal(texts, want) {
		t.Errorf("kept %q, want %q", texts, want)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), "too_long=4") {
		t.Errorf("log %q: want one warning with too_long=4", logs)
	}
}

// TestReadBackUnknownKind: a line with a kind netchat does not write is
// skipped with a warning naming it, never replayed; the known kinds that
// are not history (join, leave, nick) are skipped without one.
func TestReadBackUnknownKind(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var content strings.Builder
	for i, kind := range []string{KindMsg, "admin", KindJoin, KindLeave, KindNick, "broadcast\x1b", KindMe} {
		b, err := json.Marshal(Event{Time: time.Unix(int64(i), 0).UTC(), Kind: kind, Nick: "bob", Text: "t-" + kind, Node: "n"})
		if err != nil {
			t.Fatal(err)
		}
		content.Write(b)
		content.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(dir, CurrentName), []byte(content.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	log, logs := newLogger()
	tr := mustOpen(t, Options{Dir: dir, Logger: log})
	var texts []string
	for _, ev := range tr.Recent(100) {
		texts = append(texts, ev.Text)
	}
	if want := []string{"t-msg", "t-me"}; !slices.Equal(texts, want) {
		t.Errorf("Recent texts %q, want %q", texts, want)
	}
	l := logs.String()
	if strings.Count(l, "unknown kind") != 1 || !strings.Contains(l, "lines=2") || !strings.Contains(l, "level=WARN") {
		t.Errorf("log %q: want one warning for 2 lines of unknown kind", l)
	}
}

// TestHygieneOnLoad: with Options.Hygiene, the events Open loads pass it,
// and the ones it refuses do not count toward Recent: a file whose newest
// lines are poisoned still gives as much history as asked for.
func TestHygieneOnLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var content strings.Builder
	add := func(i int, nick, text string) {
		b, err := json.Marshal(Event{Time: time.Unix(int64(i), 0).UTC(), Kind: KindMsg, Nick: nick, Text: text})
		if err != nil {
			t.Fatal(err)
		}
		content.Write(b)
		content.WriteString("\n")
	}
	for i := range 5 {
		add(i, "alice", "good-"+strconv.Itoa(i))
	}
	add(5, "a b", "bad nickname")
	add(6, "alice", strings.Repeat("x", 100))
	add(7, "alice", "a\x1b[2Jb")
	if err := os.WriteFile(filepath.Join(dir, CurrentName), []byte(content.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	log, logs := newLogger()
	h := &Hygiene{MaxLine: 16, ValidNick: func(nick string) error {
		if strings.Contains(nick, " ") {
			return errors.New("invalid")
		}
		return nil
	}, Logger: log}
	tr := mustOpen(t, Options{Dir: dir, Recent: 4, Hygiene: h, Logger: log})
	var texts []string
	for _, ev := range tr.Recent(4) {
		texts = append(texts, ev.Text)
	}
	if want := []string{"good-2", "good-3", "good-4", "a[2Jb"}; !slices.Equal(texts, want) {
		t.Errorf("Recent texts %q, want %q", texts, want)
	}
	if l := logs.String(); strings.Count(l, "failed input hygiene") != 1 || !strings.Contains(l, "too_long=1") ||
		!strings.Contains(l, "invalid_nick=1") || !strings.Contains(l, "text_cleaned=1") {
		t.Errorf("log %q: want one warning with the counts", l)
	}
}
