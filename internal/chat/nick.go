package chat

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// MaxNickLen is the longest nickname, in characters (runes), SPEC §2.1.
const MaxNickLen = 20

// NickError explains why a nickname was refused. Its Error text is what the
// user sees after "! ".
type NickError struct {
	Nick   string
	Reason string
	Taken  bool
}

func (e *NickError) Error() string {
	if e.Taken {
		return "nickname taken: " + e.Nick
	}
	return "invalid nickname: " + e.Reason
}

// FoldNick checks nick against the nickname rules and returns the form used
// to decide uniqueness. Folding is PRECIS UsernameCaseMapped, so Alice, alice
// and ＡＬＩＣＥ (full width) are one nickname.
func FoldNick(nick string) (string, error) {
	n := utf8.RuneCountInString(nick)
	switch {
	case n == 0:
		return "", &NickError{Nick: nick, Reason: "empty"}
	case n > MaxNickLen:
		return "", &NickError{Nick: nick, Reason: fmt.Sprintf("too long (max %d characters)", MaxNickLen)}
	}
	for i, r := range nick {
		ok := unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' ||
			// Combining marks belong to the letter before them (many scripts
			// cannot spell a name without them).
			(i > 0 && unicode.IsMark(r))
		if !ok || r == utf8.RuneError {
			return "", &NickError{Nick: nick, Reason: "use only letters, digits, _ and - (1-20 characters)"}
		}
	}
	folded, err := precis.UsernameCaseMapped.String(nick)
	if err != nil {
		return "", &NickError{Nick: nick, Reason: "not a valid username (" + err.Error() + ")"}
	}
	if folded == "server" {
		return "", &NickError{Nick: nick, Reason: `"server" is reserved`}
	}
	return folded, nil
}
