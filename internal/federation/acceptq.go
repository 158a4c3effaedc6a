package federation

import (
	"context"
	"sync"

	"liaison/internal/message"
)

// acceptQueue holds whole received messages until the session's accepter
// passes them to Inbox.AcceptBatch: most urgent precedence first, in
// arrival order within a precedence (the order the sender chose), so a
// FLASH does not wait behind a queue of ROUTINE. It is bounded by count
// and bytes (one message always fits), so a slow store pushes back on the
// reader and, through TCP, on the sender.
type acceptQueue struct {
	maxJobs  int
	maxBytes int
	ready    chan struct{} // poked on push and close; capacity 1
	space    chan struct{} // poked on take; capacity 1

	mu     sync.Mutex                       // guards below
	jobs   [message.Routine + 1][]acceptJob // by precedence
	n      int
	bytes  int
	closed bool
}

type acceptJob struct {
	id   message.ID
	prec message.Precedence
	wire []byte
}

func newAcceptQueue(maxJobs, maxBytes int) *acceptQueue {
	return &acceptQueue{maxJobs: maxJobs, maxBytes: maxBytes, ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// push appends j, waiting for room. It returns false when ctx ends or
// the queue is closed first.
func (q *acceptQueue) push(ctx context.Context, j acceptJob) bool {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return false
		}
		if q.n == 0 || (q.n < q.maxJobs && q.bytes+len(j.wire) <= q.maxBytes) {
			p := min(j.prec, message.Routine)
			q.jobs[p] = append(q.jobs[p], j)
			q.n++
			q.bytes += len(j.wire)
			q.mu.Unlock()
			poke(q.ready)
			return true
		}
		q.mu.Unlock()
		select {
		case <-q.space:
		case <-ctx.Done():
			return false
		}
	}
}

// take waits for jobs and returns up to max of them, oldest first, all of
// the most urgent precedence waiting: a batch never mixes precedences, so
// a FLASH is stored in a batch of its own kind, not with 127 ROUTINE to
// check and write. After close it returns what is left, then nil.
func (q *acceptQueue) take(max int) []acceptJob {
	for {
		q.mu.Lock()
		if q.n > 0 {
			p := 0
			for len(q.jobs[p]) == 0 {
				p++
			}
			k := min(max, len(q.jobs[p]))
			out := make([]acceptJob, k)
			copy(out, q.jobs[p])
			clear(q.jobs[p][:k])
			q.jobs[p] = q.jobs[p][k:]
			q.n -= len(out)
			for _, j := range out {
				q.bytes -= len(j.wire)
			}
			q.mu.Unlock()
			poke(q.space)
			return out
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil
		}
		<-q.ready
	}
}

// close makes push fail and take return nil once the queue is empty.
func (q *acceptQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	poke(q.ready)
}
