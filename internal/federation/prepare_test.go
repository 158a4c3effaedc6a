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

// stallingInbox stalls the preparing of batches of one kind (FLASH or not)
// until release is closed, and records the order messages are stored in.
type stallingInbox struct {
	*fakeInbox
	stallFlash bool
	flash      sync.Map // ids of the FLASH messages
	stalled    chan struct{}
	release    chan struct{}
	once       sync.Once
	released   sync.Once
	checking   sync.Map // first message id of each batch checked → messages stored when its check began
}

// unstall lets the stalled prepare go on.
func (s *stallingInbox) unstall() { s.released.Do(func() { close(s.release) }) }

func (s *stallingInbox) PrepareBatch(ctx context.Context, from string, wires [][]byte) func() []error {
	id, _ := wireID(wires[0])
	s.checking.Store(id, s.unique())
	if _, f := s.flash.Load(id); f == s.stallFlash {
		s.once.Do(func() { close(s.stalled) })
		<-s.release
	}
	return func() []error { return s.fakeInbox.AcceptBatch(ctx, from, wires) }
}

// stallingPair returns a pair whose receiver has a stallingInbox, which
// lets go when the test ends (before the pair closes).
func stallingPair(t *testing.T, stallFlash bool) (*stallingInbox, *pairT) {
	in := &stallingInbox{fakeInbox: newInbox(), stallFlash: stallFlash, stalled: make(chan struct{}), release: make(chan struct{})}
	p := newPair(t, nil, func(c *Config) { c.Inbox = in })
	t.Cleanup(in.unstall)
	return in, p
}

func (s *stallingInbox) put(p *pairT, prec message.Precedence) message.ID {
	return p.a.out.putMsgWatch("XBB", prec, 512, func(id message.ID) {
		if prec == message.Flash {
			s.flash.Store(id, true)
		}
	})
}

// TestFlashNotBehindBatchBeingChecked: a FLASH that arrives while the
// receiver checks a ROUTINE batch is stored at once, not after it.
func TestFlashNotBehindBatchBeingChecked(t *testing.T) {
	in, p := stallingPair(t, false)
	in.put(p, message.Routine)
	<-in.stalled
	f := in.put(p, message.Flash)
	waitFor(t, 10*time.Second, "the FLASH stored while the ROUTINE batch is being checked", func() bool { return slices.Contains(in.orderCopy(), f) })
	in.unstall()
	waitFor(t, 10*time.Second, "both stored", func() bool { return in.unique() == 2 })
}

// TestBatchWaitsForFlash: a batch of lower precedence checked while a FLASH
// is being stored is stored after it.
func TestBatchWaitsForFlash(t *testing.T) {
	in, p := stallingPair(t, true)
	f := in.put(p, message.Flash)
	<-in.stalled
	r := in.put(p, message.Immediate)
	time.Sleep(200 * time.Millisecond) // time for the IMMEDIATE to arrive and be checked
	if slices.Contains(in.orderCopy(), r) {
		t.Fatal("the IMMEDIATE was stored while the FLASH received before it was still being stored")
	}
	in.unstall()
	waitFor(t, 10*time.Second, "both stored", func() bool { return in.unique() == 2 })
	if got := in.orderCopy(); len(got) != 2 || got[0] != f || got[1] != r {
		t.Fatalf("stored %v, want the FLASH %s then the IMMEDIATE %s", got, f, r)
	}
}

// TestBatchCheckedAfterFlash: the receiver does not begin checking a batch
// of lower precedence while a FLASH received before it is still being
// stored, so that the FLASH has the CPU.
func TestBatchCheckedAfterFlash(t *testing.T) {
	in, p := stallingPair(t, true)
	in.put(p, message.Flash)
	<-in.stalled
	r := in.put(p, message.Immediate)
	time.Sleep(200 * time.Millisecond) // time for the IMMEDIATE to arrive, and for an accepter that does not wait to check it
	in.unstall()
	waitFor(t, 10*time.Second, "both stored", func() bool { return in.unique() == 2 })
	if n, _ := in.checking.Load(r); n != 1 {
		t.Fatalf("the IMMEDIATE's check began with %v messages stored, want 1: after the FLASH received before it", n)
	}
}
