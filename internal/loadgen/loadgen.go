// Package loadgen is the load generator behind `netchat bench`: it connects
// many clients to a line-based chat server, lets some of them send
// time-stamped lines and measures how many of them every other client
// receives, how fast and how late.
//
// A run has four phases, like the chatbench harness's chatload, so that the
// two tools can check each other:
//
//  1. connect: dial every client (a few at a time), wait for the greeting,
//     send nickname <prefix><i> and wait for the welcome line.
//  2. ready: clients 0 and 1 send BENCHREADY probes until every client has
//     received one from another client, i.e. receives broadcasts.
//  3. send: the senders send "BENCH <sender> <seq> <unixnano> xxx..." lines
//     for warmup + duration, at a fixed rate (open loop) or as fast as a
//     window of unacknowledged lines allows (closed loop).
//  4. drain: wait a bounded time for lines still in flight.
//
// The generator usually shares the CPU with the server it measures, so the
// receiving side is kept cheap: plain TCP clients are read from one epoll
// set per CPU (poller_linux.go), with no goroutine, buffer or wake-up per
// client; one clock reading serves all lines of a read; nothing is
// allocated or locked per received line; and the statistics belong to the
// reader (a poller) and are merged once at the end. TLS connections, and
// every connection on systems without epoll, get a reader goroutine.
//
// Over WebSocket (Config.WSPath) every line travels as one text frame in
// each direction, as netchat's /ws and chatload --proto ws do (ws.go).
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// maxOrderEntries bounds the per-receiver, per-sender sequence table that
// order checking needs (8 bytes each).
const maxOrderEntries = 4 << 20

// senderCount is padded so that senders do not share a cache line.
type senderCount struct {
	sent     atomic.Int64
	measured atomic.Int64
	// lagMax is how late (ns) the sender sent a line after the time its
	// open-loop schedule gave it; written by the sender only.
	lagMax int64
	_      [40]byte
}

type run struct {
	cfg      Config
	progress io.Writer // nil: quiet

	// Send times are wall-clock nanoseconds (comparable across processes,
	// for stale-line detection) advanced by the monotonic clock (immune to
	// clock steps during the run).
	base     time.Time
	baseNano int64

	mu       sync.Mutex // guards clients, stats and closing's transition
	clients  []*client
	stats    []*stats    // one per reader: pollers, reader goroutines, connect workers
	closing  atomic.Bool // set before we close connections ourselves
	closed   sync.Once
	released sync.Once

	pollers []*poller
	maxLine int // longer received lines are handled by this prefix

	readers sync.WaitGroup
	senders sync.WaitGroup

	measureStart atomic.Int64 // zero until the send phase is scheduled
	measureEnd   atomic.Int64
	stopOnce     sync.Once
	stopSending  chan struct{}
	readyCount   atomic.Int64

	// Closed loop: acked[s] is the highest seq of sender s that its
	// observer has received; wake[s] nudges a sender waiting for it.
	acked []atomic.Int64
	wake  []chan struct{}

	sent           []senderCount
	sendersDone    atomic.Int64
	writeErrors    atomic.Int64
	windowTimeouts atomic.Int64
}

func (r *run) now() int64 { return r.baseNano + int64(time.Since(r.base)) }

// observer is the client whose receipt of sender s's lines opens s's
// window: the last client, which a server typically writes to last.
func (r *run) observer(s int) int {
	if s == r.cfg.Clients-1 {
		return 0
	}
	return r.cfg.Clients - 1
}

// Run performs one benchmark and returns its result. Progress lines (one
// per phase and one per second while sending) go to progress unless it is
// nil. Run returns an error if a client cannot connect or not every client
// becomes ready, and when ctx ends; a server that loses or delays lines is
// not an error but shows in the Result.
func Run(ctx context.Context, cfg Config, progress io.Writer) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg.fillDefaults()
	r := &run{
		cfg:         cfg,
		progress:    progress,
		base:        time.Now(),
		clients:     make([]*client, cfg.Clients),
		stopSending: make(chan struct{}),
		acked:       make([]atomic.Int64, cfg.Senders),
		wake:        make([]chan struct{}, cfg.Senders),
		sent:        make([]senderCount, cfg.Senders),
	}
	r.baseNano = r.base.UnixNano()
	r.maxLine = max(4096, 2*cfg.Payload)
	for i := range r.wake {
		r.wake[i] = make(chan struct{}, 1)
	}
	if cfg.TLS == nil {
		r.mu.Lock()
		r.pollers = newPollers(r)
		r.mu.Unlock()
	}
	// Cancellation closes every connection, which unblocks every reader,
	// writer and dial at once.
	stop := context.AfterFunc(ctx, func() { r.closeAll(false) })
	defer stop()
	res, err := r.execute(ctx)
	if ctx.Err() != nil {
		return res, fmt.Errorf("benchmark interrupted: %w", context.Cause(ctx))
	}
	return res, err
}

func (r *run) logf(format string, args ...any) {
	if r.progress != nil {
		fmt.Fprintf(r.progress, "bench: "+format+"\n", args...)
	}
}

// closeAll stops the senders and ends every connection and reader. With
// graceful set, WebSocket clients first do the close handshake (below).
func (r *run) closeAll(graceful bool) {
	r.stopOnce.Do(func() { close(r.stopSending) })
	r.closed.Do(func() {
		r.mu.Lock()
		r.closing.Store(true)
		clients := r.clients
		pollers := r.pollers
		r.mu.Unlock()
		if graceful && r.cfg.WSPath != "" {
			r.closeHandshake(clients)
		}
		for _, c := range clients {
			if c != nil {
				c.interrupt()
			}
		}
		for _, p := range pollers {
			p.close()
		}
	})
}

// release frees every connection; nothing of the run may use them any
// more (shutdown has waited for the senders and readers).
func (r *run) release() {
	r.released.Do(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.clients {
			if c != nil {
				c.end()
			}
		}
	})
}

// wsCloseWait bounds the WebSocket close handshake of a whole run.
const wsCloseWait = time.Second

// closeHandshake sends every WebSocket client's close frame, then waits
// (at most wsCloseWait in all) until the server has answered and closed
// each TCP connection itself, so that the TIME_WAIT state stays on the
// server (RFC 6455 7.1.1) and repeated big runs do not use up the
// bench's ephemeral ports. Lines arriving meanwhile are not counted.
func (r *run) closeHandshake(clients []*client) {
	deadline := time.Now().Add(wsCloseWait)
	for _, c := range clients {
		if c != nil && !c.ended.Load() {
			c.writeCloseBy(wsCloseNormal, deadline)
		}
	}
	for _, c := range clients {
		for c != nil && !c.ended.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
}

// shutdown closes everything and waits until no goroutine of the run is
// left, after which the reader-owned statistics may be read.
func (r *run) shutdown() {
	r.closeAll(true)
	r.senders.Wait()
	r.readers.Wait()
	r.release()
}

func (r *run) execute(ctx context.Context) (Result, error) {
	cfg := r.cfg
	res := Result{
		Addr: cfg.Addr, TLS: cfg.TLS != nil, WSPath: cfg.WSPath, Clients: cfg.Clients, Senders: cfg.Senders,
		Rate: cfg.Rate, PayloadBytes: cfg.Payload, NickStep: cfg.NickPrefix != "",
		DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(),
	}
	if cfg.Rate == 0 {
		res.Window = cfg.Window
	}
	defer r.shutdown()

	if cfg.ServerPID > 0 {
		if _, ok := processCPUTime(cfg.ServerPID); !ok {
			return res, fmt.Errorf("cannot read the CPU time of server process %d", cfg.ServerPID)
		}
	}
	if err := r.connect(ctx, &res); err != nil {
		return res, err
	}
	r.logf("connected %d clients in %.2fs", cfg.Clients, res.ConnectS)

	readyStart := time.Now()
	err := r.waitReady(ctx)
	res.ReadyS = time.Since(readyStart).Seconds()
	if err != nil {
		return res, err
	}
	r.logf("all clients receive broadcasts after %.2fs more", res.ReadyS)

	start := r.now()
	mStart := start + int64(cfg.Warmup)
	mEnd := mStart + int64(cfg.Duration)
	r.measureStart.Store(mStart)
	r.measureEnd.Store(mEnd)
	for s := range cfg.Senders {
		r.senders.Add(1)
		go r.sendLoop(r.clients[s], s, start)
	}
	cpu := r.watchWindow(ctx, start, mStart, mEnd)
	r.stopOnce.Do(func() { close(r.stopSending) })
	if ctx.Err() != nil {
		return res, ctx.Err()
	}

	drainStart := time.Now()
	r.drain(ctx)
	res.DrainS = time.Since(drainStart).Seconds()
	r.shutdown()

	r.collect(&res)
	if cpu.selfOK {
		res.ClientCPUCores = cpu.self.Seconds() / cfg.Duration.Seconds()
	}
	if cpu.serverOK {
		res.ServerCPUCores = cpu.server.Seconds() / cfg.Duration.Seconds()
		if cpu.server > 0 {
			res.DeliveriesPerServerCPUSec = res.DeliveriesPerSec * cfg.Duration.Seconds() / cpu.server.Seconds()
		}
	}
	if res.SentLines == 0 || res.Deliveries == 0 {
		return res, nothingMeasured(&res)
	}
	return res, nil
}

// pacedBelow: a closed-loop sender that gets fewer lines per second than
// this through is held back by the server (a healthy one passes
// thousands; netchat's default rate limit allows 10).
const pacedBelow = 20

// ErrNothingMeasured is wrapped by Run's error when the run completed but
// measured nothing: no line was sent inside the window, or none reached
// another client. The Result is still filled in.
var ErrNothingMeasured = errors.New("nothing was measured")

func nothingMeasured(res *Result) error {
	why := "no line sent inside the window reached another client"
	switch {
	case res.LimitHint != "":
		why = "stopped by " + res.LimitHint
	case res.SentLines == 0:
		why = "the senders sent nothing inside the window"
	}
	return fmt.Errorf("%w (%d lines sent in the window, %d delivered; %d server errors, %d disconnects, %d write errors): %s",
		ErrNothingMeasured, res.SentLines, res.Deliveries, res.ServerErrorLines, res.Disconnects, res.WriteErrors, why)
}

// connect dials every client with at most DialConcurrency connects in
// flight and starts its reader. It gives up at the first failure: a partial
// room would measure a different load than was asked for.
func (r *run) connect(ctx context.Context, res *Result) error {
	cfg := r.cfg
	type workerStats struct {
		dial, welcome Histogram
		err           error
		failedClient  int
		recv          *stats // what arrives with the welcome
	}
	workers := min(cfg.DialConcurrency, cfg.Clients)
	st := make([]workerStats, workers)
	r.mu.Lock()
	for w := range st {
		st[w].recv = new(stats)
		r.stats = append(r.stats, st[w].recv)
	}
	r.mu.Unlock()
	var failed atomic.Bool
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := r.dial(ctx, i, st[w].recv, &st[w].dial, &st[w].welcome); err != nil {
					if st[w].err == nil {
						st[w].err, st[w].failedClient = err, i
					}
					failed.Store(true)
				}
			}
		}()
	}
	for i := 0; i < cfg.Clients && !failed.Load() && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	res.ConnectS = time.Since(start).Seconds()

	var dial, welcome Histogram
	var firstErr error
	failedClient := 0
	for w := range st {
		dial.Merge(&st[w].dial)
		welcome.Merge(&st[w].welcome)
		if firstErr == nil && st[w].err != nil {
			firstErr, failedClient = st[w].err, st[w].failedClient
		}
	}
	res.Connected = int(dial.Count())
	if cfg.NickPrefix != "" {
		res.Connected = int(welcome.Count())
	}
	res.ConnectsPerSec = float64(res.Connected) / res.ConnectS
	res.DialP50Ms = ms(dial.Quantile(0.5))
	res.DialP99Ms = ms(dial.Quantile(0.99))
	res.DialMaxMs = ms(dial.Max())
	res.WelcomeP50Ms = ms(welcome.Quantile(0.5))
	res.WelcomeP99Ms = ms(welcome.Quantile(0.99))
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case firstErr == nil:
	case res.Connected == 0:
		return fmt.Errorf("cannot connect to %s: %w", cfg.Addr, firstErr)
	default:
		return fmt.Errorf("%d of %d clients connected to %s, then client %d failed: %w",
			res.Connected, cfg.Clients, cfg.Addr, failedClient, firstErr)
	}
	return nil
}

// waitReady makes clients 0 and 1 send probes until every client has
// received one from another client. Probes back off from 50ms to 1s so
// that they add little to a big room's join traffic.
func (r *run) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(r.cfg.ReadyTimeout)
	interval := 50 * time.Millisecond
	all := int64(r.cfg.Clients)
	for round := 0; ; round++ {
		for _, c := range r.clients[:2] {
			line := fmt.Sprintf("BENCHREADY %d %d %d\n", c.id, r.baseNano, round)
			if err := c.writeLine([]byte(line)); err != nil {
				return fmt.Errorf("sending ready probe as client %d: %w", c.id, err)
			}
		}
		for next := time.Now().Add(interval); time.Now().Before(next); {
			if r.readyCount.Load() == all {
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			time.Sleep(2 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			var missing []int
			for _, c := range r.clients {
				if !c.seenReady.Load() && len(missing) < 10 {
					missing = append(missing, c.id)
				}
			}
			return fmt.Errorf("only %d of %d clients received broadcasts within %v (first not ready: %v)",
				r.readyCount.Load(), all, r.cfg.ReadyTimeout, missing)
		}
		interval = min(2*interval, time.Second)
	}
}

// windowCPU is the CPU time used inside the measured window.
type windowCPU struct {
	self, server     time.Duration
	selfOK, serverOK bool
}

// watchWindow waits for the end of the measured window, printing progress
// once a second, and measures the CPU time this process and the server
// (with ServerPID) used inside it.
func (r *run) watchWindow(ctx context.Context, start, mStart, mEnd int64) windowCPU {
	var cpu windowCPU
	sample := func() (self, server time.Duration, selfOK, serverOK bool) {
		self, selfOK = cpuTime()
		if r.cfg.ServerPID > 0 {
			server, serverOK = processCPUTime(r.cfg.ServerPID)
		}
		return self, server, selfOK, serverOK
	}
	var self0, server0 time.Duration
	sampled := false
	var lastSent, lastDelivered int64
	nextTick := start + int64(time.Second)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		t := r.now()
		if !sampled && t >= mStart {
			self0, server0, cpu.selfOK, cpu.serverOK = sample()
			sampled = true
		}
		if t >= mEnd {
			break
		}
		if t >= nextTick {
			sent, delivered := r.totals()
			phase := "warmup"
			if nextTick-int64(time.Second) >= mStart {
				phase = "measure"
			}
			r.logf("t=%4.1fs %-7s sent %8d/s  delivered %10d/s", float64(t-start)/1e9, phase, sent-lastSent, delivered-lastDelivered)
			lastSent, lastDelivered = sent, delivered
			nextTick += int64(time.Second)
		}
		wakeAt := min(nextTick, mEnd)
		if !sampled {
			wakeAt = min(wakeAt, mStart)
		}
		timer.Reset(time.Duration(wakeAt - t))
		select {
		case <-timer.C:
		case <-ctx.Done():
			return windowCPU{}
		}
	}
	self1, server1, selfOK, serverOK := sample()
	cpu.self, cpu.server = self1-self0, server1-server0
	cpu.selfOK = cpu.selfOK && selfOK
	cpu.serverOK = cpu.serverOK && serverOK
	return cpu
}

func (r *run) totals() (sent, delivered int64) {
	for i := range r.sent {
		sent += r.sent[i].sent.Load()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.stats {
		delivered += st.delivered.Load()
	}
	return sent, delivered
}

// drain waits until every receiver has got every measured line, the
// senders have stopped, or Drain has passed.
func (r *run) drain(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var sentMeasured, fresh int64
		for i := range r.sent {
			sentMeasured += r.sent[i].measured.Load()
		}
		r.mu.Lock()
		for _, st := range r.stats {
			fresh += st.fresh.Load()
		}
		r.mu.Unlock()
		if r.sendersDone.Load() == int64(r.cfg.Senders) && fresh >= sentMeasured*int64(r.cfg.Clients-1) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// collect merges the readers' statistics; the readers must have exited.
func (r *run) collect(res *Result) {
	cfg := r.cfg
	var all stats
	for _, st := range r.stats {
		all.merge(st)
	}
	res.OrderChecked = true
	for _, c := range r.clients {
		if c.disconnected {
			res.Disconnects++
		}
		if c.readFailed {
			res.ReadErrors++
		}
		if c.lastSeq == nil {
			res.OrderChecked = false
		}
	}
	res.Deliveries = all.measured
	res.Echoes = all.echoes
	res.OrderViolations = all.orderViolations
	res.ServerErrorLines = all.serverErrors
	res.StaleLines = all.stale
	res.ForeignLines = all.foreign
	res.LimitHint = all.limits.hint()
	var lagMax int64
	for i := range r.sent {
		res.SentLines += r.sent[i].measured.Load()
		lagMax = max(lagMax, r.sent[i].lagMax)
	}
	if cfg.Rate > 0 {
		res.SendLagMaxMs = ms(time.Duration(lagMax))
	}
	sec := cfg.Duration.Seconds()
	res.SentPerSec = float64(res.SentLines) / sec
	if perSender := res.SentPerSec / float64(cfg.Senders); cfg.Rate == 0 && res.SentLines > 0 && perSender < pacedBelow {
		// A rate limit that delays lines instead of refusing them (netchat
		// lags a sender that is within a burst of its rate) says nothing:
		// the closed loop then just measures the limit.
		paced := fmt.Sprintf("in closed loop only %.1f lines/s per sender got through: a rate limit on the server paces the senders "+
			"(netchat's --msg-rate, 10/s by default: run it with --msg-rate 0), or the server is overloaded", perSender)
		if res.LimitHint != "" {
			paced = res.LimitHint + "; and " + paced
		}
		res.LimitHint = paced
	}
	res.ExpectedDeliveries = res.SentLines * int64(cfg.Clients-1)
	if res.ExpectedDeliveries > 0 {
		res.DeliveryRatio = float64(res.Deliveries) / float64(res.ExpectedDeliveries)
	}
	res.DeliveriesPerSec = float64(all.inWindow) / sec
	res.EchoDetected = all.echoes > 0 || all.probeEchoes > 0
	lat := &all.lat
	res.LatencySamples = int64(lat.Count())
	res.LatencyP50Ms = ms(lat.Quantile(0.50))
	res.LatencyP90Ms = ms(lat.Quantile(0.90))
	res.LatencyP99Ms = ms(lat.Quantile(0.99))
	res.LatencyP999Ms = ms(lat.Quantile(0.999))
	res.LatencyMaxMs = ms(lat.Max())
	res.LatencyMeanMs = ms(lat.Mean())
	if rd := &all.readDelay; rd.Count() > 0 {
		res.ReadDelaySamples = int64(rd.Count())
		res.ReadDelayP50Ms = ms(rd.Quantile(0.50))
		res.ReadDelayP99Ms = ms(rd.Quantile(0.99))
	}
	res.WriteErrors = r.writeErrors.Load()
	res.WindowTimeouts = r.windowTimeouts.Load()
}

// sendLoop sends as client c, sender number s, from start until the
// window ends.
func (r *run) sendLoop(c *client, s int, start int64) {
	defer r.senders.Done()
	defer r.sendersDone.Add(1)
	cfg := r.cfg
	mStart, mEnd := r.measureStart.Load(), r.measureEnd.Load()
	var interval, first int64
	if cfg.Rate > 0 {
		interval = max(int64(float64(time.Second)/cfg.Rate), 1)
		// Senders start at random points of one interval so that they do
		// not send in bursts. The schedule counts from the start of the
		// send phase, not from when this goroutine got to run, so a
		// sender that starts late on a busy machine catches up.
		first = start + rand.Int64N(interval)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	count := &r.sent[s]
	buf := make([]byte, 0, max(cfg.Payload, 64)+1)
	for seq := int64(1); ; seq++ {
		if cfg.Rate > 0 {
			due := first + (seq-1)*interval
			if due >= mEnd {
				return
			}
			if wait := due - r.now(); wait > 0 {
				timer.Reset(time.Duration(wait))
				select {
				case <-timer.C:
				case <-r.stopSending:
					return
				}
			}
			count.lagMax = max(count.lagMax, r.now()-due)
		} else if !r.waitWindow(s, seq, timer) {
			return
		}
		now := r.now()
		if now >= mEnd {
			return
		}
		buf = appendBench(buf[:0], s, seq, now, cfg.Payload)
		if err := c.writeLine(buf); err != nil {
			if !r.closing.Load() {
				r.writeErrors.Add(1)
			}
			return
		}
		count.sent.Add(1)
		if now >= mStart {
			count.measured.Add(1)
		}
	}
}

// waitWindow blocks until sender s may send line seq: fewer than Window of
// its lines are unseen by its observer. It returns false when sending ends.
func (r *run) waitWindow(s int, seq int64, stall *time.Timer) bool {
	for seq-1-r.acked[s].Load() >= int64(r.cfg.Window) {
		stall.Reset(r.cfg.StallTimeout)
		select {
		case <-r.wake[s]:
		case <-r.stopSending:
			return false
		case <-stall.C:
			// A lost line or a stuck observer must not stop this sender
			// for the rest of the run.
			r.windowTimeouts.Add(1)
			r.acked[s].Store(seq - 1)
		}
	}
	return true
}
