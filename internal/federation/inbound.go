package federation

import (
	"sync"

	"liaison/internal/message"
)

// inbound keeps the partially received messages from one peer, across
// sessions, so that an interrupted transfer resumes where it stopped. It
// lives in memory: a receiver restart makes the sender start over, which
// costs bytes but never correctness (custody is acknowledged only after
// Inbox.Accept).
type inbound struct {
	max int

	mu    sync.Mutex // guards below
	parts map[message.ID]*partial
	clock uint64 // for least-recently-used eviction
}

type partial struct {
	tag   Tag
	total uint64
	buf   []byte
	used  uint64
}

func newInbound(max int) *inbound {
	return &inbound{max: max, parts: map[message.ID]*partial{}}
}

func (in *inbound) count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.parts)
}

// resume lists what a new session's HELLO reports.
func (in *inbound) resume() []Resume {
	in.mu.Lock()
	defer in.mu.Unlock()
	var rs []Resume
	for id, p := range in.parts {
		if len(rs) == MaxResume {
			break
		}
		rs = append(rs, Resume{ID: id, Tag: p.tag, Offset: uint64(len(p.buf))})
	}
	return rs
}

// add stores one fragment. It returns the whole message when d completes
// it; otherwise the offset the receiver now holds, and rewind=true when the
// sender must resend from that offset (a gap or a different wire version).
func (in *inbound) add(d *Data) (whole []byte, have uint64, rewind bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.clock++
	p := in.parts[d.ID]
	if p != nil && (p.tag != d.Tag || p.total != d.Total) {
		delete(in.parts, d.ID)
		p = nil
	}
	if p == nil {
		if d.Offset != 0 {
			return nil, 0, true
		}
		if uint64(len(d.Chunk)) == d.Total { // single fragment: no partial state
			return append([]byte(nil), d.Chunk...), d.Total, false
		}
		in.evict()
		p = &partial{tag: d.Tag, total: d.Total, buf: make([]byte, 0, min(d.Total, 1<<20))}
		in.parts[d.ID] = p
	}
	p.used = in.clock
	have = uint64(len(p.buf))
	end := d.Offset + uint64(len(d.Chunk))
	switch {
	case d.Offset > have:
		return nil, have, true
	case end <= have: // a repeat
	default:
		p.buf = append(p.buf, d.Chunk[have-d.Offset:]...)
	}
	have = uint64(len(p.buf))
	if have == p.total {
		delete(in.parts, d.ID)
		return p.buf, have, false
	}
	return nil, have, false
}

// drop forgets a partial (after its message could not be used).
func (in *inbound) drop(id message.ID) {
	in.mu.Lock()
	delete(in.parts, id)
	in.mu.Unlock()
}

// evict makes room for one more partial; in.mu is held.
func (in *inbound) evict() {
	for len(in.parts) >= in.max {
		var old message.ID
		var oldest uint64 = ^uint64(0)
		for id, p := range in.parts {
			if p.used < oldest {
				old, oldest = id, p.used
			}
		}
		delete(in.parts, old)
	}
}
