package federation

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"liaison/internal/message"
)

// preparingInbox is a fakeInbox that prepares and commits apart, and
// checks that a link commits in the order it prepared, one at a time.
type preparingInbox struct {
	*fakeInbox
	mu        sync.Mutex
	prepared  int // batches prepared
	committed int // batches committed
	inCommit  atomic.Int32
	bad       atomic.Value // string: what went wrong
	overlap   atomic.Bool  // a prepare ran while a commit was pending
}

func (p *preparingInbox) PrepareBatch(ctx context.Context, from string, wires [][]byte) func() []error {
	p.mu.Lock()
	seq := p.prepared
	p.prepared++
	if p.prepared-p.committed > 1 {
		p.overlap.Store(true)
	}
	p.mu.Unlock()
	return func() []error {
		if p.inCommit.Add(1) != 1 {
			p.bad.Store("two commits at once")
		}
		defer p.inCommit.Add(-1)
		p.mu.Lock()
		if seq != p.committed {
			p.bad.Store("commit out of prepare order")
		}
		p.committed++
		p.mu.Unlock()
		return p.fakeInbox.AcceptBatch(ctx, from, wires)
	}
}

func TestPreparingInboxPipelines(t *testing.T) {
	pin := &preparingInbox{fakeInbox: newInbox()}
	p := newPair(t, nil, func(c *Config) { c.Inbox = pin })
	const n = 400
	for i := range n {
		p.a.out.putMsg("XBB", message.Precedence(i%4), 512)
	}
	waitFor(t, 20*time.Second, "all delivered", func() bool { return pin.unique() == n })
	waitFor(t, 5*time.Second, "all acknowledged", func() bool { return p.a.out.len("XBB") == 0 })
	if bad, _ := pin.bad.Load().(string); bad != "" {
		t.Fatal(bad)
	}
	pin.mu.Lock()
	defer pin.mu.Unlock()
	t.Logf("%d batches; a batch prepared while another was pending: %v", pin.prepared, pin.overlap.Load())
	if pin.prepared != pin.committed {
		t.Fatalf("%d batches prepared, %d committed", pin.prepared, pin.committed)
	}
}

// gatedPreparer is a PreparingInbox whose commits each wait for a token,
// recording how many batches were prepared and not yet committed when
// each prepare began.
type gatedPreparer struct {
	*fakeInbox
	tokens chan struct{}

	mu                  sync.Mutex
	prepared, committed int
	sizes               []int // of the batches prepared
	most                int   // batches prepared and uncommitted when a prepare began
}

func (g *gatedPreparer) PrepareBatch(ctx context.Context, from string, wires [][]byte) func() []error {
	g.mu.Lock()
	g.most = max(g.most, g.prepared-g.committed)
	g.prepared++
	g.sizes = append(g.sizes, len(wires))
	g.mu.Unlock()
	return func() []error {
		select {
		case <-g.tokens:
		case <-ctx.Done(): // the Manager is closing (a failed test)
			errs := make([]error, len(wires))
			for i := range errs {
				errs[i] = ctx.Err()
			}
			return errs
		}
		errs := g.fakeInbox.AcceptBatch(ctx, from, wires)
		g.mu.Lock()
		g.committed++
		g.mu.Unlock()
		return errs
	}
}

func (g *gatedPreparer) counts() (prepared, committed int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.prepared, g.committed
}

func TestFlashWaitsForOneBatchAheadAtReceiver(t *testing.T) {
	g := &gatedPreparer{fakeInbox: newInbox(), tokens: make(chan struct{})}
	// Batches of at most 4 (a queue of 8): the 6 ROUTINE make two or
	// more batches, and the queue has room for the FLASH.
	p := newPair(t, nil, func(c *Config) { c.Inbox, c.AcceptBatch = g, 4 })
	var routine []message.ID
	for range 6 {
		routine = append(routine, p.a.out.putMsg("XBB", message.Routine, 100))
	}
	// The first batch is committing (stuck on its token), the second is
	// prepared and handed over; nothing else is taken from the queue.
	waitFor(t, 5*time.Second, "two batches prepared", func() bool { n, _ := g.counts(); return n == 2 })
	flash := p.a.out.putMsg("XBB", message.Flash, 100)
	waitFor(t, 5*time.Second, "FLASH queued at the receiver", func() bool {
		s := p.b.session("XAA")
		if s == nil {
			return false
		}
		s.acceptQ.mu.Lock()
		defer s.acceptQ.mu.Unlock()
		return len(s.acceptQ.jobs[message.Flash]) == 1
	})
	g.mu.Lock()
	ahead := g.sizes[0] + g.sizes[1]
	g.mu.Unlock()
	go func() {
		for range 7 {
			g.tokens <- struct{}{}
		}
	}()
	waitFor(t, 10*time.Second, "all stored", func() bool { return g.unique() == 7 })
	g.fakeInbox.mu.Lock()
	order := slices.Clone(g.fakeInbox.order)
	g.fakeInbox.mu.Unlock()
	if pos := slices.Index(order, flash); pos != ahead {
		t.Errorf("FLASH stored at position %d, want %d (after the batch committing and the one prepared)", pos, ahead)
	}
	if got := slices.DeleteFunc(order, func(id message.ID) bool { return id == flash }); !slices.Equal(got, routine) {
		t.Error("ROUTINE not stored in the order queued")
	}
	if n, c := g.counts(); n != c || g.most > 1 {
		t.Errorf("%d batches prepared, %d committed, up to %d prepared ahead of a prepare; want equal, and at most 1", n, c, g.most)
	}
}

// session returns the current session to party, or nil.
func (n *testNode) session(party string) *session {
	n.m.mu.Lock()
	defer n.m.mu.Unlock()
	if p := n.m.peers[party]; p != nil {
		return p.sess
	}
	return nil
}
