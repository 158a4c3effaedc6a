package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// txn is an open transaction the batcher runs writes in.
type txn interface {
	querier
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// batcher is group commit: one goroutine takes every pending write (up to
// maxBatch), runs each in its own savepoint of one transaction, commits
// once and then answers each caller. A write that fails rolls back its own
// savepoint only; a failed commit fails the whole batch.
type batcher struct {
	begin    func(ctx context.Context) (txn, error)
	log      *slog.Logger
	maxBatch int
	reqs     chan *writeReq

	mu     sync.RWMutex // guards closed and sending on reqs
	closed bool
	done   chan struct{}
	once   sync.Once
}

type writeReq struct {
	fn   func(ctx context.Context, q querier) error
	done chan error
}

func newBatcher(maxBatch int, log *slog.Logger, begin func(ctx context.Context) (txn, error)) *batcher {
	b := &batcher{begin: begin, log: log, maxBatch: maxBatch,
		reqs: make(chan *writeReq, maxBatch), done: make(chan struct{})}
	go b.run()
	return b
}

// write queues fn and waits for the commit of its batch.
func (b *batcher) write(ctx context.Context, fn func(ctx context.Context, q querier) error) error {
	r := &writeReq{fn: fn, done: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()
	// Once queued the write will be applied or fail; wait for the answer
	// so that a caller never misses an outcome that did happen.
	return <-r.done
}

// close stops accepting writes and waits until the queued ones are
// committed. It is idempotent.
func (b *batcher) close() {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		close(b.reqs)
		b.mu.Unlock()
	})
	<-b.done
}

func (b *batcher) run() {
	defer close(b.done)
	batch := make([]*writeReq, 0, b.maxBatch)
	errs := make([]error, 0, b.maxBatch)
	for {
		r, ok := <-b.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], r)
	fill:
		for len(batch) < b.maxBatch {
			select {
			case r, ok := <-b.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		errs = b.runBatch(batch, errs[:0])
		for i, r := range batch {
			r.done <- errs[i]
			batch[i] = nil
		}
	}
}

func (b *batcher) runBatch(batch []*writeReq, errs []error) []error {
	// Writes already queued are applied even if their caller has gone:
	// the caller is waiting for the answer in any case.
	ctx := context.Background()
	fail := func(err error) []error {
		errs = errs[:0]
		for range batch {
			errs = append(errs, err)
		}
		return errs
	}
	tx, err := b.begin(ctx)
	if err != nil {
		return fail(err)
	}
	for _, r := range batch {
		if _, err := tx.exec(ctx, `SAVEPOINT w`); err != nil {
			tx.rollback(ctx)
			return fail(err)
		}
		err := r.fn(ctx, tx)
		if err != nil {
			if _, rerr := tx.exec(ctx, `ROLLBACK TO SAVEPOINT w`); rerr != nil {
				tx.rollback(ctx)
				return fail(rerr)
			}
			if errors.Is(err, errRollback) {
				err = nil
			}
		}
		if _, rerr := tx.exec(ctx, `RELEASE SAVEPOINT w`); rerr != nil {
			tx.rollback(ctx)
			return fail(rerr)
		}
		errs = append(errs, err)
	}
	if err := tx.commit(ctx); err != nil {
		b.log.Error("store commit failed", "err", err, "batch", len(batch))
		return fail(err)
	}
	return errs
}
