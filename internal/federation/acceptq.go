package federation

import (
	"context"
	"sync"

	"liaison/internal/message"
)

// acceptQueue holds whole received messages, in arrival order, until the
// session's accepter passes them to Inbox.AcceptBatch. It is bounded by
// count and bytes (one message always fits), so a slow store pushes back
// on the reader and, through TCP, on the sender.
type acceptQueue struct {
	maxJobs  int
	maxBytes int
	ready    chan struct{} // poked on push and close; capacity 1
	space    chan struct{} // poked on take; capacity 1

	mu     sync.Mutex // guards below
	jobs   []acceptJob
	bytes  int
	closed bool
}

type acceptJob struct {
	id   message.ID
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
		if len(q.jobs) == 0 || (len(q.jobs) < q.maxJobs && q.bytes+len(j.wire) <= q.maxBytes) {
			q.jobs = append(q.jobs, j)
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

// take waits for jobs and returns up to max of them, oldest first. After
// close it returns what is left, then nil.
func (q *acceptQueue) take(max int) []acceptJob {
	for {
		q.mu.Lock()
		if n := min(max, len(q.jobs)); n > 0 {
			out := make([]acceptJob, n)
			copy(out, q.jobs)
			clear(q.jobs[:n])
			q.jobs = q.jobs[n:]
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
