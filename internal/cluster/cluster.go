// Package cluster links chat rooms on several netchat servers into one room
// over NATS (SPEC §6). It implements chat.Link.
//
// What lives in NATS (all of it works on nats-server 2.9 and later):
//
//   - Stream NETCHAT_EVENTS, subject netchat.events: the room's log. Every
//     public event (join, leave, rename, message, /me, and the cluster's
//     own sync and gone events) is published there by the node where it
//     happens, in batches, and every node applies the log in its order
//     (chat.Room.Apply). The stream republishes each stored message to the
//     core subject netchat.live with its sequence number: that is how the
//     nodes follow the log (a gap in the sequence makes a node reload).
//     The stream is bounded by count and age; its latest messages are also
//     the recent history, read with an ordered consumer when a node links.
//   - Core subject netchat.node.ID: private messages for the users of node
//     ID, and nobody else. They are never stored.
//   - KV bucket netchat_nicks: one key per folded nickname, created only if
//     absent (the atomic claim); the value names node and user.
//   - KV bucket netchat_nodes: one key per node, rewritten every NodeTTL/4
//     (the heartbeat). Every node watches the bucket; a node not heard of
//     for 3/4 of NodeTTL is taken for dead: a survivor publishes a gone
//     event (each of its users leaves once; a second gone is a no-op in the
//     log's order), then frees its nicknames. No per-key TTL, no bucket
//     max age: liveness is judged on each node's own clock.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"netchat/internal/chat"
	"netchat/internal/sysio"
)

// Names of the cluster's NATS resources.
const (
	StreamName    = "NETCHAT_EVENTS"
	EventsSubject = "netchat.events"
	LiveSubject   = "netchat.live"
	ClaimsBucket  = "netchat_nicks"
	NodesBucket   = "netchat_nodes"
	privatePrefix = "netchat.node."
)

// Bounds of the log. The history a node shows is the last --history
// messages of it; the window is how far back a node reads it when its link
// comes up (roster changes in flight, and the history).
const (
	logMaxMsgs   = 100_000
	logMaxAge    = 24 * time.Hour
	logMaxBytes  = 512 << 20
	windowMsgs   = 4096
	opTimeout    = 5 * time.Second
	heldMax      = 2 * time.Second
	defaultTTL   = 30 * time.Second
	maxBatchSize = 256 << 10
	// syncPartBytes bounds one part of a sync event (see wire.go and
	// Node.limits).
	syncPartBytes = 128 << 10
)

// Options configure a node.
type Options struct {
	// URLs is the NATS server list, nats://[user:pass@]host:port separated
	// by commas.
	URLs string
	// Name is the node's name for people (transcript, logs).
	Name string
	// Creds is a NATS credentials file (JWT and nkey seed).
	Creds string
	// TLS requires TLS to the NATS servers; CA is a PEM file of the CAs
	// to trust (implies TLS).
	TLS bool
	CA  string
	// NodeTTL: a node silent this long is dead and its nicknames are free.
	NodeTTL time.Duration
	// MaxLine is the longest line a user may send (the server's
	// --max-line). Connect fails if the NATS server cannot carry such a
	// line in one message: publishing it would fail and take the link
	// down, again with each such line.
	MaxLine int
	Logger  *slog.Logger
	// Metrics, if set, gets the cluster's metrics.
	Metrics prometheus.Registerer
}

// Node is this server's membership in a cluster. Create it with Connect,
// give it to chat.NewClusterRoom, then Start it.
type Node struct {
	opt  Options
	id   string
	log  *slog.Logger
	m    *metrics
	nc   *nats.Conn
	js   jetstream.JetStream
	room *chat.Room

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	kvMu   sync.Mutex // guards the handles below (recreated after a server loses them)
	claims jetstream.KeyValue
	nodes  jetstream.KeyValue
	stream jetstream.Stream

	// The publisher: batches of events and private messages queued by the
	// room (never blocking it), sent by one goroutine.
	pubMu   sync.Mutex
	batch   []byte
	batches [][]byte
	// batchHead is the length of a batch's header: a batch that long
	// holds no event yet.
	batchHead int
	privs     []*chat.Private
	pubWake   chan struct{}
	payload   atomic.Int64 // the server's max_payload, learnt at each link-up
	closing   atomic.Bool  // Close has begun
	// dropHook, set by tests only, loses the events it returns true for.
	dropHook atomic.Pointer[func(*chat.Replicated) bool]

	// Link state.
	mu       sync.Mutex
	linked   bool
	since    time.Time // linked since
	stopCons func()
	gen      atomic.Uint64
	applyMu  sync.Mutex
	resyncCh chan struct{}

	// Releases of claims, done by a worker; kept while the link is down.
	relMu    sync.Mutex
	relRun   chan struct{} // a token held through a run of doReleases
	releases []release
	// relWait: the claims to give back, with the last Release asking for
	// it; a new claim of the same calls it off (removes it).
	relWait map[claimID]uint64
	relGen  uint64
	revs    map[string]claimRev // fold -> this node's claim and its revision
	relWake chan struct{}

	// Heartbeats seen, on this node's clock.
	seenMu   sync.Mutex
	seen     map[string]seenNode
	cleaning map[string]bool
	hbRev    uint64
}

// claimID names a claim: a nickname (folded) held by a user of this node.
type claimID struct {
	fold string
	id   uint64
}

// release is a claim to give back; gen numbers the Release calls.
type release struct {
	claimID
	gen uint64
}

type seenNode struct {
	at     time.Time
	rev    uint64
	format int           // of the log, from its heartbeat
	ttl    time.Duration // its --cluster-node-ttl, from its heartbeat
}

// Connect connects to NATS and makes sure the stream and buckets exist. It
// fails if no server can be reached: a node starts only with its cluster.
func Connect(ctx context.Context, opt Options) (*Node, error) {
	if opt.NodeTTL <= 0 {
		opt.NodeTTL = defaultTTL
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		opt:      opt,
		id:       newID(),
		log:      opt.Logger,
		pubWake:  make(chan struct{}, 1),
		relWake:  make(chan struct{}, 1),
		resyncCh: make(chan struct{}, 1),
		seen:     make(map[string]seenNode),
		cleaning: make(map[string]bool),
		revs:     make(map[string]claimRev),
		relWait:  make(map[claimID]uint64),
		relRun:   make(chan struct{}, 1),
	}
	n.m = newMetrics(opt.Metrics, n.otherVersions)
	n.ctx, n.cancel = context.WithCancel(context.Background())

	nopts := []nats.Option{
		nats.Name("netchat " + opt.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// Nothing is buffered while disconnected: what local users say
		// then stays local (SPEC §6), it is not replayed later.
		nats.ReconnectBufSize(-1),
		nats.Timeout(opTimeout),
		nats.SetCustomDialer(&dialer{net.Dialer{Timeout: opTimeout}}),
		nats.PingInterval(max(opt.NodeTTL/4, time.Second)),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.Trouble(fmt.Sprintf("disconnected from NATS: %v", err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.log.Info("cluster: reconnected to NATS", "server", c.ConnectedUrlRedacted())
			n.kickResync()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			n.log.Warn("cluster: NATS error", "err", err)
		}),
	}
	if opt.Creds != "" {
		nopts = append(nopts, nats.UserCredentials(opt.Creds))
	}
	if opt.CA != "" {
		nopts = append(nopts, nats.RootCAs(opt.CA))
	}
	if opt.TLS || opt.CA != "" {
		nopts = append(nopts, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	nc, err := nats.Connect(opt.URLs, nopts...)
	if err != nil {
		n.cancel()
		return nil, fmt.Errorf("cannot connect to NATS at %s: %w", redact(opt.URLs), err)
	}
	n.nc = nc
	if err := n.checkPayload(); err != nil {
		nc.Close()
		n.cancel()
		return nil, fmt.Errorf("NATS at %s: %w", redact(opt.URLs), err)
	}
	n.js, err = jetstream.New(nc)
	if err != nil {
		nc.Close()
		n.cancel()
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := n.ensure(cctx); err != nil {
		nc.Close()
		n.cancel()
		return nil, fmt.Errorf("NATS at %s: %w", redact(opt.URLs), err)
	}
	return n, nil
}

// checkPayload tells whether the NATS server this node is connected to
// takes a message holding the longest line a user may send.
func (n *Node) checkPayload() error {
	if n.opt.MaxLine <= 0 {
		return nil
	}
	need, has := lineBatchBound(n.opt.MaxLine, n.id, n.opt.Name), n.nc.MaxPayload()
	if int64(need) <= has {
		return nil
	}
	return fmt.Errorf("the server takes messages of at most %d bytes (its max_payload), "+
		"and a line of --max-line %d bytes may need %d: raise max_payload or lower --max-line",
		has, n.opt.MaxLine, need)
}

// dialer connects to NATS servers with sysio's connections, whose reads
// and writes are raw system calls. A busy node reads a log message and
// writes a batch many times a second, often right after a moment of
// idleness; made the ordinary way, each such call woke the Go runtime's
// monitor thread back into fast polling, about 10% of the node's CPU
// (docs/BENCHMARKS.md).
type dialer struct{ d net.Dialer }

func (d *dialer) Dial(network, addr string) (net.Conn, error) {
	c, err := d.d.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	return sysio.WrapConn(c), nil
}

// redact hides passwords in a server list.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			scheme := ""
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				scheme = p[:s+3]
			}
			parts[i] = scheme + "***@" + p[at+1:]
		}
	}
	return strings.Join(parts, ",")
}

func newID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(strings.TrimRight(base64.RawURLEncoding.EncodeToString(b[:]), "="))
}

// ensure creates the stream and buckets if they are missing (first node,
// or a NATS server that lost its storage), and opens them.
func (n *Node) ensure(ctx context.Context) error {
	stream, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "netchat room log",
		Subjects:    []string{EventsSubject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     logMaxMsgs,
		MaxAge:      logMaxAge,
		MaxBytes:    logMaxBytes,
		Replicas:    1,
		// Every stored message is republished, in the stream's order and
		// with its sequence number, to a core subject the nodes listen
		// to: the log's live tail at the cost of a core subscription, not
		// of a consumer (nats-server 2.9 has republish).
		RePublish: &jetstream.RePublish{Source: EventsSubject, Destination: LiveSubject},
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", StreamName, err)
	}
	claims, err := n.bucket(ctx, ClaimsBucket, "netchat nickname claims")
	if err != nil {
		return err
	}
	nodes, err := n.bucket(ctx, NodesBucket, "netchat node heartbeats")
	if err != nil {
		return err
	}
	n.kvMu.Lock()
	n.stream, n.claims, n.nodes = stream, claims, nodes
	n.kvMu.Unlock()
	return nil
}

func (n *Node) bucket(ctx context.Context, name, desc string) (jetstream.KeyValue, error) {
	kv, err := n.js.KeyValue(ctx, name)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	kv, err = n.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: desc,
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = n.js.KeyValue(ctx, name) // another node was first
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	return kv, nil
}

func (n *Node) kv() (claims, nodes jetstream.KeyValue, stream jetstream.Stream) {
	n.kvMu.Lock()
	defer n.kvMu.Unlock()
	return n.claims, n.nodes, n.stream
}

// NodeID implements chat.Link.
func (n *Node) NodeID() string { return n.id }

// NodeName implements chat.Link.
func (n *Node) NodeName() string { return n.opt.Name }

// Start links room to the cluster: it loads the cluster's state, announces
// this node, and keeps the link up (heartbeats, watching the other nodes,
// reconnecting) until Close.
func (n *Node) Start(ctx context.Context, room *chat.Room) error {
	n.room = room
	if _, err := n.nc.Subscribe(privatePrefix+n.id, n.onPrivate); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if err := n.heartbeat(ctx); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if err := n.resync(ctx); err != nil {
		return fmt.Errorf("loading the cluster's state: %w", err)
	}
	n.goLoop(n.publishLoop)
	n.goLoop(n.releaseLoop)
	n.goLoop(n.resyncLoop)
	n.goLoop(n.heartbeatLoop)
	n.goLoop(n.watchNodes)
	n.goLoop(n.watchClaims)
	n.goLoop(n.watchdog)
	return nil
}

func (n *Node) goLoop(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Close leaves the cluster: the room's remaining users are announced gone,
// their claims are freed, the heartbeat key is removed, and the connection
// is drained. Call it after the transport has let every user leave. It
// returns by ctx's deadline, whatever NATS does.
func (n *Node) Close(ctx context.Context) error {
	n.closing.Store(true)
	if n.room != nil && n.Linked() {
		actx, cancel := context.WithTimeout(ctx, opTimeout)
		gone := n.announceGone(actx, n.id)
		n.drainReleases(ctx)
		// The claims of users still here (the transport's shutdown ran
		// out of time) go like a dead node's. Only when all is done does
		// the heartbeat go; otherwise the other nodes take this one for
		// dead after the TTL and finish the job.
		if gone {
			claims, nodes, _ := n.kv()
			if _, err := n.freeClaimsOf(actx, claims, n.id); err == nil && n.releasesLeft() == 0 {
				_ = nodes.Delete(actx, n.id)
			}
		}
		cancel()
	}
	n.cancel()
	n.mu.Lock()
	n.linked = false
	stop := n.stopCons
	n.stopCons = nil
	n.mu.Unlock()
	if stop != nil {
		stop()
	}
	fctx, cancel := context.WithTimeout(ctx, opTimeout)
	err := n.nc.FlushWithContext(fctx)
	cancel()
	n.nc.Close()
	n.wg.Wait()
	n.m.setLinked(false)
	return err
}

// Linked reports whether the link is up.
func (n *Node) Linked() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.linked
}

// ---- chat.Link: claims ----

func claimKey(fold string) string { return base64.RawURLEncoding.EncodeToString([]byte(fold)) }

func foldOfKey(key string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	return string(b), err == nil
}

// Claim implements chat.Link.
func (n *Node) Claim(fold, nick string, id uint64) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
	defer cancel()
	err := n.claim(ctx, fold, nick, id)
	if err == nil || errors.Is(err, chat.ErrClaimTaken) {
		n.m.claimed(time.Since(start))
	}
	return err
}

func (n *Node) claim(ctx context.Context, fold, nick string, id uint64) (err error) {
	// A release of this very claim still on its way (the user renamed
	// and took the nickname back) must not free it now; asked for again
	// if this claim fails (the user may not get the name after all).
	n.relMu.Lock()
	_, calledOff := n.relWait[claimID{fold, id}]
	delete(n.relWait, claimID{fold, id})
	n.relMu.Unlock()
	if calledOff {
		defer func() {
			if err != nil {
				n.Release(fold, id)
			}
		}()
	}
	claims, _, _ := n.kv()
	key := claimKey(fold)
	// A few rounds: the key may vanish or change between the calls (a
	// release of it in flight).
	for range 3 {
		rev, err := claims.Create(ctx, key, encodeClaim(n.id, id, nick))
		if err == nil {
			n.remember(fold, id, rev)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
		// Ours already (a spelling change, a claim re-made after a
		// link loss, a nickname taken back)? Then keep it, with the
		// nickname as now spelt, under a new revision: a release in
		// flight deletes only the revision it knew.
		e, err := claims.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		c, ok := decodeClaim(e.Value())
		if !ok || c.Node != n.id || c.User != id {
			return chat.ErrClaimTaken
		}
		rev, err = claims.Update(ctx, key, encodeClaim(n.id, id, nick), e.Revision())
		if isWrongRevision(err) || errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		n.remember(fold, id, rev)
		return nil
	}
	return chat.ErrClaimTaken // somebody is busy with it
}

// remember notes the revision of a claim this node made, so that giving
// it back is one conditional delete.
func (n *Node) remember(fold string, id uint64, rev uint64) {
	n.relMu.Lock()
	n.revs[fold] = claimRev{id, rev}
	n.relMu.Unlock()
}

type claimRev struct {
	id, rev uint64
}

// Release implements chat.Link.
func (n *Node) Release(fold string, id uint64) {
	n.relMu.Lock()
	n.relGen++
	n.releases = append(n.releases, release{claimID{fold, id}, n.relGen})
	n.relWait[claimID{fold, id}] = n.relGen
	n.relMu.Unlock()
	select {
	case n.relWake <- struct{}{}:
	default:
	}
}

func (n *Node) releaseLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.relWake:
		case <-t.C:
		}
		n.doReleases(n.ctx)
	}
}

// doReleases frees the queued claims; those that fail stay queued. One
// run at a time: a run returns only when the releases queued before it
// are done (resync counts on it), including those another run had taken,
// or when ctx ends first.
func (n *Node) doReleases(ctx context.Context) {
	select {
	case n.relRun <- struct{}{}:
	case <-ctx.Done():
		return // a run stuck on NATS must not hold up Close past its deadline
	}
	defer func() { <-n.relRun }()
	if !n.nc.IsConnected() {
		return
	}
	n.relMu.Lock()
	todo := n.releases
	n.releases = nil
	n.relMu.Unlock()
	// Several at a time: after a crowd leaves, its nicknames must come
	// free in a moment, not one round trip after the other.
	var failed []release
	var fmu sync.Mutex
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, r := range todo {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := n.releaseNow(ctx, r); err != nil {
				n.log.Debug("cluster: releasing a nickname failed, will retry", "err", err)
				fmu.Lock()
				failed = append(failed, r)
				fmu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		n.relMu.Lock()
		n.releases = append(failed, n.releases...)
		n.relMu.Unlock()
	}
}

func (n *Node) releaseNow(ctx context.Context, r release) error {
	err := n.releaseClaim(ctx, r)
	if err == nil {
		n.relMu.Lock()
		if n.relWait[r.claimID] == r.gen {
			delete(n.relWait, r.claimID) // a later Release keeps its own
		}
		n.relMu.Unlock()
	}
	return err
}

// wanted says that r has not been called off by a new claim.
func (n *Node) wanted(r release) bool {
	n.relMu.Lock()
	defer n.relMu.Unlock()
	_, ok := n.relWait[r.claimID]
	return ok
}

func (n *Node) releaseClaim(ctx context.Context, r release) error {
	if id, ok := n.room.LocalHolder(r.fold); ok && id == r.id {
		return nil // the same user holds that name again
	}
	claims, _, _ := n.kv()
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	key := claimKey(r.fold)
	n.relMu.Lock()
	_, want := n.relWait[r.claimID]
	known, ok := n.revs[r.fold]
	ok = ok && known.id == r.id && want
	if ok {
		delete(n.revs, r.fold)
	}
	n.relMu.Unlock()
	if !want {
		return nil // claimed again since
	}
	if ok {
		// One conditional delete; if the claim changed since (made
		// again after a link loss, or a new claim made it anew), look
		// at it first.
		err := claims.Delete(ctx, key, jetstream.LastRevision(known.rev))
		if err == nil || !isWrongRevision(err) {
			return err
		}
	}
	e, err := claims.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if c, ok := decodeClaim(e.Value()); !ok || c.Node != n.id || c.User != r.id {
		return nil // somebody else's by now
	}
	// A claim of the same user made since the Get takes a new revision,
	// so this delete fails rather than free it.
	if !n.wanted(r) {
		return nil
	}
	err = claims.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
	if err != nil && isWrongRevision(err) {
		return nil
	}
	return err
}

func (n *Node) releasesLeft() int {
	n.relMu.Lock()
	defer n.relMu.Unlock()
	return len(n.releases)
}

func (n *Node) drainReleases(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	for n.releasesLeft() > 0 && n.nc.IsConnected() {
		n.doReleases(ctx)
		if n.releasesLeft() == 0 {
			return
		}
		// What failed is tried again after a pause, until the deadline.
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// ---- chat.Link: publishing ----

// Publish implements chat.Link. Events are appended to the batch being
// built; the publisher sends it as one NATS message.
func (n *Node) Publish(ev *chat.Replicated) {
	if f := n.dropHook.Load(); f != nil && (*f)(ev) {
		return // a test's: the log loses this event
	}
	batchMax, partMax := n.limits()
	n.pubMu.Lock()
	if ev.Kind == chat.KindSync {
		for _, part := range syncParts(ev, partMax) {
			n.appendLocked(part, batchMax)
		}
	} else {
		n.appendLocked(ev, batchMax)
	}
	n.pubMu.Unlock()
	n.m.published.Inc()
	n.wakePublisher()
}

// appendLocked adds ev to the batch being built, or starts the next batch
// with it when the one being built would grow past limit bytes; n.pubMu is
// held. (An event alone may be larger: a chat line is at most --max-line
// bytes, far below any NATS server's max_payload but a tiny one.)
func (n *Node) appendLocked(ev *chat.Replicated, limit int) {
	if n.batch == nil {
		n.batch = appendBatchHeader(make([]byte, 0, 512), n.id, n.opt.Name)
		n.batchHead = len(n.batch)
	}
	mark := len(n.batch)
	n.batch = appendEvent(n.batch, ev)
	if len(n.batch) <= limit || mark == n.batchHead {
		return
	}
	next := appendBatchHeader(make([]byte, 0, max(512, len(n.batch)-mark+n.batchHead)), n.id, n.opt.Name)
	next = append(next, n.batch[mark:]...)
	n.batches = append(n.batches, n.batch[:mark])
	n.batch = next
}

// limits are how big a batch may grow, and one part of a sync event: half
// and a quarter of what the NATS server takes (its max_payload, 1 MB by
// default), at most maxBatchSize and syncPartBytes.
func (n *Node) limits() (batch, part int) {
	p := int(n.payload.Load())
	if p <= 0 {
		p = 1 << 20
	}
	return min(maxBatchSize, p/2), min(syncPartBytes, p/4)
}

// Private implements chat.Link.
func (n *Node) Private(p *chat.Private) {
	n.pubMu.Lock()
	n.privs = append(n.privs, p)
	n.pubMu.Unlock()
	n.wakePublisher()
}

func (n *Node) wakePublisher() {
	select {
	case n.pubWake <- struct{}{}:
	default:
	}
}

// publishGap is the shortest time between two log messages of one node.
// A line that comes after a quiet moment goes out at once; under load the
// events of up to this long travel in one message, which divides the cost
// of the log (per message, not per byte, in nats-server and in the nodes)
// by the batch size.
const publishGap = time.Millisecond

func (n *Node) publishLoop() {
	var last time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.pubWake:
		}
		if d := publishGap - time.Since(last); d > 0 {
			time.Sleep(d)
		}
		last = time.Now()
		n.pubMu.Lock()
		batches := n.batches
		if n.batch != nil {
			batches = append(batches, n.batch)
		}
		n.batch, n.batches = nil, nil
		privs := n.privs
		n.privs = nil
		n.pubMu.Unlock()
		for _, b := range batches {
			if err := n.nc.Publish(EventsSubject, b); err != nil {
				// The events stay pending in the room; the link going
				// down applies them locally.
				go n.Trouble("publish: " + err.Error())
				break
			}
		}
		for _, p := range privs {
			if err := n.nc.Publish(privatePrefix+p.To, encodePrivate(p)); err != nil {
				n.log.Warn("cluster: a private message was lost", "err", err)
				continue
			}
			n.m.privSent.Inc()
		}
	}
}

func (n *Node) onPrivate(msg *nats.Msg) {
	p, err := decodePrivate(msg.Data)
	if err != nil {
		n.log.Warn("cluster: malformed private message ignored", "bytes", len(msg.Data))
		return
	}
	n.m.privReceived.Inc()
	n.room.ReceivePrivate(p)
}

// ---- link state ----

// Trouble implements chat.Link: the link goes down at once (the room
// carries on alone) and is re-established in the background.
func (n *Node) Trouble(reason string) {
	n.mu.Lock()
	was := n.linked
	n.linked = false
	stop := n.stopCons
	n.stopCons = nil
	n.gen.Add(1)
	n.mu.Unlock()
	if stop != nil {
		stop()
	}
	if n.room != nil {
		n.room.LinkDown()
	}
	if was {
		n.log.Warn("cluster: link lost, users stay on this server", "reason", reason)
		n.m.setLinked(false)
		n.m.losses.Inc()
	}
	n.kickResync()
}

func (n *Node) kickResync() {
	select {
	case n.resyncCh <- struct{}{}:
	default:
	}
}

// resyncLoop re-establishes the link whenever it is down, with backoff.
func (n *Node) resyncLoop() {
	backoff := 250 * time.Millisecond
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.resyncCh:
		case <-time.After(backoff):
		}
		if n.Linked() || !n.nc.IsConnected() {
			continue
		}
		if err := n.resync(n.ctx); err != nil {
			n.log.Info("cluster: link not re-established yet", "err", err, "retry_in", backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 250 * time.Millisecond
	}
}

// resync loads the cluster's state and links the room: the stream and
// buckets are made sure of, the claims read, the log's last messages read
// (the window), this node's users' claims re-made, and then the room is
// linked and the log applied from there on.
func (n *Node) resync(ctx context.Context) error {
	gen := n.gen.Load()
	ctx, cancel := context.WithTimeout(ctx, 4*opTimeout)
	defer cancel()
	if err := n.ensure(ctx); err != nil {
		return err
	}
	if err := n.heartbeat(ctx); err != nil {
		return err
	}
	n.payload.Store(n.nc.MaxPayload())
	if err := n.checkPayload(); err != nil {
		// Another server of the NATS cluster than at start: the link
		// comes up all the same, lines that fit still travel.
		n.log.Error("cluster: "+err.Error(), "server", n.nc.ConnectedUrlRedacted())
	}
	// Listen to the live tail first, then ask where the log ends: what
	// comes live after that point is applied after the window.
	live, err := n.nc.SubscribeSync(LiveSubject)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = live.Unsubscribe()
		}
	}()
	// A node that falls this far behind drops messages, sees the gap and
	// reloads; it never slows the other nodes down.
	_ = live.SetPendingLimits(-1, 256<<20)
	if err := n.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	claimsKV, _, stream := n.kv()
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	last, first := info.State.LastSeq, info.State.FirstSeq
	// The claims of users who left or were renamed while the link was
	// down go first: a user who came back under the same nickname
	// meanwhile would otherwise find it held (by their old self) and be
	// renamed as if somebody else had taken it.
	n.doReleases(ctx)
	snap, err := n.readClaims(ctx, claimsKV)
	if err != nil {
		return err
	}
	snap.Seq = last

	// A sync still incomplete at the window's end completes in the
	// live tail: the apply loop goes on with this assembler.
	syncs := syncAssembler{}
	start := first
	if last >= windowMsgs && last-windowMsgs+1 > start {
		start = last - windowMsgs + 1
	}
	if start == 0 {
		start = 1
	}
	// The window: everything up to last, applied without notices.
	if info.State.Msgs > 0 && last >= start {
		cons, err := n.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   start,
		})
		if err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(1024))
		if err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		defer it.Stop()
		for {
			msg, err := it.Next(jetstream.NextMaxWait(opTimeout))
			if err != nil {
				return fmt.Errorf("reading the log: %w", err)
			}
			md, err := msg.Metadata()
			if err != nil {
				return err
			}
			if evs, err := decodeBatch(msg.Data()); err == nil {
				snap.Window = append(snap.Window, syncs.assemble(evs)...)
			}
			if md.Sequence.Stream >= last || md.NumPending == 0 {
				break
			}
		}
	}

	// Local users whose claims are missing: claim them again, renaming
	// those whose nickname somebody else took meanwhile.
	for range 5 {
		for _, m := range n.room.LocalMembers() {
			if c, ok := snap.Claims[m.Fold]; ok && c.Node == n.id && c.ID == m.ID {
				continue
			}
			if err := n.reclaim(ctx, m, snap); err != nil {
				return err
			}
		}
		n.applyMu.Lock()
		if n.gen.Load() != gen {
			n.applyMu.Unlock()
			return errors.New("link lost while loading")
		}
		unclaimed := n.room.LinkUp(snap)
		if len(unclaimed) == 0 {
			n.mu.Lock()
			if n.gen.Load() != gen {
				// Trouble came during LinkUp: its LinkDown may have run
				// before LinkUp relinked the room. Down again, and the
				// loop tries anew (Trouble kicked it).
				n.mu.Unlock()
				n.applyMu.Unlock()
				n.room.LinkDown()
				return errors.New("link lost while linking")
			}
			n.linked = true
			n.since = time.Now()
			n.stopCons = func() { _ = live.Unsubscribe() }
			n.mu.Unlock()
			n.applyMu.Unlock()
			ok = true
			n.seenMu.Lock()
			for k, s := range n.seen {
				s.at = time.Now()
				n.seen[k] = s
			}
			n.seenMu.Unlock()
			n.m.setLinked(true)
			n.log.Info("cluster: linked", "node", n.opt.Name, "id", n.id,
				"online", n.room.Online(), "log_seq", last)
			n.goLoop(func() { n.applyLoop(live, last, gen, syncs) })
			n.doReleases(ctx)
			return nil
		}
		n.applyMu.Unlock()
	}
	return errors.New("local users keep changing while claiming their nicknames")
}

// reclaim re-makes local user m's claim, or renames m if somebody else
// holds the nickname now.
func (n *Node) reclaim(ctx context.Context, m chat.Member, snap *chat.Snapshot) error {
	err := n.claim(ctx, m.Fold, m.Nick, m.ID)
	if err == nil {
		snap.Claims[m.Fold] = chat.Member{Node: n.id, ID: m.ID, Nick: m.Nick, Fold: m.Fold}
		return nil
	}
	if !errors.Is(err, chat.ErrClaimTaken) {
		return err
	}
	for i := 2; i < 100; i++ {
		suffix := "-" + strconv.Itoa(i)
		base := []rune(m.Nick)
		if len(base)+len(suffix) > chat.MaxNickLen {
			base = base[:chat.MaxNickLen-len(suffix)]
		}
		alt := string(base) + suffix
		fold, ferr := chat.FoldNick(alt)
		if ferr != nil {
			continue
		}
		if _, taken := snap.Claims[fold]; taken {
			continue
		}
		switch err := n.claim(ctx, fold, alt, m.ID); {
		case err == nil:
			n.log.Info("cluster: nickname taken elsewhere during the link loss; user renamed", "nick", m.Nick, "new", alt)
			n.room.ForceRename(m.ID, alt, fold)
			snap.Claims[fold] = chat.Member{Node: n.id, ID: m.ID, Nick: alt, Fold: fold}
			return nil
		case errors.Is(err, chat.ErrClaimTaken):
			continue
		default:
			return err
		}
	}
	return fmt.Errorf("no free nickname for %s", m.Nick)
}

// readClaims reads the whole claims bucket.
func (n *Node) readClaims(ctx context.Context, kv jetstream.KeyValue) (*chat.Snapshot, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("reading claims: %w", err)
	}
	defer w.Stop()
	snap := &chat.Snapshot{Claims: make(map[string]chat.Member)}
	type user struct {
		node string
		id   uint64
	}
	seen := make(map[user]string) // fold of the user's latest claim
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reading claims: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("reading claims: watcher closed")
			}
			if e == nil {
				return snap, nil
			}
			fold, ok := foldOfKey(e.Key())
			c, cok := decodeClaim(e.Value())
			if !ok || !cok {
				continue
			}
			// Another node's user may briefly hold two names (a rename
			// in flight). The watcher gives claims in the order they
			// were made: the later one is the current name (it is made
			// before the rename is published), the earlier is dropped.
			if u := (user{c.Node, c.User}); c.Node != n.id {
				if prev, ok := seen[u]; ok {
					delete(snap.Claims, prev)
				}
				seen[u] = fold
			}
			snap.Claims[fold] = chat.Member{Node: c.Node, ID: c.User, Nick: c.Nick, Fold: fold}
		}
	}
}

// applyLoop applies the log's live tail to the room, from after position
// applied, until the link goes down. Republished messages can arrive out of
// order (nats-server 2.9 republishes concurrent publications in either
// order): each names its predecessor, so they are put back in order. A gap
// that does not fill within gapWait (a message the subscription dropped)
// takes the link down: the room reloads the state rather than miss an event.
func (n *Node) applyLoop(live *nats.Subscription, applied, gen uint64, syncs syncAssembler) {
	early := make(map[uint64]*nats.Msg) // by predecessor
	var gapSince time.Time
	for {
		ctx, cancel := n.ctx, context.CancelFunc(func() {})
		if len(early) > 0 {
			ctx, cancel = context.WithDeadline(n.ctx, gapSince.Add(gapWait))
		}
		msg, err := live.NextMsgWithContext(ctx)
		cancel()
		if err != nil {
			if n.gen.Load() != gen || n.ctx.Err() != nil {
				return
			}
			if len(early) > 0 && errors.Is(err, context.DeadlineExceeded) {
				n.Trouble(fmt.Sprintf("log message %d never came", applied+1))
			} else {
				n.Trouble("reading the log: " + err.Error())
			}
			return
		}
		seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil || seq == 0 {
			n.log.Warn("cluster: log message without a sequence number skipped")
			continue
		}
		if seq <= applied {
			continue // in the window already
		}
		prev, err := strconv.ParseUint(msg.Header.Get("Nats-Last-Sequence"), 10, 64)
		if err != nil {
			prev = seq - 1
		}
		if prev > applied {
			if len(early) == 0 {
				gapSince = time.Now()
			}
			early[prev] = msg
			continue
		}
		for msg != nil {
			if !n.applyMsg(msg, seq, gen, syncs) {
				return
			}
			applied = seq
			msg = early[applied]
			delete(early, applied)
			if msg != nil {
				seq, _ = strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
			}
		}
		if len(early) > 0 {
			gapSince = time.Now()
		}
	}
}

// gapWait is how long a node waits for a log message that is missing.
const gapWait = 2 * time.Second

// applyMsg applies one log message; false if the link went down meanwhile.
func (n *Node) applyMsg(msg *nats.Msg, seq, gen uint64, syncs syncAssembler) bool {
	evs, err := decodeBatch(msg.Data)
	if err != nil {
		n.log.Warn("cluster: malformed log message skipped", "seq", seq)
		return true
	}
	n.m.received.Add(float64(len(evs)))
	evs = syncs.assemble(evs)
	n.applyMu.Lock()
	defer n.applyMu.Unlock()
	if n.gen.Load() != gen {
		return false
	}
	n.room.Apply(seq, evs)
	return true
}

// watchdog takes the link down when this node's own events do not come
// back from the log in time (NATS stuck without a disconnect), and lets
// private messages through that wait for log positions that never come.
func (n *Node) watchdog() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.Linked() {
			if since := n.room.PendingSince(); !since.IsZero() && time.Since(since) > 2*time.Second {
				n.Trouble("no answer from the cluster for " + time.Since(since).Round(time.Millisecond).String())
			}
		}
		n.room.ReleaseHeld(heldMax)
	}
}

// ---- heartbeats and dead nodes ----

type nodeInfo struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
	// Format is the version of the log's format the node speaks
	// (formatVersion); absent (0) from nodes older than version 2.
	Format int `json:"format,omitempty"`
	// TTLMillis is the node's --cluster-node-ttl: it heartbeats at a
	// quarter of it, and the others judge it by the longer of theirs and
	// this (the flag may differ between nodes, e.g. while it is changed).
	TTLMillis int64 `json:"ttl_ms,omitempty"`
}

func (n *Node) heartbeat(ctx context.Context) error {
	_, nodes, _ := n.kv()
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b, _ := json.Marshal(nodeInfo{Name: n.opt.Name, Started: time.Now(), Format: formatVersion, TTLMillis: n.opt.NodeTTL.Milliseconds()})
	rev, err := nodes.Put(ctx, n.id, b)
	if err == nil {
		n.seenMu.Lock()
		n.hbRev = rev
		n.seenMu.Unlock()
	}
	return err
}

func (n *Node) heartbeatLoop() {
	t := time.NewTicker(n.opt.NodeTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if !n.nc.IsConnected() {
			continue
		}
		if err := n.heartbeat(n.ctx); err != nil && n.ctx.Err() == nil {
			n.log.Debug("cluster: heartbeat failed", "err", err)
		}
	}
}

// watchNodes follows the heartbeats and takes nodes silent for 3/4 of
// NodeTTL for dead.
func (n *Node) watchNodes() {
	check := time.NewTicker(max(n.opt.NodeTTL/16, 50*time.Millisecond))
	defer check.Stop()
	open := func() (jetstream.KeyWatcher, error) {
		_, nodes, _ := n.kv()
		return nodes.WatchAll(n.ctx)
	}
	n.follow(open, check.C, n.findDead, func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			n.seenMu.Lock()
			delete(n.seen, e.Key())
			n.seenMu.Unlock()
			return
		}
		var info nodeInfo
		if err := json.Unmarshal(e.Value(), &info); err != nil {
			info.Format = -1 // not a heartbeat this version can read
		}
		n.seenMu.Lock()
		prev, known := n.seen[e.Key()]
		n.seen[e.Key()] = seenNode{at: time.Now(), rev: e.Revision(), format: info.Format,
			ttl: time.Duration(info.TTLMillis) * time.Millisecond}
		n.seenMu.Unlock()
		if info.Format != formatVersion && (!known || prev.format != info.Format) {
			n.log.Error("cluster: a node runs another netchat version, whose log format differs; "+
				"all nodes of a cluster must run the same version (docs/PROTOCOL.md)",
				"node", info.Name, "its_format", info.Format, "format", formatVersion)
		}
	})
}

// otherVersions counts the live nodes whose log format is not this one's.
func (n *Node) otherVersions() int {
	n.seenMu.Lock()
	defer n.seenMu.Unlock()
	c := 0
	for _, s := range n.seen {
		if s.format != formatVersion {
			c++
		}
	}
	return c
}

// follow hands each update of a key-value watcher to onEntry and calls
// onTick on every tick, until the node stops. The watcher is opened while
// the link is up and opened again after it ended (a lost link ends it);
// the ticks are also when that is retried.
func (n *Node) follow(open func() (jetstream.KeyWatcher, error), tick <-chan time.Time, onTick func(), onEntry func(jetstream.KeyValueEntry)) {
	var w jetstream.KeyWatcher
	defer func() {
		if w != nil {
			_ = w.Stop()
		}
	}()
	for {
		if w == nil && n.nc.IsConnected() {
			var err error
			if w, err = open(); err != nil {
				w = nil
			}
		}
		var updates <-chan jetstream.KeyValueEntry
		if w != nil {
			updates = w.Updates()
		}
		select {
		case <-n.ctx.Done():
			return
		case <-tick:
			if onTick != nil {
				onTick()
			}
		case e, ok := <-updates:
			if !ok {
				w = nil
			} else if e != nil {
				onEntry(e)
			}
		}
	}
}

func (n *Node) findDead() {
	n.mu.Lock()
	linked, since := n.linked, n.since
	n.mu.Unlock()
	own := n.opt.NodeTTL * 3 / 4
	if !linked || time.Since(since) < own {
		return // this node's view is too fresh, or stale itself
	}
	n.seenMu.Lock()
	var dead []string
	for id, s := range n.seen {
		limit := max(n.opt.NodeTTL, s.ttl) * 3 / 4
		if id != n.id && time.Since(s.at) > limit && time.Since(since) > limit && !n.cleaning[id] {
			n.cleaning[id] = true
			dead = append(dead, id)
		}
	}
	n.seenMu.Unlock()
	for _, id := range dead {
		n.goLoop(func() { n.cleanup(id) })
	}
}

// cleanup announces node id gone and frees its nicknames. Several
// survivors may do it at once: the second gone event is a no-op in the
// log, and the conditional deletes let only one of them free each claim.
func (n *Node) cleanup(id string) {
	defer func() {
		n.seenMu.Lock()
		delete(n.cleaning, id)
		n.seenMu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(n.ctx, 4*opTimeout)
	defer cancel()
	claimsKV, nodes, _ := n.kv()
	e, err := nodes.Get(ctx, id)
	n.seenMu.Lock()
	s, known := n.seen[id]
	n.seenMu.Unlock()
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		// Removed: it left, or another survivor cleaned up already.
		n.seenMu.Lock()
		delete(n.seen, id)
		n.seenMu.Unlock()
		return
	case err != nil:
		return
	case !known || e.Revision() != s.rev:
		return // it is alive after all
	}
	name := id
	var ni nodeInfo
	if json.Unmarshal(e.Value(), &ni) == nil && ni.Name != "" {
		name = ni.Name
	}
	n.log.Warn("cluster: node silent, taking it for dead", "node", name, "id", id,
		"silent_for", time.Since(s.at).Round(time.Millisecond))
	if !n.announceGone(ctx, id) {
		n.retryLater(id)
		return
	}
	// Its nicknames are free only now that everybody was told it left.
	freed, err := n.freeClaimsOf(ctx, claimsKV, id)
	if err != nil {
		// Its heartbeat stays: this node (or another) tries again.
		n.log.Debug("cluster: freeing a dead node's nicknames failed", "err", err)
		n.retryLater(id)
		return
	}
	if err := nodes.Delete(ctx, id, jetstream.LastRevision(e.Revision())); err != nil && !isWrongRevision(err) {
		n.log.Debug("cluster: removing a dead node's heartbeat failed", "err", err)
	}
	n.seenMu.Lock()
	delete(n.seen, id)
	n.seenMu.Unlock()
	n.log.Info("cluster: dead node's users removed", "node", name, "nicknames_freed", freed)
}

// retryLater puts off the next cleanup of node id by as long as it takes
// to judge a node dead, rather than the next tick of findDead.
func (n *Node) retryLater(id string) {
	n.seenMu.Lock()
	defer n.seenMu.Unlock()
	if s, ok := n.seen[id]; ok {
		s.at = time.Now()
		n.seen[id] = s
	}
}

// announceGone publishes that node id is gone and waits until the event is
// applied here; false if it may not have reached the log (the link went
// down meanwhile, which applies it here alone) or the wait ended first.
func (n *Node) announceGone(ctx context.Context, id string) bool {
	// Trouble marks the link down and counts a generation under n.mu
	// before it tells the room: read both there.
	n.mu.Lock()
	gen, linked := n.gen.Load(), n.linked
	n.mu.Unlock()
	if !linked {
		return false
	}
	done := n.room.AnnounceGone(id)
	if done == nil {
		return false
	}
	select {
	case <-done:
	case <-ctx.Done():
		return false
	}
	return n.gen.Load() == gen
}

// freeClaimsOf deletes the claims held by node id; how many, and an error
// if one could not be deleted.
func (n *Node) freeClaimsOf(ctx context.Context, claimsKV jetstream.KeyValue, id string) (int, error) {
	w, err := claimsKV.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return 0, err
	}
	defer func() { _ = w.Stop() }()
	type victim struct {
		key string
		rev uint64
	}
	var victims []victim
collect:
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok || e == nil {
				break collect
			}
			if c, ok := decodeClaim(e.Value()); ok && c.Node == id {
				victims = append(victims, victim{e.Key(), e.Revision()})
			}
		}
	}
	for _, v := range victims {
		if err := claimsKV.Delete(ctx, v.key, jetstream.LastRevision(v.rev)); err != nil && !isWrongRevision(err) {
			return 0, err
		}
	}
	return len(victims), nil
}

// watchClaims keeps this node's users' claims in place: a claim of a
// local user that disappears (another node took this one for dead while it
// was cut off) is made again at once, or, if somebody else took the name
// meanwhile, the link is re-established, which renames the user.
func (n *Node) watchClaims() {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	open := func() (jetstream.KeyWatcher, error) {
		claims, _, _ := n.kv()
		return claims.WatchAll(n.ctx, jetstream.UpdatesOnly())
	}
	n.follow(open, retry.C, nil, func(e jetstream.KeyValueEntry) {
		if e.Operation() == jetstream.KeyValuePut {
			return
		}
		fold, ok := foldOfKey(e.Key())
		if !ok {
			return
		}
		id, ok := n.room.LocalHolder(fold)
		if !ok || !n.Linked() || n.closing.Load() {
			return // (a closing node frees its users' claims itself)
		}
		nick := fold
		for _, m := range n.room.LocalMembers() {
			if m.ID == id {
				nick = m.Nick
			}
		}
		ctx, cancel := context.WithTimeout(n.ctx, opTimeout)
		err := n.claim(ctx, fold, nick, id)
		cancel()
		if err != nil {
			n.Trouble("a local user's nickname claim was removed: " + err.Error())
			return
		}
		// The event may be late (this node's own release of a name its
		// user has taken back since), and the user may have moved off the
		// name meanwhile, its release already done: then this claim goes.
		if now, ok := n.room.LocalHolder(fold); !ok || now != id {
			n.Release(fold, id)
		}
	})
}
