package xmpp

import (
	"context"
	"errors"
	"sync"

	"liaison/internal/message"
)

// BatchCore is a Core that also accepts several messages in one call. A
// stream's submitter uses it when the Core implements it: one durable
// store write then covers every message a client sent while the previous
// write was under way.
type BatchCore interface {
	Core
	// SubmitBatch accepts ms in order as Submit would one after the
	// other; the result has one entry per message, Submit's error for it
	// (nil if accepted).
	SubmitBatch(ctx context.Context, ms []*message.Message) []error
}

// Bounds of a submitter's queue: the reader blocks (TCP backpressure)
// while it is full. One batch is at most this much too.
const (
	submitMax   = 256
	submitBytes = 1 << 20
)

// pending is a message waiting for its submit, with what to do if the node
// refuses it (bounce and audit, as the stream's handler decides).
type pending struct {
	m       *message.Message
	refused func(error)
}

func (p pending) size() int { return len(p.m.Label) + len(p.m.Body) + 256 }

// submitter submits one stream's messages in the order read, in batches,
// while the stream's reader goes on reading. Everything queued is handled
// (submitted and, if refused, bounced) before flush returns.
type submitter struct {
	ctx  context.Context
	core Core

	mu     sync.Mutex
	cond   sync.Cond // signalled on every change below
	queue  []pending
	bytes  int  // size of the messages in queue
	busy   bool // a batch taken from queue is being submitted
	closed bool
	done   chan struct{} // closed when run returns
}

func newSubmitter(ctx context.Context, core Core) *submitter {
	q := &submitter{ctx: ctx, core: core, done: make(chan struct{})}
	q.cond.L = &q.mu
	go q.run()
	return q
}

// add queues a message, waiting while the queue is full.
func (q *submitter) add(p pending) {
	q.mu.Lock()
	for len(q.queue) > 0 && (len(q.queue) >= submitMax || q.bytes >= submitBytes) {
		q.cond.Wait()
	}
	q.queue = append(q.queue, p)
	q.bytes += p.size()
	q.cond.Broadcast()
	q.mu.Unlock()
}

// flush waits until every message added has been handled.
func (q *submitter) flush() {
	q.mu.Lock()
	for len(q.queue) > 0 || q.busy {
		q.cond.Wait()
	}
	q.mu.Unlock()
}

// stop handles what is queued and ends the submitter.
func (q *submitter) stop() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	<-q.done
}

func (q *submitter) run() {
	defer close(q.done)
	var batch []pending
	var ms []*message.Message
	for {
		q.mu.Lock()
		for len(q.queue) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.queue) == 0 {
			q.mu.Unlock()
			return
		}
		n, size := 0, 0
		for n < len(q.queue) && n < submitMax && size < submitBytes {
			size += q.queue[n].size()
			n++
		}
		batch = append(batch[:0], q.queue[:n]...)
		q.queue = append(q.queue[:0], q.queue[n:]...)
		q.bytes -= size
		q.busy = true
		q.cond.Broadcast()
		q.mu.Unlock()

		ms = q.submit(batch, ms[:0])
		clear(batch)
		clear(ms)

		q.mu.Lock()
		q.busy = false
		q.cond.Broadcast()
		q.mu.Unlock()
	}
}

// submit hands a batch to the core, in one call if it can take batches.
// It returns ms, the slice of messages it used, for reuse.
func (q *submitter) submit(batch []pending, ms []*message.Message) []*message.Message {
	bc, ok := q.core.(BatchCore)
	if !ok || len(batch) == 1 {
		for _, p := range batch {
			if err := q.core.Submit(q.ctx, p.m); err != nil {
				p.refused(err)
			}
		}
		return ms
	}
	for _, p := range batch {
		ms = append(ms, p.m)
	}
	errs := bc.SubmitBatch(q.ctx, ms)
	for i, p := range batch {
		var err error
		if i < len(errs) {
			err = errs[i]
		} else {
			err = errMissingResult
		}
		if err != nil {
			p.refused(err)
		}
	}
	return ms
}

var errMissingResult = errors.New("no result for the message")
