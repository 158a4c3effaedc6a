package cot

import (
	"context"
	"slices"
	"sync"

	"liaison/internal/message"
)

// fakeNet stands in for two or more federated nodes: a message submitted on
// one node is delivered locally and to every other node whose party its
// label's "Releasable To" set names. No such set: not releasable.
type fakeNet struct {
	mu    sync.Mutex
	nodes []*fakeCore
}

type fakeCore struct {
	net   *fakeNet
	party string
	mu    sync.Mutex
	seq   uint64
	subs  map[string][]chan Delivery
}

func (n *fakeNet) node(party string) *fakeCore {
	c := &fakeCore{net: n, party: party, subs: map[string][]chan Delivery{}}
	n.mu.Lock()
	n.nodes = append(n.nodes, c)
	n.mu.Unlock()
	return c
}

func releasable(label []byte, party string) bool {
	p, err := ParseLabel(label)
	if err != nil {
		return false
	}
	return slices.Contains(p.Categories[DefaultRelToTag], party)
}

func (c *fakeCore) Submit(ctx context.Context, m *message.Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	c.net.mu.Lock()
	nodes := slices.Clone(c.net.nodes)
	c.net.mu.Unlock()
	for _, n := range nodes {
		if n == c || releasable(m.Label, n.party) {
			n.deliver(ctx, m)
		}
	}
	return nil
}

func (c *fakeCore) deliver(ctx context.Context, m *message.Message) {
	c.mu.Lock()
	c.seq++
	d := Delivery{Seq: c.seq, Msg: m, LocalLabel: m.Label}
	subs := slices.Clone(c.subs[m.Channel])
	c.mu.Unlock()
	for _, s := range subs {
		select {
		case s <- d: // blocks when full: backpressure, never loss
		case <-ctx.Done():
		}
	}
}

func (c *fakeCore) Subscribe(ctx context.Context, channel string, after uint64) (<-chan Delivery, error) {
	ch := make(chan Delivery, 256)
	c.mu.Lock()
	c.subs[channel] = append(c.subs[channel], ch)
	c.mu.Unlock()
	return ch, nil
}

// memAudit collects audit records.
type memAudit struct {
	mu  sync.Mutex
	rec []Record
}

func (a *memAudit) Audit(_ context.Context, r Record) {
	a.mu.Lock()
	a.rec = append(a.rec, r)
	a.mu.Unlock()
}

func (a *memAudit) records(kind string) []Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Record
	for _, r := range a.rec {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}
