package chat

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/mtibben/confusables"
	"golang.org/x/text/cases"
)

func TestFoldNick(t *testing.T) {
	t.Parallel()
	tests := []struct {
		nick    string
		invalid string // substring of the error; "" = valid
	}{
		{"alice", ""},
		{"Alice", ""},
		{"ＡＬＩＣＥ", ""},
		{"bob_2-x", ""},
		{"Zoë", ""},
		{"Дмитрий", ""},
		{"名前", ""},
		{strings.Repeat("a", 20), ""},
		{strings.Repeat("é", 20), ""},
		{strings.Repeat("a", 21), "too long"},
		{"", "empty"},
		{"a b", "letters, digits"},
		{"a:b", "letters, digits"},
		{"a.b", "letters, digits"},
		{"a\x1bb", "letters, digits"},
		{"a\u202eb", "letters, digits"},
		{"server", "reserved"},
		{"Server", "reserved"},
		{"ＳＥＲＶＥＲ", "reserved"},
		{"ѕerver", "reserved"}, // Cyrillic ѕ
		{"ѕеrvеr", "reserved"}, // Cyrillic ѕ and е
		{"SERVЕR", "reserved"}, // Cyrillic Е, upper case
		{"5erver", ""},         // not a look-alike
		{"servers", ""},
	}
	for _, tt := range tests {
		fold, err := FoldNick(tt.nick)
		if tt.invalid == "" {
			if err != nil || fold == "" {
				t.Errorf("FoldNick(%q) = %q, %v; want a key, nil", tt.nick, fold, err)
			}
			continue
		}
		var ne *NickError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), tt.invalid) ||
			!strings.HasPrefix(err.Error(), "invalid nickname: ") {
			t.Errorf("FoldNick(%q) error = %v; want an invalid-nickname error mentioning %q", tt.nick, err, tt.invalid)
		}
	}
}

// lookAlikes are nickname pairs that must be one nickname (case variants,
// width variants, and TR39 confusables across scripts) or two.
var lookAlikes = []struct {
	a, b    string
	collide bool
}{
	{"alice", "Alice", true},
	{"alice", "ＡＬＩＣＥ", true},
	{"alice", "аlice", true},   // Cyrillic а
	{"alice", "ALİCE", false},  // dotted capital I folds to i + combining dot: a different letter
	{"admin", "аdmin", true},   // Cyrillic а
	{"admin", "АDMIN", true},   // Cyrillic А, upper case
	{"paypal", "раураl", true}, // Cyrillic р, а, у
	{"paypal", "PAYPAL", true},
	{"bob", "b0b", true},        // digit zero
	{"bill", "bi11", true},      // digit one
	{"modern", "rnodern", true}, // r n reads as m
	{"apple", "аррlе", true},    // Cyrillic а, р, р, е
	{"Zoë", "zoë", true},        // precomposed and combining diaeresis
	{"alice", "alicia", false},
	{"alice", "alice_", false},
	{"bob", "bab", false},
	{"名前", "名刺", false},
	{"Дмитрий", "дмитрий", true},
	{"Дмитрий", "Dmitri", false},
}

func TestNickLookAlikesFold(t *testing.T) {
	t.Parallel()
	for _, tt := range lookAlikes {
		ka, erra := FoldNick(tt.a)
		kb, errb := FoldNick(tt.b)
		if erra != nil || errb != nil {
			t.Errorf("FoldNick(%q), FoldNick(%q): %v, %v", tt.a, tt.b, erra, errb)
			continue
		}
		if (ka == kb) != tt.collide {
			t.Errorf("%q → %q and %q → %q: collide = %v, want %v", tt.a, ka, tt.b, kb, ka == kb, tt.collide)
		}
	}
}

// TestNickLookAlikesJoin is the same table through the room: the second
// of a colliding pair is refused as taken, whoever joined first, and can
// neither rename into the other; a pair that does not collide is online
// together.
func TestNickLookAlikesJoin(t *testing.T) {
	t.Parallel()
	for _, tt := range lookAlikes {
		for _, order := range [][2]string{{tt.a, tt.b}, {tt.b, tt.a}} {
			r := NewRoom(Config{})
			first := mustJoin(t, r, &recorder{}, order[0])
			_, err := r.Join(&recorder{}, order[1], Info{})
			var ne *NickError
			taken := errors.As(err, &ne) && ne.Taken
			if taken != tt.collide || (!tt.collide && err != nil) {
				t.Errorf("%q online, %q joins: err %v, want taken = %v", order[0], order[1], err, tt.collide)
			}
			if want := "! nickname taken: " + order[1]; tt.collide && (err == nil || "! "+err.Error() != want) {
				t.Errorf("%q online, %q joins: %v, want %q", order[0], order[1], err, want)
			}
			if !tt.collide {
				continue
			}
			// A third user cannot rename into the look-alike either.
			rec := &recorder{}
			third := mustJoin(t, r, rec, "third")
			rec.take()
			third.Handle("/nick " + order[1])
			if got := rec.take(); len(got) != 1 || got[0] != "! nickname taken: "+order[1] {
				t.Errorf("rename to %q with %q online: got %q", order[1], order[0], got)
			}
			first.Leave("")
			third.Leave("")
		}
	}
}

// TestNickLookAlikePrivate: a private message to a look-alike reaches the
// one user who holds that nickname, as for a case variant.
func TestNickLookAlikePrivate(t *testing.T) {
	t.Parallel()
	r := NewRoom(Config{})
	aliceRec := &recorder{}
	mustJoin(t, r, aliceRec, "alice")
	bobRec := &recorder{}
	bob := mustJoin(t, r, bobRec, "bob")
	aliceRec.take()
	bobRec.take()
	bob.Handle("/msg аlice hi") // Cyrillic а
	if got := aliceRec.take(); len(got) != 1 || got[0] != "[private] bob: hi" {
		t.Errorf("alice got %q", got)
	}
	if got := bobRec.take(); len(got) != 1 || got[0] != "[private to alice] hi" {
		t.Errorf("bob got %q", got)
	}
}

// TestSkeletonASCIIFastPath: the shortcut for plain ASCII keys agrees with
// the general TR39 path for every character it covers, alone and in a
// word.
func TestSkeletonASCIIFastPath(t *testing.T) {
	t.Parallel()
	general := func(s string) string { return cases.Fold().String(confusables.Skeleton(s)) }
	chars := "abcdefghijklmnopqrstuvwxyz0123456789_-"
	for _, c := range chars {
		if s := string(c); skeleton(s) != general(s) {
			t.Errorf("skeleton(%q) = %q, general path %q", s, skeleton(s), general(s))
		}
	}
	for _, s := range []string{chars, "m0m1", "admin", "b0b_-1"} {
		if !isPlainASCII(s) || skeleton(s) != general(s) {
			t.Errorf("skeleton(%q) = %q, general path %q", s, skeleton(s), general(s))
		}
	}
}

// BenchmarkFoldNick is the cost of the uniqueness key: plain ASCII takes
// the shortcut (with and without a character the table maps), other
// scripts the full TR39 skeleton once ("uncached") and the cache after.
func BenchmarkFoldNick(b *testing.B) {
	for _, nick := range []string{"bob", "newcomer", "Дмитрий", "名前"} {
		b.Run(nick, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := FoldNick(nick); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, nick := range []string{"Дмитрий", "名前"} {
		b.Run(nick+"/uncached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := foldNick(nick); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFoldNickCache: the cached key of a non-ASCII nickname is the one
// computed, and the cache stays bounded under many names.
func TestFoldNickCache(t *testing.T) {
	t.Parallel()
	for _, nick := range []string{"аlice", "Дмитрий", "名前", "Zoë"} {
		want, err := foldNick(nick)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // a miss, then a hit
			if got, err := FoldNick(nick); got != want || err != nil {
				t.Errorf("FoldNick(%q) = %q, %v; want %q", nick, got, err, want)
			}
		}
	}
	for i := range 2 * foldCacheMax {
		if _, err := FoldNick("é" + strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	foldCache.mu.RLock()
	n := len(foldCache.m)
	foldCache.mu.RUnlock()
	if n > foldCacheMax {
		t.Errorf("%d cached keys, limit %d", n, foldCacheMax)
	}
	// Refused nicknames are never cached as valid.
	for range 2 {
		if _, err := FoldNick("ѕerver"); err == nil {
			t.Error("ѕerver accepted")
		}
	}
}
