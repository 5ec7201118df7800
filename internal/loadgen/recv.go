package loadgen

import (
	"bytes"
	"sync/atomic"
)

// stats are the receive-side figures of one reader: a poller (for all its
// clients), a fallback reader goroutine, or a connect worker (for what
// arrived with the welcome). Only that goroutine writes the plain fields,
// and they are read after it has exited; the atomics are read live by the
// progress lines and the drain.
type stats struct {
	delivered atomic.Int64 // BENCH lines of this run from other clients
	// fresh counts receipts of measured lines with a sequence number the
	// receiver had not seen yet: the drain waits for these, so a server
	// that duplicates lines cannot end it early.
	fresh atomic.Int64

	measured        int64 // receipts of lines sent inside the window
	inWindow        int64 // receipts that arrived inside the window
	echoes          int64
	probeEchoes     int64
	orderViolations int64
	serverErrors    int64
	stale           int64
	foreign         int64
	limits          limitSet
	lat             Histogram
	readDelay       Histogram // per measured delivery, where the kernel tells
	_               [64]byte  // readers on different CPUs do not share a line
}

func (s *stats) merge(o *stats) {
	s.delivered.Add(o.delivered.Load())
	s.fresh.Add(o.fresh.Load())
	s.measured += o.measured
	s.inWindow += o.inWindow
	s.echoes += o.echoes
	s.probeEchoes += o.probeEchoes
	s.orderViolations += o.orderViolations
	s.serverErrors += o.serverErrors
	s.stale += o.stale
	s.foreign += o.foreign
	s.limits |= o.limits
	s.lat.Merge(&o.lat)
	s.readDelay.Merge(&o.readDelay)
}

// chunk is what all lines of one read share: they arrived together, so
// one clock reading serves them all, and the window is read once.
type chunk struct {
	now, mStart, mEnd int64
	delivered, fresh  int64 // added to the stats' atomics once per chunk
	// readDelay: how long the newest data of this read waited in the
	// socket before the bench read it (when timed).
	readDelay int64
	timed     bool
}

func (r *run) newChunk() chunk {
	return chunk{now: r.now(), mStart: r.measureStart.Load(), mEnd: r.measureEnd.Load()}
}

func (st *stats) flush(ck *chunk) {
	if ck.delivered > 0 {
		st.delivered.Add(ck.delivered)
		ck.delivered = 0
	}
	if ck.fresh > 0 {
		st.fresh.Add(ck.fresh)
		ck.fresh = 0
	}
}

// consumeLines handles data, which starts with c's carried partial line,
// as received lines, and carries a trailing partial line over to the
// next read. A line longer than maxLine is handled by its first maxLine
// bytes and the rest skipped, as bufio.Reader.ReadSlice would.
func (r *run) consumeLines(c *client, st *stats, data []byte, ck *chunk) {
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if !c.skipping {
			r.handleLine(c, st, data[:i+1], ck)
		}
		c.skipping = false
		data = data[i+1:]
	}
	if len(data) > r.maxLine {
		if !c.skipping {
			r.handleLine(c, st, data[:r.maxLine], ck)
			c.skipping = true
		}
		data = nil
	}
	c.carry = append(c.carry[:0], data...)
}

// wsSink adapts a client's frame events to the line accounting.
type wsSink struct {
	r  *run
	c  *client
	st *stats
	ck *chunk
}

// message splits a data message into lines: one per "\n"-separated part,
// as chatload does (a server may pack several lines into one message).
func (s wsSink) message(p []byte) {
	if s.r.closing.Load() {
		return // lines arriving during the close handshake are not counted
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.r.handleLine(s.c, s.st, p, s.ck)
			return
		}
		s.r.handleLine(s.c, s.st, p[:i], s.ck)
		p = p[i+1:]
	}
}

func (s wsSink) control(op byte, p []byte) {
	switch op {
	case wsPing:
		s.c.writeFrame(wsPong, p)
	case wsClose:
		s.c.closeReceived = true
		if !s.c.closeSent.Load() {
			// Echo the status code (RFC 6455 5.5.1); the server then
			// closes TCP, and the read ends with EOF.
			code := uint16(wsCloseNormal)
			if len(p) >= 2 {
				code = uint16(p[0])<<8 | uint16(p[1])
			}
			s.c.writeClose(code)
		}
	}
}

// consume handles n freshly read bytes of c (for line mode preceded in
// data by the carried partial line); kernelTime is when the kernel
// received the newest of them (0: unknown). It returns false when a
// protocol error has failed the connection.
func (r *run) consume(c *client, st *stats, data []byte, kernelTime int64) bool {
	ck := r.newChunk()
	if kernelTime > 0 {
		// The wall clock of the receive time and the bench's clock (wall
		// clock at start, advanced monotonically) may disagree by a clock
		// step; a negative wait is recorded as 0.
		ck.readDelay = ck.now - kernelTime
		ck.timed = true
	}
	defer st.flush(&ck)
	if !c.ws {
		if !r.closing.Load() {
			r.consumeLines(c, st, data, &ck)
		}
		return true
	}
	if err := c.wsr.feed(data, r.maxLine, wsSink{r, c, st, &ck}); err != nil {
		c.protoErr = err
		c.writeClose(wsCloseProtocol)
		return false
	}
	return true
}

// readBuf returns the part of buf to read new bytes into: for line mode
// the carried partial line is first copied to the front of buf, and the
// caller hands buf[:len(carry)+n] to consume.
func (c *client) readBuf(buf []byte) (prefix int) {
	if c.ws || len(c.carry) == 0 {
		return 0
	}
	return copy(buf, c.carry)
}

// Limits of netchat's that stop a benchmark, recognised by their notices.
type limitSet uint8

const (
	limitRate   limitSet = 1 << iota // "! slow down", "! flooding": --msg-rate
	limitPerIP                       // "! too many connections from your address"
	limitFull                        // "! server full, try again later": --max-conns
	limitOthers                      // any other "! " line
)

func classifyError(line []byte) limitSet {
	switch {
	case bytes.Contains(line, []byte("slow down")), bytes.Contains(line, []byte("flooding")):
		return limitRate
	case bytes.Contains(line, []byte("too many connections from your address")):
		return limitPerIP
	case bytes.Contains(line, []byte("server full")):
		return limitFull
	}
	return limitOthers
}

// hint says which server limits stopped or throttled the run, and how to
// lift them on a netchat server.
func (l limitSet) hint() string {
	var parts []string
	if l&limitRate != 0 {
		parts = append(parts, `the server's message rate limit ("! slow down"): run it with --msg-rate 0`)
	}
	if l&limitPerIP != 0 {
		parts = append(parts, `the server's per-address connection limit ("! too many connections from your address"): run it with --max-conns-per-ip 0, or give the bench --source-ips`)
	}
	if l&limitFull != 0 {
		parts = append(parts, `the server's connection limit ("! server full"): raise its --max-conns`)
	}
	if len(parts) == 0 {
		return ""
	}
	s := parts[0]
	for _, p := range parts[1:] {
		s += "; and " + p
	}
	return s
}

// handleLine accounts for one received line. It is the per-delivery hot
// path: no allocation, no lock, and only the reader's own figures.
func (r *run) handleLine(c *client, st *stats, line []byte, ck *chunk) {
	i := bytes.Index(line, benchTag)
	if i < 0 {
		if j := bytes.Index(line, readyTag); j >= 0 {
			r.handleProbe(c, st, line[j+len(readyTag):])
		} else if bytes.HasPrefix(line, errorPrefix) {
			st.serverErrors++
			st.limits |= classifyError(line)
		}
		return
	}
	sender, seq, sentAt, ok := parseBench(line[i+len(benchTag):])
	if !ok || sender >= r.cfg.Senders || seq < 1 { // senders count from seq 1
		st.foreign++
		return
	}
	if sentAt < r.baseNano {
		st.stale++ // e.g. history the server replays from an earlier run
		return
	}
	if sender == c.id {
		st.echoes++
		return
	}
	ck.delivered++
	fresh := true
	if c.lastSeq != nil {
		if seq <= c.lastSeq[sender] {
			st.orderViolations++
			fresh = false
		} else {
			c.lastSeq[sender] = seq
		}
	}
	if r.cfg.Rate == 0 && r.observer(sender) == c.id && seq > r.acked[sender].Load() {
		r.acked[sender].Store(seq)
		select {
		case r.wake[sender] <- struct{}{}:
		default:
		}
	}
	if ck.now >= ck.mStart && ck.now < ck.mEnd {
		st.inWindow++
	}
	if sentAt >= ck.mStart && sentAt < ck.mEnd {
		st.measured++
		if fresh {
			ck.fresh++
		}
		st.lat.Record(ck.now - sentAt)
		if ck.timed {
			st.readDelay.Record(ck.readDelay)
		}
	}
}

// handleProbe handles the rest of "BENCHREADY <from> <run> <round>".
// Probes of other runs (replayed history) are ignored: they would declare
// a client ready before it receives this run's broadcasts.
func (r *run) handleProbe(c *client, st *stats, b []byte) {
	from, n, ok := parseUint(b)
	if !ok || n >= len(b) || b[n] != ' ' {
		return
	}
	id, _, ok := parseUint(b[n+1:])
	if !ok || id != r.baseNano {
		return
	}
	if from == int64(c.id) {
		st.probeEchoes++
		return
	}
	if !c.seenReady.Swap(true) {
		r.readyCount.Add(1)
	}
}
