package chat

import (
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/text/cases"
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
// to decide uniqueness (in the room and across a cluster). Folding is PRECIS
// UsernameCaseMapped, so Alice, alice and ＡＬＩＣＥ (full width) are one
// nickname, followed by the Unicode TR39 confusables skeleton, so that
// look-alikes from other scripts are one nickname too: alice and аlice
// (Cyrillic а), paypal and раураl. Otherwise anyone could impersonate anyone
// in /who and in every message.
func FoldNick(nick string) (string, error) {
	ascii := allASCII(nick)
	if !ascii {
		if key, ok := foldCache.get(nick); ok {
			return key, nil
		}
	}
	key, err := foldNick(nick)
	if err == nil && !ascii {
		foldCache.put(nick, key)
	}
	return key, err
}

func foldNick(nick string) (string, error) {
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
	key := skeleton(folded)
	if key == reservedKey {
		return "", &NickError{Nick: nick, Reason: `"server" is reserved`}
	}
	return key, nil
}

// reservedKey is the uniqueness key of "server", so that its look-alikes
// (ѕerver with a Cyrillic ѕ) are reserved too.
var reservedKey = skeleton("server")

// skeleton maps a case-folded nickname to its TR39 skeleton. The
// confusables table maps to prototypes that may be upper case (0 → O), so
// the skeleton is case-folded once more, as ergo does, for b0b and bob to
// collide as bOb and bob would.
func skeleton(folded string) string {
	if isPlainASCII(folded) {
		// The common case, kept cheap: private messages fold their target
		// on every line. Among lower-case ASCII letters, digits, _ and - the
		// table maps only 0, 1 and m (to O, l and rn).
		return asciiSkeleton(folded)
	}
	return cases.Fold().String(confusables.Skeleton(folded))
}

// isPlainASCII reports whether s holds only a-z, 0-9, _ and -, the only
// ASCII that FoldNick lets through once PRECIS has lower-cased it.
func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// asciiSkeleton is skeleton for isPlainASCII strings, equal to the general
// path (TestSkeletonASCIIFastPath checks every character).
func asciiSkeleton(s string) string {
	if !strings.ContainsAny(s, "01m") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '0':
			b.WriteByte('o')
		case '1':
			b.WriteByte('l')
		case 'm':
			b.WriteString("rn")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func allASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldCache remembers the keys of non-ASCII nicknames, whose TR39 skeleton
// costs microseconds and a kilobyte of garbage, while a private message
// folds its target's nickname on every line. It is bounded: when full it
// starts over, so random names (an attacker's /msg) cost only misses.
var foldCache = nickCache{m: make(map[string]string)}

const foldCacheMax = 4096

type nickCache struct {
	mu sync.RWMutex
	m  map[string]string
}

func (c *nickCache) get(nick string) (string, bool) {
	c.mu.RLock()
	key, ok := c.m[nick]
	c.mu.RUnlock()
	return key, ok
}

func (c *nickCache) put(nick, key string) {
	c.mu.Lock()
	if len(c.m) >= foldCacheMax {
		clear(c.m)
	}
	// A clone: nick may be a slice of a whole input line, which the
	// cache must not keep alive.
	c.m[strings.Clone(nick)] = key
	c.mu.Unlock()
}
