package chat

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks properties of the command parser on arbitrary lines.
// Seeds are in testdata/fuzz/FuzzParse and f.Add below.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", " \t", "hello", "b:hi", "b: ", "c:bob:hi", "c: bob :x:y", "c::x", "n:bob", "n: ",
		"l", "l \t", "l x", "help", "quit", "byebye", "quit now", " quit",
		"/msg bob hi", "/W  bob   hi", "/tell bob", "/nick  bob ", "/nick a b", "/who", "/LIST",
		"/names x", "/help", "/quit  gone ", "/me waves", "/me  ", "/whoami", "//x", "//", "/", "/ x",
		"/foo bar", "/msg\tbob hi", "/ME\tx", "/msg bob \t", "é/msg", "b:c:x:y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd := Parse(line)
		if again := Parse(line); again != cmd {
			t.Fatalf("Parse(%q) not deterministic: %+v then %+v", line, cmd, again)
		}
		if cmd.Op > OpUsage {
			t.Fatalf("Parse(%q): bad op %d", line, cmd.Op)
		}
		slash := strings.HasPrefix(line, "/") && !strings.HasPrefix(line, "//")
		bare := strings.TrimRight(line, " \t")
		isBare := bare == "l" || bare == "help" || bare == "quit" || bare == "byebye"

		if isBlank(line) && cmd.Op != OpNone {
			t.Fatalf("blank %q parsed as %+v", line, cmd)
		}
		// Outside the command forms, every non-blank line is a broadcast
		// of the whole line, unchanged.
		if !isBlank(line) && !isBare && !strings.HasPrefix(line, "/") && !strings.HasPrefix(line, "b:") &&
			!strings.HasPrefix(line, "c:") && !strings.HasPrefix(line, "n:") {
			if cmd != (Command{Op: OpBroadcast, Text: line}) {
				t.Fatalf("Parse(%q) = %+v, want a broadcast of the whole line", line, cmd)
			}
		}
		if isBare && cmd.Op != OpWho && cmd.Op != OpHelp && cmd.Op != OpQuit {
			t.Fatalf("bare word %q parsed as %+v", line, cmd)
		}

		switch cmd.Op {
		case OpNone:
			if !isBlank(line) && !(strings.HasPrefix(line, "b:") && isBlank(line[2:])) {
				t.Fatalf("non-blank %q ignored", line)
			}
		case OpBroadcast:
			if isBlank(cmd.Text) {
				t.Fatalf("Parse(%q): blank broadcast", line)
			}
			if cmd.Text != line && cmd.Text != line[min(2, len(line)):] && cmd.Text != line[min(1, len(line)):] {
				t.Fatalf("Parse(%q): broadcast text %q is not the line or its suffix after b: or /", line, cmd.Text)
			}
			if strings.HasPrefix(line, "//") && cmd.Text != line[1:] {
				t.Fatalf("Parse(%q) = %+v, want /TEXT", line, cmd)
			}
		case OpPrivate:
			if cmd.Arg == "" || isBlank(cmd.Text) {
				t.Fatalf("Parse(%q): private with empty nick or text: %+v", line, cmd)
			}
			if !strings.Contains(line, cmd.Arg) || !strings.HasSuffix(line, cmd.Text) {
				t.Fatalf("Parse(%q): %+v: nick or text not taken from the line", line, cmd)
			}
			if slash && strings.ContainsRune(cmd.Arg, ' ') {
				t.Fatalf("Parse(%q): nick %q contains a space", line, cmd.Arg)
			}
			if !slash && (strings.ContainsRune(cmd.Arg, ':') || strings.TrimSpace(cmd.Arg) != cmd.Arg) {
				t.Fatalf("Parse(%q): c: nick %q not trimmed or contains ':'", line, cmd.Arg)
			}
		case OpNick:
			// The nickname is trimmed but not split: "/nick a b" is
			// refused as an invalid nickname rather than renaming to "a".
			if cmd.Arg == "" || strings.TrimSpace(cmd.Arg) != cmd.Arg || !strings.Contains(line, cmd.Arg) {
				t.Fatalf("Parse(%q): bad nick argument %q", line, cmd.Arg)
			}
		case OpMe:
			if isBlank(cmd.Text) || !strings.HasSuffix(line, cmd.Text) {
				t.Fatalf("Parse(%q): bad /me text %q", line, cmd.Text)
			}
		case OpQuit:
			if strings.TrimSpace(cmd.Text) != cmd.Text || !strings.Contains(line, cmd.Text) {
				t.Fatalf("Parse(%q): bad quit reason %q", line, cmd.Text)
			}
		case OpUnknown:
			word, _, _ := strings.Cut(line, " ")
			if !slash || cmd.Arg != word {
				t.Fatalf("Parse(%q): unknown command %q, want the first word", line, cmd.Arg)
			}
		case OpUsage:
			if !strings.HasPrefix(cmd.Text, "usage: ") {
				t.Fatalf("Parse(%q): usage text %q", line, cmd.Text)
			}
		}
		if (cmd.Op == OpNick || cmd.Op == OpUsage) && !slash && !strings.HasPrefix(line, "n:") && !strings.HasPrefix(line, "c:") {
			t.Fatalf("Parse(%q) = %+v from a line that is no command", line, cmd)
		}

		// Slash command words are case-insensitive.
		if slash {
			word, rest, hasRest := strings.Cut(line, " ")
			if isASCII(word) {
				up := strings.ToUpper(word)
				if hasRest {
					up += " " + rest
				}
				u := Parse(up)
				if u.Op != cmd.Op || u.Text != cmd.Text && cmd.Op != OpUsage || cmd.Op != OpUnknown && u.Arg != cmd.Arg {
					t.Fatalf("Parse(%q) = %+v but Parse(%q) = %+v", line, cmd, up, u)
				}
			}
		}
		if utf8.ValidString(line) && (!utf8.ValidString(cmd.Arg) || !utf8.ValidString(cmd.Text)) {
			t.Fatalf("Parse(%q) = %+v: invalid UTF-8 out of valid input", line, cmd)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
