package federation

import (
	"context"
	"sync"

	"liaison/internal/message"
)

// acceptQueue holds whole received messages until the session's accepters
// pass them to Inbox.AcceptBatch: the FLASH ones to an accepter of their
// own, the others most urgent precedence first, in arrival order within a
// precedence (the order the sender chose), so a FLASH waits neither behind
// a queue of ROUTINE nor for the batch being checked. It is bounded by
// count and bytes (one message always fits), so a slow store pushes back on
// the reader and, through TCP, on the sender.
//
// It also counts the FLASH messages pushed and not yet stored
// (flashStored), so that a batch of lower precedence can wait for them
// before it is stored (flashIdle): what arrived more urgent is stored
// first.
type acceptQueue struct {
	maxJobs  int
	maxBytes int
	ready    [2]chan struct{} // by lane (FLASH, the rest): poked on push and close; capacity 1
	space    chan struct{}    // poked on take; capacity 1

	mu        sync.Mutex                       // guards below
	jobs      [message.Routine + 1][]acceptJob // by precedence
	n         int
	bytes     int
	closed    bool
	flashes   int           // FLASH jobs pushed and not yet stored
	flashIdle chan struct{} // closed while flashes is 0
}

type acceptJob struct {
	id   message.ID
	prec message.Precedence
	wire []byte
}

func newAcceptQueue(maxJobs, maxBytes int) *acceptQueue {
	idle := make(chan struct{})
	close(idle)
	return &acceptQueue{maxJobs: maxJobs, maxBytes: maxBytes, space: make(chan struct{}, 1), flashIdle: idle,
		ready: [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}}
}

// lane is the accepter a precedence goes to: 0 for FLASH, 1 for the rest.
func lane(p message.Precedence) int {
	if p == message.Flash {
		return 0
	}
	return 1
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
			if p == message.Flash {
				if q.flashes == 0 {
					q.flashIdle = make(chan struct{})
				}
				q.flashes++
			}
			q.mu.Unlock()
			poke(q.ready[lane(p)])
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

// take waits for jobs of its lane (flash: FLASH jobs only; otherwise the
// others) and returns up to max of them, oldest first, all of the most
// urgent precedence waiting: a batch never mixes precedences. After close
// it returns what is left of its lane, then nil.
func (q *acceptQueue) take(max int, flash bool) []acceptJob {
	lo, hi := message.Immediate, message.Routine
	if flash {
		lo, hi = message.Flash, message.Flash
	}
	for {
		q.mu.Lock()
		p := lo
		for p <= hi && len(q.jobs[p]) == 0 {
			p++
		}
		if p <= hi {
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
		<-q.ready[lane(lo)]
	}
}

// flashStored counts n FLASH jobs taken off the queue as stored (or
// refused, or failed: no longer waiting to be).
func (q *acceptQueue) flashStored(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.flashes -= n
	if q.flashes == 0 {
		close(q.flashIdle)
	}
}

// flashWait returns a channel that is closed once no FLASH job pushed so
// far is waiting to be stored.
func (q *acceptQueue) flashWait() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.flashIdle
}

// close makes push fail and take return nil once the queue is empty.
func (q *acceptQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	poke(q.ready[0])
	poke(q.ready[1])
}
