package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"netchat/internal/chat"
)

// The wire format of the log and of private messages. Compact and binary:
// at saturation every chat line is encoded once and decoded once per node.
//
// A log message is a batch of events from one node (the publisher sends
// whatever queued up while it was busy as one NATS message):
//
//	"NC" 1 | str node-id | str node-name | event*
//	event := kind:byte | uvarint seq | varint unix-nanos | uvarint user |
//	         str nick | str fold | str text | uvarint n | (uvarint id | str nick | str fold){n}
//
// A sync event (a node's whole list of users) travels in parts, so that no
// message outgrows what NATS carries (1 MB by default; 19,000 users with
// long non-ASCII nicknames take 3 MB): in each part, user is the part's
// index (0, 1, ...) and text is "more" unless it is the last one. The
// receiving node puts them back together (syncAssembler) before the room
// sees the event.
//
// A private message:
//
//	"NP" 1 | str from-node | uvarint gate | uvarint sender | str sender-nick |
//	         uvarint target | str text
//
// str is a uvarint length and that many bytes.

// formatVersion is the version of the format above, which each node
// announces in its heartbeat (nodeInfo.Format): 2 sends a sync in parts;
// a node of version 1 (no Format) would take each part for the whole
// list. The nodes of other versions are logged and counted, not refused:
// the batch header keeps its 1, so that one old node during an upgrade
// misreads only syncs instead of every message.
const formatVersion = 2

var errBadMessage = errors.New("malformed cluster message")

var kindCodes = map[string]byte{
	chat.KindJoin: 1, chat.KindLeave: 2, chat.KindNick: 3, chat.KindMsg: 4,
	chat.KindMe: 5, chat.KindSync: 6, chat.KindGone: 7,
}

var kindNames = [...]string{"", chat.KindJoin, chat.KindLeave, chat.KindNick, chat.KindMsg,
	chat.KindMe, chat.KindSync, chat.KindGone}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendBatchHeader starts a batch from node id (name).
func appendBatchHeader(b []byte, id, name string) []byte {
	b = append(b, 'N', 'C', 1)
	b = appendStr(b, id)
	return appendStr(b, name)
}

// lineBatchBound bounds the size of a batch from node id (name) that holds
// one chat line of maxLine bytes: the header, and one event with its
// nickname, folded nickname and text.
func lineBatchBound(maxLine int, id, name string) int {
	header := 3 + 2*binary.MaxVarintLen64 + len(id) + len(name)
	// A fold may be longer than its nickname (lower case of a few
	// letters is longer in UTF-8): 3× the longest nickname is ample.
	nicks := 2 * (binary.MaxVarintLen64 + 3*4*chat.MaxNickLen)
	event := 1 + 4*binary.MaxVarintLen64 + nicks + binary.MaxVarintLen64 + maxLine
	return header + event
}

// appendEvent adds one event to a batch.
func appendEvent(b []byte, ev *chat.Replicated) []byte {
	b = append(b, kindCodes[ev.Kind])
	b = binary.AppendUvarint(b, ev.Seq)
	b = binary.AppendVarint(b, ev.Time.UnixNano())
	b = binary.AppendUvarint(b, ev.User)
	b = appendStr(b, ev.Nick)
	b = appendStr(b, ev.Fold)
	b = appendStr(b, ev.Text)
	b = binary.AppendUvarint(b, uint64(len(ev.Users)))
	for _, m := range ev.Users {
		b = binary.AppendUvarint(b, m.ID)
		b = appendStr(b, m.Nick)
		b = appendStr(b, m.Fold)
	}
	return b
}

// syncMore marks a part of a sync event that more parts follow.
const syncMore = "more"

// memberSize bounds the encoded size of m in a sync event.
func memberSize(m *chat.Member) int {
	return 2*binary.MaxVarintLen64 + len(m.Nick) + len(m.Fold) + binary.MaxVarintLen64
}

// syncParts splits a sync event into parts of at most about limit bytes
// each (at least one user each), numbered as the wire format says. Any
// other event comes back alone.
func syncParts(ev *chat.Replicated, limit int) []*chat.Replicated {
	if ev.Kind != chat.KindSync {
		return []*chat.Replicated{ev}
	}
	var parts []*chat.Replicated
	users := ev.Users
	for {
		size, n := 0, 0
		for n < len(users) && (n == 0 || size+memberSize(&users[n]) <= limit) {
			size += memberSize(&users[n])
			n++
		}
		part := *ev
		part.User, part.Text, part.Users = uint64(len(parts)), syncMore, users[:n:n]
		parts = append(parts, &part)
		users = users[n:]
		if len(users) == 0 {
			part.Text = ""
			return parts
		}
	}
}

// syncAssembler puts the parts of sync events back together, one sync per
// node at a time. A part whose predecessors it has not seen (the log's
// window began in the middle of a sync, or its node died while sending
// it) makes it skip that sync: the claims the node starts from already
// list those users.
type syncAssembler map[string]*chat.Replicated

// add takes one event of the log in order and returns the events the room
// should apply: ev itself, nothing (an incomplete sync), or the whole sync
// once its last part came.
func (a syncAssembler) add(ev chat.Replicated) (chat.Replicated, bool) {
	switch ev.Kind {
	case chat.KindGone:
		delete(a, ev.Text)
		return ev, true
	case chat.KindSync:
	default:
		return ev, true
	}
	cur := a[ev.Node]
	switch {
	case ev.User == 0:
		whole := ev
		whole.Users = slices.Clip(ev.Users)
		cur = &whole
	case cur != nil && cur.User+1 == ev.User && cur.Seq == ev.Seq:
		cur.Users = append(cur.Users, ev.Users...)
		cur.User = ev.User
	default:
		delete(a, ev.Node)
		return chat.Replicated{}, false
	}
	if ev.Text == syncMore {
		a[ev.Node] = cur
		return chat.Replicated{}, false
	}
	delete(a, ev.Node)
	whole := *cur
	whole.User, whole.Text = 0, ""
	return whole, true
}

// assemble filters a decoded batch through a: what the room should apply.
func (a syncAssembler) assemble(evs []chat.Replicated) []chat.Replicated {
	out := evs[:0]
	for _, ev := range evs {
		if ev, ok := a.add(ev); ok {
			out = append(out, ev)
		}
	}
	return out
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadMessage
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errBadMessage
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errBadMessage
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errBadMessage
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) magic(a, b byte) {
	if len(r.b) < 3 || r.b[0] != a || r.b[1] != b || r.b[2] != 1 {
		r.err = errBadMessage
		return
	}
	r.b = r.b[3:]
}

// decodeBatch parses a log message. It never panics on any input and
// accepts nothing it could not have encoded (unknown kinds, trailing junk).
func decodeBatch(data []byte) ([]chat.Replicated, error) {
	r := &reader{b: data}
	r.magic('N', 'C')
	node := r.str()
	name := r.str()
	var evs []chat.Replicated
	for r.err == nil && len(r.b) > 0 {
		code := r.byte()
		if r.err == nil && (code == 0 || int(code) >= len(kindNames)) {
			r.err = errBadMessage
		}
		ev := chat.Replicated{Node: node, NodeName: name, Kind: kindNames[code%byte(len(kindNames))]}
		ev.Seq = r.uvarint()
		ev.Time = time.Unix(0, r.varint())
		ev.User = r.uvarint()
		ev.Nick = r.str()
		ev.Fold = r.str()
		ev.Text = r.str()
		n := r.uvarint()
		// Each member takes at least 3 bytes: a bound before allocating.
		if r.err == nil && n > uint64(len(r.b))/3 {
			r.err = errBadMessage
		}
		if r.err == nil && n > 0 {
			ev.Users = make([]chat.Member, 0, n)
			for range n {
				m := chat.Member{Node: node, ID: r.uvarint()}
				m.Nick = r.str()
				m.Fold = r.str()
				ev.Users = append(ev.Users, m)
			}
		}
		evs = append(evs, ev)
	}
	if r.err != nil {
		return nil, r.err
	}
	return evs, nil
}

func encodePrivate(p *chat.Private) []byte {
	b := make([]byte, 0, 32+len(p.From)+len(p.SenderNick)+len(p.Text))
	b = append(b, 'N', 'P', 1)
	b = appendStr(b, p.From)
	b = binary.AppendUvarint(b, p.Gate)
	b = binary.AppendUvarint(b, p.Sender)
	b = appendStr(b, p.SenderNick)
	b = binary.AppendUvarint(b, p.Target)
	return appendStr(b, p.Text)
}

func decodePrivate(data []byte) (*chat.Private, error) {
	r := &reader{b: data}
	r.magic('N', 'P')
	p := &chat.Private{}
	p.From = r.str()
	p.Gate = r.uvarint()
	p.Sender = r.uvarint()
	p.SenderNick = r.str()
	p.Target = r.uvarint()
	p.Text = r.str()
	if r.err == nil && len(r.b) > 0 {
		r.err = errBadMessage
	}
	if r.err != nil {
		return nil, r.err
	}
	return p, nil
}

// claim is the value of a nickname's key in the claims bucket.
type claim struct {
	Node string `json:"node"`
	User uint64 `json:"user"`
	Nick string `json:"nick"`
}

func encodeClaim(node string, id uint64, nick string) []byte {
	b, _ := json.Marshal(claim{Node: node, User: id, Nick: nick})
	return b
}

// decodeClaim reads a claim; one it cannot read belongs to nobody we know.
func decodeClaim(b []byte) (claim, bool) {
	var c claim
	if json.Unmarshal(b, &c) != nil || c.Node == "" {
		return claim{}, false
	}
	return c, true
}
