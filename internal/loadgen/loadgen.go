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
// receiving side is kept cheap: one goroutine and one bufio.Reader per
// client, no allocation and no shared lock per received line, and per-client
// statistics that are merged once at the end.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxOrderEntries bounds the per-receiver, per-sender sequence table that
// order checking needs (8 bytes each).
const maxOrderEntries = 4 << 20

type client struct {
	id   int
	conn net.Conn // raw, or TLS over raw
	raw  net.Conn // closed to end the run: no TLS close_notify per client
	br   *bufio.Reader

	seenReady atomic.Bool
	// Read live by progress and drain while the reader updates them.
	delivered atomic.Int64 // BENCH lines of this run from other clients
	measured  atomic.Int64 // deliveries of lines sent inside the window

	// Owned by the reader goroutine; read only after it has exited.
	lastSeq         []int64 // highest seq per sender; nil if not checked
	inWindow        int64   // deliveries that arrived inside the window
	echoes          int64
	probeEchoes     int64
	orderViolations int64
	serverErrors    int64
	stale           int64
	foreign         int64
	disconnected    bool
	readFailed      bool
	lat             Histogram
}

// senderCount is padded so that senders do not share a cache line.
type senderCount struct {
	sent     atomic.Int64
	measured atomic.Int64
	_        [48]byte
}

type run struct {
	cfg      Config
	progress io.Writer // nil: quiet

	// Send times are wall-clock nanoseconds (comparable across processes,
	// for stale-line detection) advanced by the monotonic clock (immune to
	// clock steps during the run).
	base     time.Time
	baseNano int64

	mu      sync.Mutex // guards clients and closing's transition
	clients []*client
	closing atomic.Bool // set before we close connections ourselves

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
	for i := range r.wake {
		r.wake[i] = make(chan struct{}, 1)
	}
	// Cancellation closes every connection, which unblocks every reader,
	// writer and dial at once.
	stop := context.AfterFunc(ctx, r.closeAll)
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

// closeAll stops the senders and closes every registered connection.
func (r *run) closeAll() {
	r.stopOnce.Do(func() { close(r.stopSending) })
	r.mu.Lock()
	r.closing.Store(true)
	clients := r.clients
	r.mu.Unlock()
	for _, c := range clients {
		if c != nil {
			c.raw.Close()
		}
	}
}

// shutdown closes everything and waits until no goroutine of the run is
// left, after which the reader-owned statistics may be read.
func (r *run) shutdown() {
	r.closeAll()
	r.senders.Wait()
	r.readers.Wait()
}

func (r *run) execute(ctx context.Context) (Result, error) {
	cfg := r.cfg
	res := Result{
		Addr: cfg.Addr, TLS: cfg.TLS != nil, Clients: cfg.Clients, Senders: cfg.Senders,
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
		go r.sendLoop(r.clients[s], s)
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
	return res, nil
}

// connect dials every client with at most DialConcurrency connects in
// flight and starts its reader. It gives up at the first failure: a partial
// room would measure a different load than was asked for.
func (r *run) connect(ctx context.Context, res *Result) error {
	cfg := r.cfg
	type stats struct {
		dial, welcome Histogram
		err           error
		failedClient  int
	}
	workers := min(cfg.DialConcurrency, cfg.Clients)
	st := make([]stats, workers)
	var failed atomic.Bool
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := r.dial(ctx, i, &st[w].dial, &st[w].welcome); err != nil {
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

// dial connects client i, waits for the greeting, registers its nickname
// and starts its reader.
func (r *run) dial(ctx context.Context, i int, dialHist, welcomeHist *Histogram) error {
	cfg := r.cfg
	start := time.Now()
	d := net.Dialer{Timeout: cfg.DialTimeout}
	if cfg.SourceIPs > 0 {
		d.LocalAddr = sourceAddr(i, cfg.SourceIPs)
	}
	raw, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			raw.Close()
		}
	}()
	// The handshake below is bounded by deadlines, not by ctx; a deadline
	// in the past makes it notice ctx. Deadlines set on raw also bound the
	// TLS connection's reads and writes.
	canceled := time.Unix(1, 0)
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(canceled) })
	defer stop()
	setDeadline := func(d time.Duration) {
		raw.SetDeadline(time.Now().Add(d))
		if ctx.Err() != nil {
			raw.SetDeadline(canceled)
		}
	}
	conn := raw
	if cfg.TLS != nil {
		tc := tls.Client(raw, cfg.TLS)
		setDeadline(cfg.DialTimeout)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		conn = tc
	}
	c := &client{id: i, conn: conn, raw: raw, br: bufio.NewReaderSize(conn, max(4096, 2*cfg.Payload))}
	setDeadline(cfg.GreetingTimeout)
	if _, err := c.readLine(); err != nil {
		return fmt.Errorf("no greeting line: %w", err)
	}
	dialHist.Record(int64(time.Since(start)))
	if cfg.NickPrefix != "" {
		t := time.Now()
		nick := cfg.NickPrefix + strconv.Itoa(i)
		setDeadline(cfg.GreetingTimeout)
		if _, err := io.WriteString(conn, nick+"\n"); err != nil {
			return fmt.Errorf("sending nickname: %w", err)
		}
		if err := c.awaitWelcome(nick); err != nil {
			return err
		}
		welcomeHist.Record(int64(time.Since(t)))
	}
	if !stop() {
		return ctx.Err()
	}
	raw.SetDeadline(time.Time{})
	if int64(cfg.Clients)*int64(cfg.Senders) <= maxOrderEntries {
		c.lastSeq = make([]int64, cfg.Senders)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing.Load() {
		return errors.New("benchmark stopped")
	}
	r.clients[i] = c
	r.readers.Add(1)
	go r.readLoop(c)
	ok = true
	return nil
}

// readLine returns the next whole line; the tail of an over-long line is
// skipped.
func (c *client) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = c.br.ReadSlice('\n')
	}
	return line, err
}

// awaitWelcome reads until the server accepts or refuses the nickname.
func (c *client) awaitWelcome(nick string) error {
	for {
		line, err := c.readLine()
		if err != nil {
			return fmt.Errorf("no welcome after nickname %q: %w", nick, err)
		}
		switch {
		case bytes.HasPrefix(line, welcomeTag):
			return nil
		case bytes.HasPrefix(line, errorPrefix):
			return fmt.Errorf("server refused nickname %q: %q", nick, bytes.TrimRight(line, "\r\n"))
		}
	}
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
			if _, err := io.WriteString(c.conn, line); err != nil {
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
	for _, c := range r.clients {
		delivered += c.delivered.Load()
	}
	return sent, delivered
}

// drain waits until every measured line has reached every receiver, the
// senders have stopped, or Drain has passed.
func (r *run) drain(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var sentMeasured, measured int64
		for i := range r.sent {
			sentMeasured += r.sent[i].measured.Load()
		}
		for _, c := range r.clients {
			measured += c.measured.Load()
		}
		if r.sendersDone.Load() == int64(r.cfg.Senders) && measured >= sentMeasured*int64(r.cfg.Clients-1) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// collect merges the per-client statistics; the readers must have exited.
func (r *run) collect(res *Result) {
	cfg := r.cfg
	var lat Histogram
	var inWindow, probeEchoes int64
	res.OrderChecked = true
	for _, c := range r.clients {
		lat.Merge(&c.lat)
		res.Deliveries += c.measured.Load()
		inWindow += c.inWindow
		res.Echoes += c.echoes
		probeEchoes += c.probeEchoes
		res.OrderViolations += c.orderViolations
		res.ServerErrorLines += c.serverErrors
		res.StaleLines += c.stale
		res.ForeignLines += c.foreign
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
	for i := range r.sent {
		res.SentLines += r.sent[i].measured.Load()
	}
	sec := cfg.Duration.Seconds()
	res.SentPerSec = float64(res.SentLines) / sec
	res.ExpectedDeliveries = res.SentLines * int64(cfg.Clients-1)
	if res.ExpectedDeliveries > 0 {
		res.DeliveryRatio = float64(res.Deliveries) / float64(res.ExpectedDeliveries)
	}
	res.DeliveriesPerSec = float64(inWindow) / sec
	res.EchoDetected = res.Echoes > 0 || probeEchoes > 0
	res.LatencySamples = int64(lat.Count())
	res.LatencyP50Ms = ms(lat.Quantile(0.50))
	res.LatencyP90Ms = ms(lat.Quantile(0.90))
	res.LatencyP99Ms = ms(lat.Quantile(0.99))
	res.LatencyP999Ms = ms(lat.Quantile(0.999))
	res.LatencyMaxMs = ms(lat.Max())
	res.LatencyMeanMs = ms(lat.Mean())
	res.WriteErrors = r.writeErrors.Load()
	res.WindowTimeouts = r.windowTimeouts.Load()
}

// readLoop reads client c's lines until its connection ends.
func (r *run) readLoop(c *client) {
	defer r.readers.Done()
	skipping := false // inside the tail of an over-long line
	for {
		line, err := c.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !skipping {
				r.handleLine(c, line)
			}
			skipping = true
			continue
		}
		if err != nil {
			if !r.closing.Load() {
				if errors.Is(err, io.EOF) {
					c.disconnected = true
				} else {
					c.readFailed = true
				}
			}
			return
		}
		if !skipping {
			r.handleLine(c, line)
		}
		skipping = false
	}
}

// handleLine accounts for one received line. It is the per-delivery hot
// path: no allocation, no lock, and only the client's own atomics.
func (r *run) handleLine(c *client, line []byte) {
	i := bytes.Index(line, benchTag)
	if i < 0 {
		if j := bytes.Index(line, readyTag); j >= 0 {
			r.handleProbe(c, line[j+len(readyTag):])
		} else if bytes.HasPrefix(line, errorPrefix) {
			c.serverErrors++
		}
		return
	}
	now := r.now()
	sender, seq, sentAt, ok := parseBench(line[i+len(benchTag):])
	if !ok || sender >= r.cfg.Senders || seq < 1 { // senders count from seq 1
		c.foreign++
		return
	}
	if sentAt < r.baseNano {
		c.stale++ // e.g. history the server replays from an earlier run
		return
	}
	if sender == c.id {
		c.echoes++
		return
	}
	c.delivered.Add(1)
	if c.lastSeq != nil {
		if seq <= c.lastSeq[sender] {
			c.orderViolations++
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
	mStart, mEnd := r.measureStart.Load(), r.measureEnd.Load()
	if now >= mStart && now < mEnd {
		c.inWindow++
	}
	if sentAt >= mStart && sentAt < mEnd {
		c.measured.Add(1)
		c.lat.Record(now - sentAt)
	}
}

// handleProbe handles the rest of "BENCHREADY <from> <run> <round>".
// Probes of other runs (replayed history) are ignored: they would declare
// a client ready before it receives this run's broadcasts.
func (r *run) handleProbe(c *client, b []byte) {
	from, n, ok := parseUint(b)
	if !ok || n >= len(b) || b[n] != ' ' {
		return
	}
	id, _, ok := parseUint(b[n+1:])
	if !ok || id != r.baseNano {
		return
	}
	if from == int64(c.id) {
		c.probeEchoes++
		return
	}
	if !c.seenReady.Swap(true) {
		r.readyCount.Add(1)
	}
}

// sendLoop sends as client c, sender number s, until the window ends.
func (r *run) sendLoop(c *client, s int) {
	defer r.senders.Done()
	defer r.sendersDone.Add(1)
	cfg := r.cfg
	mStart, mEnd := r.measureStart.Load(), r.measureEnd.Load()
	var interval, first int64
	if cfg.Rate > 0 {
		interval = max(int64(float64(time.Second)/cfg.Rate), 1)
		// Senders start at random points of one interval so that they do
		// not send in bursts.
		first = r.now() + rand.Int64N(interval)
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
		} else if !r.waitWindow(s, seq, timer) {
			return
		}
		now := r.now()
		if now >= mEnd {
			return
		}
		buf = appendBench(buf[:0], s, seq, now, cfg.Payload)
		if _, err := c.conn.Write(buf); err != nil {
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
