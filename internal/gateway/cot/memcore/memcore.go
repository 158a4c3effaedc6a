// Package memcore is an in-memory, single-node [cot.Core] for benchmarks
// and tests of the TAK gateway: every submitted message is delivered to the
// channel's local subscribers with its own label as the local label. It
// runs no guard and keeps no history; it is not a node.
//
// Delivery blocks while a subscriber's buffer is full, so a slow consumer
// pushes back on Submit instead of losing messages.
package memcore

import (
	"context"
	"slices"
	"sync"

	"liaison/internal/gateway/cot"
	"liaison/internal/message"
)

// Core is the in-memory core. The zero value is ready to use.
type Core struct {
	// Buffer is each subscription's channel capacity (default 256).
	Buffer int

	mu   sync.Mutex // guards the fields below
	seq  uint64
	subs map[string][]chan cot.Delivery
}

var _ cot.Core = (*Core)(nil)

// Submit validates m and delivers it to the channel's subscribers.
func (c *Core) Submit(ctx context.Context, m *message.Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	c.seq++
	d := cot.Delivery{Seq: c.seq, Msg: m, LocalLabel: m.Label}
	subs := slices.Clone(c.subs[m.Channel])
	c.mu.Unlock()
	for _, s := range subs {
		select {
		case s <- d:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Subscribe returns the channel's future deliveries; after is ignored
// (there is no history).
func (c *Core) Subscribe(ctx context.Context, channel string, after uint64) (<-chan cot.Delivery, error) {
	n := c.Buffer
	if n <= 0 {
		n = 256
	}
	ch := make(chan cot.Delivery, n)
	c.mu.Lock()
	if c.subs == nil {
		c.subs = map[string][]chan cot.Delivery{}
	}
	c.subs[channel] = append(c.subs[channel], ch)
	c.mu.Unlock()
	return ch, nil
}
