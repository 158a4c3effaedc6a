package federation

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"liaison/internal/message"
)

// putLeased queues a message already leased, as a node's store does with a
// FLASH it accepts while the link is up, and returns it for Hand.
func (o *fakeOutbox) putLeased(peer string, p message.Precedence, size int) Outgoing {
	id := message.NewID()
	it := &fakeItem{Outgoing: Outgoing{ID: id, Precedence: p, Wire: testWire(id, size)}, leased: true}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.add(peer, it)
	return it.Outgoing
}

// stuckLeases makes every Lease of o wait until the test ends.
func stuckLeases(t *testing.T, o *fakeOutbox) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // runs before the nodes' Close
	o.mu.Lock()
	o.hook = func(ctx context.Context, n int) {
		select {
		case <-stop:
		case <-ctx.Done():
		}
	}
	o.mu.Unlock()
}

// Hand puts a message the node leased itself on the link at once: it
// arrives, and its custody ACK reaches the Outbox, while every lease of the
// link's own is stuck. Without a session Hand refuses, and the caller keeps
// the message.
func TestHandSendsWithoutLease(t *testing.T) {
	p := newPair(t, nil, nil)
	waitFor(t, 10*time.Second, "link up", func() bool { return p.a.m.Connected("XBB") && p.b.m.Connected("XAA") })
	stuckLeases(t, p.a.out)
	for range 50 {
		p.a.out.putMsg("XBB", message.Routine, 1<<10) // the link cannot lease these
	}
	f := p.a.out.putLeased("XBB", message.Flash, 1<<10)
	if !p.a.m.Hand("XBB", []Outgoing{f}) {
		t.Fatal("Hand refused a message for a live link")
	}
	waitFor(t, 10*time.Second, "the handed FLASH at XBB", func() bool { return slices.Contains(p.b.in.orderCopy(), f.ID) })
	waitFor(t, 10*time.Second, "its custody ACK", func() bool { p.a.out.mu.Lock(); defer p.a.out.mu.Unlock(); return p.a.out.acked == 1 })
	if n := p.b.in.unique(); n != 1 {
		t.Errorf("XBB received %d messages, want only the handed one (leases are stuck)", n)
	}

	if p.a.m.Connected("XCC") || p.a.m.Hand("XCC", []Outgoing{p.a.out.putLeased("XCC", message.Flash, 10)}) {
		t.Error("Hand took a message for a party with no link")
	}
}

// streamOutbox is a StreamingOutbox that emits a lease's first part, then
// waits for gate before the rest.
type streamOutbox struct {
	*fakeOutbox
	gate chan struct{}
	once sync.Once
}

func (s *streamOutbox) LeaseStream(ctx context.Context, peer string, n int, emit func([]Outgoing)) error {
	out, err := s.Lease(ctx, peer, n)
	if err != nil || len(out) == 0 {
		return err
	}
	emit(out[:1])
	s.once.Do(func() { <-s.gate })
	emit(out[1:])
	return nil
}

// A StreamingOutbox's first part goes on the wire while it is still
// preparing the rest of the lease.
func TestLeaseStreamSendsFirstPartEarly(t *testing.T) {
	gate := make(chan struct{})
	var so *streamOutbox
	p := newPairNoDial(t, func(c *Config) {
		so = &streamOutbox{fakeOutbox: c.Outbox.(*fakeOutbox), gate: gate}
		c.Outbox = so
	}, nil)
	f := p.a.out.putMsg("XBB", message.Flash, 1<<10)
	for range 20 {
		p.a.out.putMsg("XBB", message.Routine, 1<<10)
	}
	p.a.m.AddPeer("XBB", p.b.addr)
	waitFor(t, 10*time.Second, "the lease's first part at XBB", func() bool { return slices.Contains(p.b.in.orderCopy(), f) })
	if n := p.b.in.unique(); n != 1 {
		t.Errorf("XBB has %d messages before the rest of the lease was emitted, want 1", n)
	}
	close(gate)
	waitFor(t, 10*time.Second, "the rest", func() bool { return p.b.in.unique() == 21 })
}
