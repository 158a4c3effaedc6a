package federation

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"liaison/internal/message"
)

// preparingInbox is a fakeInbox that prepares and commits apart, and
// checks that a link commits the batches other than FLASH in the order it
// prepared them, one at a time (FLASH batches go beside them).
type preparingInbox struct {
	*fakeInbox
	mu        sync.Mutex
	flash     map[message.ID]bool // the FLASH messages' ids
	prepared  int                 // batches prepared, FLASH ones apart
	committed int                 // batches committed, FLASH ones apart
	flashes   int                 // FLASH batches prepared and committed
	inCommit  atomic.Int32
	bad       atomic.Value // string: what went wrong
	overlap   atomic.Bool  // a prepare ran while a commit was pending
}

func (p *preparingInbox) PrepareBatch(ctx context.Context, from string, wires [][]byte) func() []error {
	p.mu.Lock()
	id, _ := wireID(wires[0])
	if p.flash[id] {
		p.flashes++
		p.mu.Unlock()
		return func() []error { return p.fakeInbox.AcceptBatch(ctx, from, wires) }
	}
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
	pin := &preparingInbox{fakeInbox: newInbox(), flash: map[message.ID]bool{}}
	p := newPair(t, nil, func(c *Config) { c.Inbox = pin })
	const n = 400
	for i := range n {
		prec := message.Precedence(i % 4)
		p.a.out.putMsgWatch("XBB", prec, 512, func(id message.ID) {
			pin.mu.Lock()
			pin.flash[id] = prec == message.Flash
			pin.mu.Unlock()
		})
	}
	waitFor(t, 20*time.Second, "all delivered", func() bool { return pin.unique() == n })
	waitFor(t, 5*time.Second, "all acknowledged", func() bool { return p.a.out.len("XBB") == 0 })
	if bad, _ := pin.bad.Load().(string); bad != "" {
		t.Fatal(bad)
	}
	pin.mu.Lock()
	defer pin.mu.Unlock()
	t.Logf("%d batches and %d FLASH batches; a batch prepared while another was pending: %v", pin.prepared, pin.flashes, pin.overlap.Load())
	if pin.flashes == 0 {
		t.Error("no FLASH batch")
	}
	if pin.prepared != pin.committed {
		t.Fatalf("%d batches prepared, %d committed", pin.prepared, pin.committed)
	}
}
