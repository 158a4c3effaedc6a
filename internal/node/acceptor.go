package node

import (
	"context"
	"fmt"
	"sync"

	"liaison/internal/message"
	"liaison/internal/store"
)

// acceptor is group commit one level above the store: messages that local
// senders submit at the same time are stored with one AcceptBatch (a few
// multi-row statements) instead of one Accept each. Each Submit still
// returns only after the transaction holding its message committed.
//
// There is no goroutine of its own: the first caller to find the acceptor
// idle leads, storing everything queued (its own message included) as one
// batch; then, if more came meanwhile, it hands the lead to the oldest
// waiter and returns. A lone sender therefore pays no hand-off, and no
// caller waits for more than the batch in flight and its own.
type acceptor struct {
	max int // messages per batch; zero means acceptBatchMax

	mu    sync.Mutex
	queue []*acceptCall
	busy  bool // a leader is storing a batch
}

// acceptStore is the part of the store an acceptor writes through.
type acceptStore interface {
	Accept(ctx context.Context, m *message.Message, routes []store.Route, audit ...[]byte) (uint64, bool, error)
	AcceptBatch(ctx context.Context, items []store.AcceptItem) ([]store.AcceptResult, error)
}

// acceptBatchMax bounds a batch: one de-duplication query's worth of ids.
const acceptBatchMax = 128

type acceptCall struct {
	item store.AcceptItem
	res  store.AcceptResult
	err  error
	done bool          // res and err are set
	wake chan struct{} // done, or promoted to lead
}

// accept stores it in st (in a batch with whatever else is waiting) and
// returns what st.Accept would have.
func (a *acceptor) accept(ctx context.Context, st acceptStore, it store.AcceptItem) (store.AcceptResult, error) {
	if err := ctx.Err(); err != nil {
		return store.AcceptResult{}, err
	}
	c := &acceptCall{item: it, wake: make(chan struct{}, 1)}
	a.mu.Lock()
	a.queue = append(a.queue, c)
	lead := !a.busy
	a.busy = true
	a.mu.Unlock()
	if !lead {
		// Once queued, the message will be stored or fail; wait for the
		// outcome even if ctx ends, so that no caller misses one that
		// did happen.
		<-c.wake
		if c.done {
			return c.res, c.err
		}
	}
	a.lead(ctx, st)
	return c.res, c.err
}

// lead stores one batch from the head of the queue, which holds the
// caller's own message, then passes the lead on or goes idle.
func (a *acceptor) lead(ctx context.Context, st acceptStore) {
	a.mu.Lock()
	limit := a.max
	if limit <= 0 {
		limit = acceptBatchMax
	}
	n := min(len(a.queue), limit)
	batch := a.queue[:n:n]
	a.queue = a.queue[n:]
	a.mu.Unlock()

	// The batch holds other callers' messages: it is not abandoned if
	// this caller goes away.
	a.store(context.WithoutCancel(ctx), st, batch)

	a.mu.Lock()
	var next *acceptCall
	if len(a.queue) > 0 {
		next = a.queue[0]
	} else {
		a.busy = false
		a.queue = nil
	}
	a.mu.Unlock()
	for _, c := range batch {
		c.done = true
		c.wake <- struct{}{}
	}
	if next != nil {
		next.wake <- struct{}{} // promoted: not done yet
	}
}

// store stores a batch in one transaction. If that fails, each message is
// stored on its own, so that one message the store refuses does not fail
// the others.
func (a *acceptor) store(ctx context.Context, st acceptStore, batch []*acceptCall) {
	if len(batch) > 1 {
		items := make([]store.AcceptItem, len(batch))
		for i, c := range batch {
			items[i] = c.item
		}
		res, err := st.AcceptBatch(ctx, items)
		if err == nil && len(res) != len(batch) {
			err = fmt.Errorf("store returned %d results for %d messages", len(res), len(batch))
		}
		if err == nil {
			for i, c := range batch {
				c.res = res[i]
			}
			return
		}
	}
	for _, c := range batch {
		it := c.item
		seq, dup, err := st.Accept(ctx, it.Msg, it.Routes, it.Audit...)
		c.res, c.err = store.AcceptResult{Seq: seq, Dup: dup}, err
	}
}
