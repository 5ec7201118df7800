package chat

import (
	"sync"
)

// history is the in-memory ring of the last N public messages, replayed to
// users as they join. It is separate from the durable transcript: the ring
// is what the room serves, the transcript only seeds it after a restart.
type history struct {
	mu   sync.Mutex
	ring []Event
	next int
	full bool
}

func (h *history) init(n int) {
	if n > 0 {
		h.ring = make([]Event, n)
	}
}

func (h *history) add(ev Event) {
	h.mu.Lock()
	h.addLocked(ev)
	h.mu.Unlock()
}

// addLocked adds ev to the ring; h.mu is held.
func (h *history) addLocked(ev Event) {
	if len(h.ring) == 0 {
		return
	}
	h.ring[h.next] = ev
	h.next++
	if h.next == len(h.ring) {
		h.next, h.full = 0, true
	}
}

// reset replaces the ring's contents with the last messages of evs
// (oldest first).
func (h *history) reset(evs []Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.ring)
	h.next, h.full = 0, false
	if len(h.ring) == 0 {
		return
	}
	if len(evs) > len(h.ring) {
		evs = evs[len(evs)-len(h.ring):]
	}
	for _, ev := range evs {
		h.addLocked(ev)
	}
}

// replay sends the recent messages, oldest first, framed by the markers of
// SPEC §2.5. Nothing is sent when there is no history.
func (h *history) replay(s Session) {
	if len(h.ring) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	start, n := 0, h.next
	if h.full {
		start, n = h.next, len(h.ring)
	}
	if n == 0 {
		return
	}
	s.Deliver([]byte("* --- recent messages ---"))
	for i := 0; i < n; i++ {
		ev := h.ring[(start+i)%len(h.ring)]
		stamp := "[" + ev.Time.Local().Format("15:04") + "] "
		if ev.Kind == KindMe {
			s.Deliver([]byte(stamp + "* " + ev.Nick + " " + ev.Text))
		} else {
			s.Deliver([]byte(stamp + ev.Nick + ": " + ev.Text))
		}
	}
	s.Deliver([]byte("* --- end of recent messages ---"))
}
