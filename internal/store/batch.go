package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"liaison/internal/message"
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
//
// The Accepts and AcceptBatches of a batch run together, as one acceptTx
// in one savepoint: a handful of statements for all of them rather than a
// handful for each. Their callers are concurrent (each waits for the
// commit), so any order among them is one they could have had; acceptTx
// keeps their items in batch order, and an item already taken by an
// earlier request is a duplicate, as it would be one request after the
// other. If that fails, each runs again in its own savepoint, so that one
// request's failure is not another's.
//
// Urgent requests (see Urgent) have a queue of their own, which the writer
// empties into every batch it takes; found waiting beside others, they are
// committed first, on their own. An accept of a FLASH message that arrives
// while a batch's writes run stops that batch after the write under way:
// the urgent requests waiting join what ran so far, that commits, and the
// rest follows in the next transaction. So a FLASH waits for one write and
// one commit (its own), not for a batch. (Other urgent writes, such as a
// link's leases on news, come often under load; each stopping a batch
// would cost a commit.)
//
// Some writes are relaxed (see relaxed): a batch made only of them commits
// without waiting for its flush. A batch of urgent writes commits durably
// but leaves the database's housekeeping (SQLite's checkpoint) to a commit
// nobody urgent waits for. After maxDeferred such commits in a row, the
// next commit that is not urgent is durable and does the housekeeping
// whatever it holds, and carries the relaxed ones to the disk with its own.
//
// Producers that prepare an accept before they make it (the node checks a
// message and runs the guard first) may announce it (Announce). A writer
// that has taken a batch while announced accepts are on their way waits
// for them, for at most gatherFor, so that they share this commit instead
// of waiting for the next: the idea of PostgreSQL's commit_delay, applied
// only when writes are known to be coming.
//
// A batch that holds far fewer accepts than batches did a moment ago also
// waits (expect): the callers of the last commit are on their way back
// (answering their clients, reading the next request), and committing the
// one or two already here would spend a whole flush on them. Under load
// through the API a fifth of the commits held a single accept before this
// (measured in the tenth session). Callers that come back at once, as a
// store's own goroutines do, fill each batch as full as the last, and
// their batches never wait.
type batcher struct {
	// begin opens a transaction to commit as k says.
	begin    func(ctx context.Context, k commitKind) (txn, error)
	accept   func(ctx context.Context, q querier, items []AcceptItem, out []AcceptResult) error
	log      *slog.Logger
	maxBatch int
	reqs     chan *writeReq
	urgent   chan *writeReq
	flashes  atomic.Int32 // FLASH accepts queued on urgent, not yet taken
	// Accepts announced (Announce), and announcements ended: the accept
	// was queued, or will not be made. The difference is those on their way.
	announced, ended atomic.Int64
	arrivals         chan struct{} // a signal when an announcement ends
	gatherMax        time.Duration // the longest wait for them: gatherFor
	onGather         func()        // tests: called as a wait for them begins
	// recent is a decaying maximum of the accept requests a batch took
	// (the writer's; see expect), and expectMax the longest wait for a
	// batch to fill towards it: expectFor.
	recent    int
	expectMax time.Duration
	onExpect  func() // tests: called as such a wait begins
	deferred  int    // relaxed and urgent commits since the last commitDurable (the writer's)
	stats     commitStats

	mu     sync.RWMutex // guards closed and sending on reqs and urgent
	closed bool
	done   chan struct{}
	once   sync.Once
}

type writeReq struct {
	fn     func(ctx context.Context, q querier) error
	acc    *acceptReq // instead of fn: an accept, run with the batch's others
	urgent bool       // commit ahead of the others waiting: see Urgent
	relax  bool       // its commit need not be flushed: see relaxed
	flash  bool       // an accept of a FLASH message: stops a running batch
	done   chan error
}

type urgentKey struct{}

// Urgent marks the writes made with the returned context as urgent: a
// writer that finds urgent and other writes waiting commits the urgent
// ones first, in a transaction of their own, so that they wait for the
// commit under way but not for a large batch's statements beside them.
// Accepting a FLASH message is urgent by itself; a federation link marks
// the small lease it makes when new work arrives (a FLASH among it).
func Urgent(ctx context.Context) context.Context {
	return context.WithValue(ctx, urgentKey{}, true)
}

func isUrgent(ctx context.Context) bool { return ctx.Value(urgentKey{}) != nil }

type relaxedKey struct{}

// relaxed marks the writes made with the returned context as relaxed: the
// store's own bookkeeping that recovery redoes if a power loss takes it,
// so its commit need not wait for a flush. A lease lost is taken again, a
// delete of a delivered message's queue row lost means the message is
// sent again and the partner drops it as a duplicate, a "sent" mark lost
// is status only, and audit records whose removal is lost are appended
// again (DURABILITY.md). A process crash loses none of them: the
// operating system has their bytes. Only this package marks writes so.
func relaxed(ctx context.Context) context.Context {
	return context.WithValue(ctx, relaxedKey{}, true)
}

func isRelaxed(ctx context.Context) bool { return ctx.Value(relaxedKey{}) != nil }

// commitKind is how a transaction commits.
type commitKind int

const (
	// commitDurable: flushed before it returns, and the database may do
	// its housekeeping (SQLite checkpoints its log).
	commitDurable commitKind = iota
	// commitUrgent: flushed before it returns, without housekeeping, so
	// that the urgent writes in it (a FLASH accept) do not wait for a
	// checkpoint.
	commitUrgent
	// commitRelaxed: not flushed (see relaxed); a later durable commit's
	// flush carries it.
	commitRelaxed
)

func (k commitKind) durable() bool { return k != commitRelaxed }

func (k commitKind) String() string {
	switch k {
	case commitDurable:
		return "durable"
	case commitUrgent:
		return "urgent"
	case commitRelaxed:
		return "relaxed"
	}
	return fmt.Sprintf("commitKind(%d)", int(k))
}

// maxDeferred bounds the relaxed and urgent commits in a row: the next
// commit that is not urgent is commitDurable, and after twice as many the
// next one whatever it is. It bounds what a power loss can take back, and
// lets SQLite checkpoint its log, which it does only at such commits; an
// urgent batch (a FLASH) is spared that unless urgent ones are all there is.
const maxDeferred = 64

// kindOf is how batch commits.
func (b *batcher) kindOf(batch []*writeReq) commitKind {
	urgent := len(batch) > 0 && batch[0].urgent
	switch {
	case b.deferred >= 2*maxDeferred, b.deferred >= maxDeferred && !urgent:
		return commitDurable
	case !slices.ContainsFunc(batch, func(r *writeReq) bool { return !r.relax }):
		return commitRelaxed
	case urgent:
		return commitUrgent
	}
	return commitDurable
}

type acceptReq struct {
	items []AcceptItem
	out   []AcceptResult
}

// newBatcher starts a batcher. accept is acceptTx: it stores items in the
// caller's transaction, fills out, and returns errRollback if all were
// duplicates.
func newBatcher(maxBatch int, log *slog.Logger, begin func(ctx context.Context, k commitKind) (txn, error),
	accept func(ctx context.Context, q querier, items []AcceptItem, out []AcceptResult) error) *batcher {
	b := &batcher{begin: begin, accept: accept, log: log, maxBatch: maxBatch,
		reqs: make(chan *writeReq, maxBatch), urgent: make(chan *writeReq, maxBatch), done: make(chan struct{}),
		arrivals: make(chan struct{}, 1), gatherMax: gatherFor, expectMax: expectFor}
	go b.run()
	return b
}

// gatherFor bounds how long a batch waits for announced accepts. It is a
// fraction of a commit (about a millisecond on the disks measured), so a
// lone announced accept that never comes costs little.
const gatherFor = 250 * time.Microsecond

// announcement is an accept announced to b and not yet made.
type announcement struct {
	b    *batcher
	once sync.Once
}

type announceKey struct{}

// announce notes an accept on its way: the returned context carries it,
// and the accept made with that context ends it when it is queued. Call
// drop if none will be made (it is idempotent, and harmless after).
func (b *batcher) announce(ctx context.Context) (_ context.Context, drop func()) {
	if b.announcementIn(ctx) != nil {
		return ctx, func() {} // already announced, by a caller further out
	}
	b.announced.Add(1)
	a := &announcement{b: b}
	return context.WithValue(ctx, announceKey{}, a), a.arrived
}

// arrived ends the announcement.
func (a *announcement) arrived() {
	a.once.Do(func() {
		a.b.ended.Add(1)
		select {
		case a.b.arrivals <- struct{}{}:
		default:
		}
	})
}

// announcementIn returns ctx's announcement to b, or nil.
func (b *batcher) announcementIn(ctx context.Context) *announcement {
	if a, ok := ctx.Value(announceKey{}).(*announcement); ok && a.b == b {
		return a
	}
	return nil
}

// arrive ends ctx's announcement to b, if it has one.
func (b *batcher) arrive(ctx context.Context) {
	if a := b.announcementIn(ctx); a != nil {
		a.arrived()
	}
}

// gather adds to batch the requests that come while the accepts announced
// before it began are on their way, for at most b.gatherMax; an urgent
// request ends it. (Accepts announced meanwhile are for the next batch:
// waiting for them too would wait for the deadline under steady load.)
func (b *batcher) gather(batch []*writeReq, reqs, urgent chan *writeReq) []*writeReq {
	target := b.announced.Load()
	enough := func(batch []*writeReq) bool { return b.ended.Load() >= target || len(batch) >= b.maxBatch }
	if enough(batch) || slices.ContainsFunc(batch, isUrgentReq) {
		return batch
	}
	if b.onGather != nil {
		b.onGather()
	}
	batch, ok := b.collect(batch, reqs, urgent, b.gatherMax, enough)
	if ok {
		batch = b.fill(batch, reqs)
	}
	return batch
}

// expectFor bounds how long a batch waits to fill towards the recent
// batches' size (expect): about half a commit on the disks measured.
const expectFor = 400 * time.Microsecond

// expect adds to batch the requests that come until it holds 3/4 of the
// accept requests that batches recently held (b.recent), for at most
// b.expectMax; an urgent request ends it, and so does a batch of no
// accepts. A wait that runs out means the load has dropped: b.recent
// becomes what came. So a lone caller never waits, and after a burst
// the first small batch waits once.
func (b *batcher) expect(batch []*writeReq, reqs, urgent chan *writeReq) []*writeReq {
	n := countAccepts(batch)
	if n == 0 {
		return batch
	}
	want := b.recent * 3 / 4
	enough := func(batch []*writeReq) bool { return countAccepts(batch) >= want || len(batch) >= b.maxBatch }
	if !enough(batch) && !slices.ContainsFunc(batch, isUrgentReq) {
		if b.onExpect != nil {
			b.onExpect()
		}
		var ok bool
		batch, ok = b.collect(batch, reqs, urgent, b.expectMax, enough)
		if !ok && !slices.ContainsFunc(batch, isUrgentReq) {
			b.recent = countAccepts(batch)
			return batch
		}
	}
	n = countAccepts(batch)
	b.recent = max(n, b.recent-b.recent/8)
	return batch
}

// countAccepts is how many of batch are accept requests.
func countAccepts(batch []*writeReq) int {
	n := 0
	for _, r := range batch {
		if r.acc != nil {
			n++
		}
	}
	return n
}

// collect adds to batch the requests that come until enough(batch), for at
// most d; an urgent request joins and ends it. It reports whether batch
// became enough.
func (b *batcher) collect(batch []*writeReq, reqs, urgent chan *writeReq, d time.Duration, enough func([]*writeReq) bool) ([]*writeReq, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	for !enough(batch) {
		select {
		case r, ok := <-urgent:
			if ok {
				b.took(r)
				batch = append(batch, r)
			}
			return batch, false
		case r, ok := <-reqs:
			if !ok {
				return batch, false
			}
			b.took(r)
			batch = append(batch, r)
		case <-b.arrivals:
		case <-t.C:
			return batch, false
		}
	}
	return batch, true
}

func isUrgentReq(r *writeReq) bool { return r.urgent }

// write queues fn and waits for the commit of its batch.
func (b *batcher) write(ctx context.Context, fn func(ctx context.Context, q querier) error) error {
	return b.submit(ctx, &writeReq{fn: fn, urgent: isUrgent(ctx), relax: isRelaxed(ctx), done: make(chan error, 1)})
}

// writeAccept queues an accept of items and waits for the commit of its
// batch; out receives the results.
func (b *batcher) writeAccept(ctx context.Context, items []AcceptItem, out []AcceptResult) error {
	urgent, flash := acceptFlags(ctx, items)
	return b.submit(ctx, &writeReq{acc: &acceptReq{items, out}, urgent: urgent, flash: flash, done: make(chan error, 1)})
}

// acceptFlags reports whether accepting items is urgent (ctx says so, or
// one of them is a FLASH message) and whether it is a FLASH's.
func acceptFlags(ctx context.Context, items []AcceptItem) (urgent, flash bool) {
	for _, it := range items {
		if it.Msg != nil && it.Msg.Precedence == message.Flash {
			return true, true
		}
	}
	return isUrgent(ctx), false
}

func (b *batcher) submit(ctx context.Context, r *writeReq) error {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	q := b.reqs
	if r.urgent {
		q = b.urgent
	}
	if r.flash {
		b.flashes.Add(1)
	}
	select {
	case q <- r:
	case <-ctx.Done():
		if r.flash {
			b.flashes.Add(-1)
		}
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()
	b.arrive(ctx)
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
		close(b.urgent)
		b.mu.Unlock()
	})
	<-b.done
}

func (b *batcher) run() {
	defer close(b.done)
	batch := make([]*writeReq, 0, b.maxBatch)
	errs := make([]error, 0, b.maxBatch)
	reqs, urgent := b.reqs, b.urgent
	for reqs != nil || urgent != nil {
		// Whichever comes; the urgent ones waiting join it, and
		// commitAll commits them first.
		var r *writeReq
		var ok bool
		select {
		case r, ok = <-urgent:
			if !ok {
				urgent = nil
				continue
			}
		case r, ok = <-reqs:
			if !ok {
				reqs = nil
				continue
			}
		}
		b.took(r)
		batch = append(batch[:0], r)
		batch = b.fill(batch, urgent)
		batch = b.fill(batch, reqs)
		batch = b.gather(batch, reqs, urgent)
		batch = b.expect(batch, reqs, urgent)
		errs = b.commitAll(batch, errs)
		clear(batch)
	}
}

// took counts r out of the queued FLASH accepts.
func (b *batcher) took(r *writeReq) {
	if r.flash {
		b.flashes.Add(-1)
	}
}

// fill appends to batch, up to maxBatch, the requests waiting on q (nil:
// none).
func (b *batcher) fill(batch []*writeReq, q chan *writeReq) []*writeReq {
	for q != nil && len(batch) < b.maxBatch {
		select {
		case r, ok := <-q:
			if !ok {
				return batch
			}
			b.took(r)
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commitAll commits batch and answers each request: the urgent ones first,
// in a transaction of their own, when there are others beside them.
func (b *batcher) commitAll(batch []*writeReq, errs []error) []error {
	u := 0 // batch[:u] are urgent, in arrival order, as are the others
	for i, r := range batch {
		if r.urgent {
			copy(batch[u+1:i+1], batch[u:i])
			batch[u] = r
			u++
		}
	}
	parts := [][]*writeReq{batch}
	if u > 0 && u < len(batch) {
		parts = [][]*writeReq{batch[:u], batch[u:]}
	}
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		var done, rest []*writeReq
		done, errs, rest = b.runBatch(p, errs[:0])
		flash := false
		for i, r := range done {
			r.done <- errs[i]
			flash = flash || r.flash
		}
		if flash {
			// The FLASH's caller is runnable now, next on this P, but
			// under load it would wait until the writer blocks: let it
			// run first.
			runtime.Gosched()
		}
		if len(rest) > 0 {
			// A FLASH stopped the batch: the rest goes next, after any
			// urgent requests that arrived since.
			next := [][]*writeReq{rest}
			if u := b.fill(nil, b.urgent); len(u) > 0 {
				next = [][]*writeReq{u, rest}
			}
			parts = append(next, parts...)
		}
	}
	return errs
}

// runBatch runs batch in one transaction, commits it, and returns the
// requests committed, with their outcomes in errs, and the rest of batch.
// Unless batch is urgent, an accept of a FLASH message that waits stops it
// after the write under way (and after the accepts, which run together
// first): the urgent requests waiting join this transaction, it commits,
// and the rest of the batch is left for the next one. So a FLASH waits for
// one write and one commit, its own.
func (b *batcher) runBatch(batch []*writeReq, errs []error) (done []*writeReq, _ []error, rest []*writeReq) {
	// Writes already queued are applied even if their caller has gone:
	// the caller is waiting for the answer in any case.
	ctx := context.Background()
	fail := func(reqs []*writeReq, err error) ([]*writeReq, []error, []*writeReq) {
		errs = errs[:0]
		for range reqs {
			errs = append(errs, err)
		}
		return reqs, errs, nil
	}
	kind := b.kindOf(batch)
	tx, err := b.begin(ctx, kind)
	if err != nil {
		return fail(batch, err)
	}
	urgent := len(batch) > 0 && batch[0].urgent
	var ran int
	if ran, errs, err = b.runWrites(ctx, tx, batch, errs[:0], !urgent); err != nil {
		tx.rollback(ctx)
		return fail(batch, err)
	}
	done, rest = batch[:ran], batch[ran:]
	// The urgent requests waiting join a durable transaction only: a
	// relaxed one commits at once, and they follow in their own.
	if len(rest) > 0 && kind.durable() {
		joined := b.fill(nil, b.urgent)
		if _, errs, err = b.runWrites(ctx, tx, joined, errs, false); err != nil {
			tx.rollback(ctx)
			return fail(append(slices.Clip(batch), joined...), err)
		}
		done = append(slices.Clip(done), joined...)
	}
	start := time.Now()
	if err := tx.commit(ctx); err != nil {
		b.log.Error("store commit failed", "err", err, "batch", len(done))
		for i := range errs {
			errs[i] = err
		}
	}
	b.stats.add(kind.durable(), len(done), time.Since(start))
	if kind == commitDurable {
		b.deferred = 0
	} else {
		b.deferred++
	}
	return done, errs, rest
}

// runWrites runs reqs in tx, the accepts first (reqs are concurrent, so
// any order among them is one they could have had: they run together, and
// the writes can then stop between the others), and appends their
// outcomes to errs. If stoppable, it stops after at least one write when
// an accept of a FLASH message waits; it returns how many of reqs ran. An
// error is one of tx itself, which is then unusable.
func (b *batcher) runWrites(ctx context.Context, tx txn, reqs []*writeReq, errs []error, stoppable bool) (int, []error, error) {
	slices.SortStableFunc(reqs, func(x, y *writeReq) int { return cmp.Compare(accFirst(x), accFirst(y)) })
	base := len(errs)
	for range reqs {
		errs = append(errs, nil)
	}
	merged, err := b.runAccepts(ctx, tx, reqs)
	if err != nil {
		return 0, errs, err
	}
	for i, r := range reqs {
		if r.acc != nil && merged {
			continue
		}
		if stoppable && i > 0 && b.flashes.Load() > 0 {
			return i, errs[:base+i], nil
		}
		fn := r.fn
		if r.acc != nil {
			fn = func(ctx context.Context, q querier) error { return b.accept(ctx, q, r.acc.items, r.acc.out) }
		}
		ferr, err := savepoint(ctx, tx, fn)
		if err != nil {
			return 0, errs, err
		}
		errs[base+i] = ferr
	}
	return len(reqs), errs, nil
}

func accFirst(r *writeReq) int {
	if r.acc != nil {
		return 0
	}
	return 1
}

// runAccepts runs the accepts of batch, if there are two or more, as one
// acceptTx in one savepoint, and reports whether that succeeded. An error
// is one of tx itself, which is then unusable.
func (b *batcher) runAccepts(ctx context.Context, tx txn, batch []*writeReq) (bool, error) {
	reqs, n := 0, 0
	for _, r := range batch {
		if r.acc != nil {
			reqs++
			n += len(r.acc.items)
		}
	}
	if reqs < 2 {
		return false, nil
	}
	items := make([]AcceptItem, 0, n)
	for _, r := range batch {
		if r.acc != nil {
			items = append(items, r.acc.items...)
		}
	}
	out := make([]AcceptResult, n)
	ferr, err := savepoint(ctx, tx, func(ctx context.Context, q querier) error { return b.accept(ctx, q, items, out) })
	if err != nil || ferr != nil {
		return false, err
	}
	for _, r := range batch {
		if r.acc != nil {
			out = out[copy(r.acc.out, out):]
		}
	}
	return true, nil
}

// savepoint runs fn in a savepoint of tx. If fn fails its changes are
// rolled back and its error returned as ferr (nil for errRollback). err is
// an error of tx itself, which is then unusable.
func savepoint(ctx context.Context, tx txn, fn func(ctx context.Context, q querier) error) (ferr, err error) {
	if _, err := tx.exec(ctx, `SAVEPOINT w`); err != nil {
		return nil, err
	}
	ferr = fn(ctx, tx)
	if ferr != nil {
		if _, err := tx.exec(ctx, `ROLLBACK TO SAVEPOINT w`); err != nil {
			return nil, err
		}
		if errors.Is(ferr, errRollback) {
			ferr = nil
		}
	}
	if _, err := tx.exec(ctx, `RELEASE SAVEPOINT w`); err != nil {
		return nil, err
	}
	return ferr, nil
}
