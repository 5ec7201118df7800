package history

import (
	"log/slog"

	"netchat/internal/line"
)

// Hygiene holds replayed events to the rules live input follows. The
// transcript is a file on disk: whatever is in it (an edit by hand, a
// restored backup, a newer version's output, an attacker with write access
// to the data directory) reaches every user who joins, so it is not trusted
// more than a socket is.
type Hygiene struct {
	// MaxLine skips events whose text is longer than this many bytes, as
	// the server discards longer input lines (--max-line); 0 = no limit.
	MaxLine int
	// ValidNick, if set, skips events whose nickname it refuses (the
	// room's rules: chat.FoldNick).
	ValidNick func(nick string) error
	// Logger gets one warning with the counts of what was skipped or
	// cleaned; nil means slog.Default().
	Logger *slog.Logger
}

// Clean returns the "msg" and "me" events of evs that pass, in order, with
// their text cleaned by line.Sanitize exactly like a live line (invalid
// UTF-8 replaced, control characters and thus escape sequences removed).
// Events of other kinds, with a text that is too long or blank once
// cleaned, or with an invalid nickname are skipped.
func (h Hygiene) Clean(evs []Event) []Event {
	var (
		out                                    []Event
		tooLong, badNick, blank, kind, cleaned int
		buf                                    []byte
	)
	for _, ev := range evs {
		if ev.Kind != KindMsg && ev.Kind != KindMe {
			kind++
			continue
		}
		if h.MaxLine > 0 && len(ev.Text) > h.MaxLine {
			tooLong++
			continue
		}
		if h.ValidNick != nil && h.ValidNick(ev.Nick) != nil {
			badNick++
			continue
		}
		buf = line.Sanitize(buf[:0], []byte(ev.Text))
		if line.IsBlank(buf) {
			blank++
			continue
		}
		if string(buf) != ev.Text {
			cleaned++
			ev.Text = string(buf)
		}
		out = append(out, ev)
	}
	if skipped := tooLong + badNick + blank + kind; skipped > 0 || cleaned > 0 {
		log := h.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("transcript history failed input hygiene", "skipped", skipped,
			"too_long", tooLong, "max_line", h.MaxLine, "invalid_nick", badNick, "blank", blank,
			"other_kind", kind, "text_cleaned", cleaned)
	}
	return out
}
