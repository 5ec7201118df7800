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
	var c hygieneCheck
	var out []Event
	for _, ev := range evs {
		if c.pass(&h, &ev) {
			out = append(out, ev)
		}
	}
	c.report(&h)
	return out
}

// hygieneCheck applies a Hygiene to events one at a time and counts what
// it skipped or cleaned.
type hygieneCheck struct {
	tooLong, badNick, blank, kind, cleaned int
	buf                                    []byte
}

// pass reports whether ev passes, cleaning its text in place.
func (c *hygieneCheck) pass(h *Hygiene, ev *Event) bool {
	if ev.Kind != KindMsg && ev.Kind != KindMe {
		c.kind++
		return false
	}
	if h.MaxLine > 0 && len(ev.Text) > h.MaxLine {
		c.tooLong++
		return false
	}
	if h.ValidNick != nil && h.ValidNick(ev.Nick) != nil {
		c.badNick++
		return false
	}
	c.buf = line.Sanitize(c.buf[:0], []byte(ev.Text))
	if line.IsBlank(c.buf) {
		c.blank++
		return false
	}
	if string(c.buf) != ev.Text {
		c.cleaned++
		ev.Text = string(c.buf)
	}
	return true
}

// report logs one warning with the counts, if anything was skipped or
// cleaned.
func (c *hygieneCheck) report(h *Hygiene) {
	if skipped := c.tooLong + c.badNick + c.blank + c.kind; skipped > 0 || c.cleaned > 0 {
		log := h.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("transcript history failed input hygiene", "skipped", skipped,
			"too_long", c.tooLong, "max_line", h.MaxLine, "invalid_nick", c.badNick, "blank", c.blank,
			"other_kind", c.kind, "text_cleaned", c.cleaned)
	}
}
