package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"liaison/internal/message"
	"liaison/internal/store"
)

// tail is the recent history of every channel in memory, so that live
// subscribers read new messages without a store query each. The store
// stays the truth: a subscriber reads from the tail only the seqs the
// tail is sure it holds, and catches up from store.History otherwise.
//
// History seqs come from one counter that is updated in the Accept
// transaction, so the committed seqs are gap-free and commit in seq
// order. Accepts return out of seq order across goroutines, though, so
// the tail keeps entries published above a hole pending and advances its
// watermark w only through contiguous seqs: every seq in [base, w] is
// committed and held here. A subscriber that has seen everything of its
// channel up to pos >= base-1 can take (pos, w] from memory and never
// passes over a seq committed but not yet published.
//
// The tail learns where it stands without asking the store: after a start
// or a failed Accept (which may or may not have committed) it is not
// synced; it takes the first seq published after that, p, that is above
// every seq published before (those may have been dropped with the old
// window: an Accept can return after a later one), and waits until every
// Accept that was in flight then has returned. No seq below p can
// appear after that, so the contiguous run of published seqs ending at p
// starts the window. Only Accepts through this process's store are
// published: on PostgreSQL, where other instances commit too, the node
// does not use the tail (see withTail).
type tail struct {
	max      int     // entries kept; older ones are read from the store
	maxBytes int     // bytes of messages kept, in the window and pending
	wake     *signal // fired when anything is published

	mu      sync.RWMutex
	synced  bool
	base    uint64      // seq of entries[0] (when synced)
	entries []tailEntry // seqs base, base+1, ..., w
	pending map[uint64]tailEntry
	bytes   int       // size of the messages in entries and pending
	moved   time.Time // when w last advanced (or pending became non-empty)

	// In-flight Accepts by generation, to know when every Accept that
	// was in flight at the barrier has returned.
	gen      uint64
	cur, old int
	draining bool
	barrier  uint64 // first seq published since the tail last lost sync
	// maxSeen is the highest seq ever published; floor is maxSeen when
	// the tail last lost sync. Entries up to floor may have been
	// published and dropped with the window, so a barrier and the window
	// after it must lie above floor.
	maxSeen, floor uint64
}

type tailEntry struct {
	seq  uint64
	msg  *message.Message
	size int
}

func newTail(max, maxBytes int) *tail {
	return &tail{max: max, maxBytes: maxBytes, wake: newSignal(), pending: map[uint64]tailEntry{}}
}

// w is the watermark (with the lock held): the last seq held.
func (t *tail) w() uint64 { return t.base + uint64(len(t.entries)) - 1 }

// begin notes an Accept starting; end must follow with its generation.
func (t *tail) begin() uint64 { return t.beginN(1) }

// beginN notes k Accepts starting (a batch of k messages); end must follow
// for each of them with the generation.
func (t *tail) beginN(k int) uint64 {
	t.mu.Lock()
	g := t.gen
	t.cur += k
	t.mu.Unlock()
	return g
}

// end notes an Accept's outcome and publishes an accepted message.
func (t *tail) end(g, seq uint64, dup bool, err error, m *message.Message) {
	e, publish := entryOf(seq, dup, err, m)
	t.mu.Lock()
	t.endLocked(g, e, publish, err)
	t.mu.Unlock()
	if publish {
		t.wake.fire()
	}
}

// endBatch notes the outcome of a batch begun with beginN(len(items)):
// one end per item, in slice order (the order of their seqs). If the batch
// failed, err applies to every item.
func (t *tail) endBatch(g uint64, items []store.AcceptItem, res []store.AcceptResult, err error) {
	es := make([]tailEntry, len(items))
	pub := make([]bool, len(items))
	fired := false
	for i, it := range items {
		var r store.AcceptResult
		if err == nil && i < len(res) {
			r = res[i]
		}
		es[i], pub[i] = entryOf(r.Seq, r.Dup, err, it.Msg)
		fired = fired || pub[i]
	}
	t.mu.Lock()
	for i := range items {
		t.endLocked(g, es[i], pub[i], err)
	}
	t.mu.Unlock()
	if fired {
		t.wake.fire()
	}
}

// entryOf returns the entry an Accept's outcome publishes, if any.
func entryOf(seq uint64, dup bool, err error, m *message.Message) (tailEntry, bool) {
	if err != nil || dup || seq == 0 {
		return tailEntry{}, false
	}
	e := tailEntry{seq: seq, msg: frozen(m)}
	e.size = len(e.msg.Label) + len(e.msg.Body)
	for _, a := range e.msg.Alternatives {
		e.size += len(a)
	}
	return e, true
}

// endLocked is end with the lock held.
func (t *tail) endLocked(g uint64, e tailEntry, publish bool, err error) {
	seq := e.seq
	if g == t.gen {
		t.cur--
	} else {
		t.old--
	}
	if publish {
		t.maxSeen = max(t.maxSeen, seq)
	}
	switch {
	case err != nil:
		// It may have committed: nothing can be trusted until resynced.
		t.lose()
	case publish && t.synced:
		if seq > t.w() {
			t.pend(e)
		}
	case publish && t.draining:
		if seq > t.floor {
			t.pend(e)
		}
	case publish && seq > t.floor:
		// The first publish since the tail lost sync: the barrier.
		t.barrier, t.draining = seq, true
		t.pend(e)
		t.gen++
		t.old += t.cur
		t.cur = 0
	}
	if t.draining && t.old == 0 {
		t.sync()
	}
	if t.synced {
		t.advance()
	}
	if len(t.pending) > t.max || t.bytes > t.maxBytes {
		t.lose() // a hole that does not fill: read from the store
	}
}

func (t *tail) pend(e tailEntry) {
	if len(t.pending) == 0 {
		t.moved = time.Now() // a hole may open now
	}
	t.pending[e.seq] = e
	t.bytes += e.size
}

// lose drops the window (with the lock held).
func (t *tail) lose() {
	t.synced, t.draining = false, false
	t.floor = t.maxSeen
	t.entries = nil
	clear(t.pending)
	t.bytes = 0
}

// sync starts the window at the run of published seqs ending at the
// barrier (with the lock held). Every Accept that could take a seq below
// the barrier has returned.
func (t *tail) sync() {
	b := t.barrier
	for {
		if _, ok := t.pending[b-1]; !ok {
			break
		}
		b--
	}
	for s, e := range t.pending {
		if s < b {
			delete(t.pending, s)
			t.bytes -= e.size
		}
	}
	t.synced, t.draining = true, false
	t.base, t.entries = b, t.entries[:0]
	t.moved = time.Now()
}

// advance moves pending entries that continue the window into it and
// trims the window to max entries (with the lock held).
func (t *tail) advance() {
	for {
		e, ok := t.pending[t.w()+1]
		if !ok {
			break
		}
		delete(t.pending, e.seq)
		t.entries = append(t.entries, e)
		t.moved = time.Now()
	}
	if len(t.entries) > 2*t.max || t.bytes > t.maxBytes {
		// Trim to max entries and half the bytes: copying the window
		// is then rare.
		drop := 0
		for drop < len(t.entries) && (len(t.entries)-drop > t.max || t.bytes > t.maxBytes/2) {
			t.bytes -= t.entries[drop].size
			drop++
		}
		t.base += uint64(drop)
		t.entries = append(t.entries[:0:0], t.entries[drop:]...)
	}
}

// since appends to buf up to limit entries of channel with seq > pos from
// memory. ok is false if the tail cannot tell (not synced, or pos is
// before the window): then read the store. next is the position reached:
// every entry of channel up to next is in buf or at or before pos.
func (t *tail) since(channel string, pos uint64, limit int, buf []tailEntry) (_ []tailEntry, next uint64, ok bool) {
	if t == nil {
		return buf, pos, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.synced || pos+1 < t.base {
		return buf, pos, false
	}
	next = pos
	for i := pos + 1 - t.base; i < uint64(len(t.entries)); i++ {
		e := t.entries[i]
		next = e.seq
		if e.msg.Channel != channel {
			continue
		}
		buf = append(buf, e)
		if len(buf) == limit {
			break
		}
	}
	return buf, next, true
}

// mark returns the watermark if synced: every seq up to it is committed,
// so a store read started after mark sees all of them.
func (t *tail) mark() (uint64, bool) {
	if t == nil {
		return 0, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.synced {
		return 0, false
	}
	return t.w(), true
}

// stalled reports whether entries wait above a hole. A hole fills as soon
// as the Accept holding it returns; one that does not means something
// committed that this process did not publish.
func (t *tail) stalled() bool {
	if t == nil {
		return false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.synced && len(t.pending) > 0
}

// expire drops the window if a hole has not filled for after, so
// subscribers read the store.
func (t *tail) expire(after time.Duration) {
	t.mu.Lock()
	if t.synced && len(t.pending) > 0 && time.Since(t.moved) > after {
		t.lose()
	}
	t.mu.Unlock()
}

// frozen copies what the tail keeps of m, as the store returns it, so
// that no caller's later change to m shows in a subscriber.
func frozen(m *message.Message) *message.Message {
	c := *m
	c.Created = time.Unix(0, m.Created.UnixNano()).UTC()
	c.Label = append([]byte{}, m.Label...)
	c.Body = append([]byte{}, m.Body...)
	c.Alternatives = nil
	for _, a := range m.Alternatives {
		c.Alternatives = append(c.Alternatives, append([]byte{}, a...))
	}
	return &c
}

// tailStore publishes every message its Store accepts to a tail.
type tailStore struct {
	store.Store
	t *tail
}

func (s tailStore) Accept(ctx context.Context, m *message.Message, routes []store.Route, audit ...[]byte) (uint64, bool, error) {
	g := s.t.begin()
	seq, dup, err := s.Store.Accept(ctx, m, routes, audit...)
	s.t.end(g, seq, dup, err, m)
	return seq, dup, err
}

// AcceptBatch publishes each message the batch accepts, as Accept does.
func (s tailStore) AcceptBatch(ctx context.Context, items []store.AcceptItem) ([]store.AcceptResult, error) {
	if len(items) == 0 {
		return s.Store.AcceptBatch(ctx, items)
	}
	g := s.t.beginN(len(items))
	res, err := s.Store.AcceptBatch(ctx, items)
	if err == nil && len(res) != len(items) {
		err = fmt.Errorf("accept batch: %d results for %d items", len(res), len(items))
	}
	s.t.endBatch(g, items, res, err)
	return res, err
}
