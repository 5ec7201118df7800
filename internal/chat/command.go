package chat

import "strings"

// Op is what a line asks the room to do.
type Op uint8

// The operations of SPEC §2.2.
const (
	OpNone      Op = iota // empty line: ignored
	OpBroadcast           // Text to everybody else
	OpPrivate             // Text to Arg only
	OpNick                // rename to Arg
	OpWho                 // list users
	OpHelp                // command list
	OpQuit                // leave; Text is the optional reason
	OpMe                  // action Text
	OpWhoAmI              // own nick, address, connect time
	OpUnknown             // Arg is the unknown command word
	OpUsage               // a known command used wrongly; Text is the usage line
)

// Command is a parsed input line.
type Command struct {
	Op   Op
	Arg  string // nickname for OpPrivate/OpNick, the command for OpUnknown
	Text string
}

// Parse turns one sanitised input line into a Command. It knows both the
// tutorial's short forms (b:, c:NICK:TEXT, n:NICK, l, help, quit, byebye)
// and the slash commands. Parse never fails: anything that is not a command
// is a broadcast.
func Parse(line string) Command {
	if isBlank(line) {
		return Command{Op: OpNone}
	}
	// The bare-word commands count only as the whole line (SPEC §2.2), but
	// trailing blanks that a client appends should not turn them into chat.
	switch strings.TrimRight(line, " \t") {
	case "l":
		return Command{Op: OpWho}
	case "help":
		return Command{Op: OpHelp}
	case "quit", "byebye":
		return Command{Op: OpQuit}
	}
	switch {
	case strings.HasPrefix(line, "b:"):
		return broadcast(line[2:])
	case strings.HasPrefix(line, "c:"):
		nick, text, ok := strings.Cut(line[2:], ":")
		nick = strings.TrimSpace(nick)
		if !ok || nick == "" || isBlank(text) {
			return Command{Op: OpUsage, Text: "usage: c:NICK:TEXT"}
		}
		return Command{Op: OpPrivate, Arg: nick, Text: text}
	case strings.HasPrefix(line, "n:"):
		nick := strings.TrimSpace(line[2:])
		if nick == "" {
			return Command{Op: OpUsage, Text: "usage: n:NICK"}
		}
		return Command{Op: OpNick, Arg: nick}
	case strings.HasPrefix(line, "//"):
		return Command{Op: OpBroadcast, Text: line[1:]}
	case strings.HasPrefix(line, "/"):
		return parseSlash(line)
	}
	return Command{Op: OpBroadcast, Text: line}
}

func broadcast(text string) Command {
	if isBlank(text) {
		return Command{Op: OpNone}
	}
	return Command{Op: OpBroadcast, Text: text}
}

func parseSlash(line string) Command {
	word, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimLeft(rest, " ")
	switch strings.ToLower(word) {
	case "/msg", "/w", "/tell":
		nick, text, _ := strings.Cut(rest, " ")
		if nick == "" || isBlank(text) {
			return Command{Op: OpUsage, Text: "usage: " + word + " NICK TEXT"}
		}
		return Command{Op: OpPrivate, Arg: nick, Text: strings.TrimLeft(text, " ")}
	case "/nick":
		nick := strings.TrimSpace(rest)
		if nick == "" {
			return Command{Op: OpUsage, Text: "usage: /nick NICK"}
		}
		return Command{Op: OpNick, Arg: nick}
	case "/who", "/list", "/names":
		return Command{Op: OpWho}
	case "/help":
		return Command{Op: OpHelp}
	case "/quit":
		return Command{Op: OpQuit, Text: strings.TrimSpace(rest)}
	case "/me":
		if isBlank(rest) {
			return Command{Op: OpUsage, Text: "usage: /me TEXT"}
		}
		return Command{Op: OpMe, Text: rest}
	case "/whoami":
		return Command{Op: OpWhoAmI}
	}
	return Command{Op: OpUnknown, Arg: word}
}

func isBlank(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return false
		}
	}
	return true
}

// helpLines is the /help text; each entry is sent as its own "* " line.
var helpLines = []string{
	"* Commands (short form or slash form):",
	"*   TEXT or b:TEXT                  send TEXT to everybody",
	"*   c:NICK:TEXT or /msg NICK TEXT   private message (also /w, /tell)",
	"*   n:NICK or /nick NICK            change your nickname",
	"*   l or /who                       who is online (also /list, /names)",
	"*   /me TEXT                        action: * you TEXT",
	"*   /whoami                         your nickname, address and connect time",
	"*   //TEXT                          send a line that starts with /",
	"*   help or /help                   this list",
	"*   quit, byebye or /quit [REASON]  leave",
}

// HelpLines returns the lines /help sends.
func HelpLines() []string { return append([]string(nil), helpLines...) }
