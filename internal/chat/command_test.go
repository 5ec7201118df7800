package chat

import (
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		line string
		want Command
	}{
		{"", Command{Op: OpNone}},
		{"   ", Command{Op: OpNone}},
		{"hello", Command{Op: OpBroadcast, Text: "hello"}},
		{"b:hello", Command{Op: OpBroadcast, Text: "hello"}},
		{"b:", Command{Op: OpNone}},
		{"c:bob:hi there", Command{Op: OpPrivate, Arg: "bob", Text: "hi there"}},
		{"c:bob:a:b", Command{Op: OpPrivate, Arg: "bob", Text: "a:b"}},
		{"c:bob", Command{Op: OpUsage, Text: "usage: c:NICK:TEXT"}},
		{"c::hi", Command{Op: OpUsage, Text: "usage: c:NICK:TEXT"}},
		{"n:bob", Command{Op: OpNick, Arg: "bob"}},
		{"n:", Command{Op: OpUsage, Text: "usage: n:NICK"}},
		{"l", Command{Op: OpWho}},
		{"l ", Command{Op: OpWho}},
		{"l x", Command{Op: OpBroadcast, Text: "l x"}},
		{"help", Command{Op: OpHelp}},
		{"help me", Command{Op: OpBroadcast, Text: "help me"}},
		{"quit", Command{Op: OpQuit}},
		{"byebye", Command{Op: OpQuit}},
		{"quit now", Command{Op: OpBroadcast, Text: "quit now"}},
		{"/msg bob hi there", Command{Op: OpPrivate, Arg: "bob", Text: "hi there"}},
		{"/w bob hi", Command{Op: OpPrivate, Arg: "bob", Text: "hi"}},
		{"/tell bob hi", Command{Op: OpPrivate, Arg: "bob", Text: "hi"}},
		{"/MSG bob hi", Command{Op: OpPrivate, Arg: "bob", Text: "hi"}},
		{"/msg bob", Command{Op: OpUsage, Text: "usage: /msg NICK TEXT"}},
		{"/msg", Command{Op: OpUsage, Text: "usage: /msg NICK TEXT"}},
		{"/nick bob", Command{Op: OpNick, Arg: "bob"}},
		{"/nick", Command{Op: OpUsage, Text: "usage: /nick NICK"}},
		{"/who", Command{Op: OpWho}},
		{"/list", Command{Op: OpWho}},
		{"/names", Command{Op: OpWho}},
		{"/help", Command{Op: OpHelp}},
		{"/quit", Command{Op: OpQuit}},
		{"/quit gone fishing", Command{Op: OpQuit, Text: "gone fishing"}},
		{"/me waves", Command{Op: OpMe, Text: "waves"}},
		{"/me", Command{Op: OpUsage, Text: "usage: /me TEXT"}},
		{"/whoami", Command{Op: OpWhoAmI}},
		{"//slash", Command{Op: OpBroadcast, Text: "/slash"}},
		{"/anything-else", Command{Op: OpUnknown, Arg: "/anything-else"}},
		{"/foo bar", Command{Op: OpUnknown, Arg: "/foo"}},
		{"/", Command{Op: OpUnknown, Arg: "/"}},
	}
	for _, tt := range tests {
		if got := Parse(tt.line); got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}
