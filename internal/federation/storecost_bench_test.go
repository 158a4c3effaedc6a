package federation

import (
	"context"
	"testing"
	"time"

	"liaison/internal/message"
)

// Store costs for BenchmarkFlashLatencyStoreCost, of the order the node's
// SQLite store and envelope sealer show under a backlog: a lease is a
// group-committed write plus sealing, an accept is a check per message
// plus a commit.
const (
	costLease       = 3 * time.Millisecond
	costLeasePerMsg = 30 * time.Microsecond
	costAck         = 2 * time.Millisecond
	costPrepPerMsg  = 40 * time.Microsecond
	costCommit      = 2 * time.Millisecond
	costCommitPer   = 10 * time.Microsecond
)

// costOutbox is a fakeOutbox whose calls take a store's time.
type costOutbox struct{ *fakeOutbox }

func (o costOutbox) Lease(ctx context.Context, peer string, n int) ([]Outgoing, error) {
	time.Sleep(costLease / 2) // waiting for the group commit
	out, err := o.fakeOutbox.Lease(ctx, peer, n)
	time.Sleep(costLease/2 + time.Duration(len(out))*costLeasePerMsg) // commit, read, seal
	return out, err
}

func (o costOutbox) Ack(ctx context.Context, peer string, ids ...message.ID) error {
	time.Sleep(costAck)
	return o.fakeOutbox.Ack(ctx, peer, ids...)
}

// costInbox is a PreparingInbox whose checks and commits take a store's time.
type costInbox struct{ *fakeInbox }

func (in costInbox) PrepareBatch(ctx context.Context, from string, wires [][]byte) func() []error {
	time.Sleep(time.Duration(len(wires)) * costPrepPerMsg)
	return func() []error {
		time.Sleep(costCommit + time.Duration(len(wires))*costCommitPer)
		return in.fakeInbox.AcceptBatch(ctx, from, wires)
	}
}

// BenchmarkFlashLatencyStoreCost is BenchmarkFlashLatency with the node's
// settings (lease batch 128, window 256) and fakes that take a store's
// time, so that a FLASH can be seen waiting behind ROUTINE work at either
// end (run with -benchtime=1x).
func BenchmarkFlashLatencyStoreCost(b *testing.B) {
	node := func(c *Config) { c.LeaseBatch, c.Window = 128, 256 }
	benchFlash(b, 20_000, flashRun{
		a: func(c *Config) {
			node(c)
			c.Outbox = costOutbox{c.Outbox.(*fakeOutbox)}
		},
		b: func(c *Config) {
			node(c)
			c.Inbox = costInbox{c.Inbox.(*fakeInbox)}
		},
		size:  2 << 10,
		gap:   5 * time.Millisecond,
		drain: true,
	})
}
