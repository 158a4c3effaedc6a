package federation

import (
	"context"
	"slices"
	"sync"
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
	for _, backlog := range []int{0, 20_000} {
		name := "unloaded"
		if backlog > 0 {
			name = "backlog=20000"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				lat, rate := costFlashLatencies(b, backlog, 200)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				if backlog > 0 {
					b.ReportMetric(rate, "drain-msgs/s")
				}
			}
		})
	}
}

func costFlashLatencies(b *testing.B, backlog, samples int) ([]time.Duration, float64) {
	node := func(c *Config) { c.LeaseBatch, c.Window = 128, 256 }
	p := newPair(b, func(c *Config) {
		node(c)
		c.Outbox = costOutbox{c.Outbox.(*fakeOutbox)}
	}, func(c *Config) {
		node(c)
		c.Inbox = costInbox{c.Inbox.(*fakeInbox)}
	})
	waitFor(b, 10*time.Second, "link up", func() bool { return p.a.up("XBB") })
	var mu sync.Mutex
	arrived := map[message.ID]chan struct{}{}
	p.b.in.onNew = func(id message.ID) {
		mu.Lock()
		if c := arrived[id]; c != nil {
			close(c)
		}
		mu.Unlock()
	}
	start := time.Now()
	for range backlog {
		p.a.out.putMsg("XBB", message.Routine, 2<<10)
	}
	var lat []time.Duration
	for range samples {
		if backlog > 0 && p.a.out.len("XBB") < backlog/10 {
			break // measure while the backlog is still large
		}
		c := make(chan struct{})
		t0 := time.Now()
		p.a.out.putMsgWatch("XBB", message.Flash, 2<<10, func(id message.ID) {
			mu.Lock()
			arrived[id] = c
			mu.Unlock()
		})
		<-c
		lat = append(lat, time.Since(t0))
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(b, 5*time.Minute, "backlog drained", func() bool { return p.b.in.unique() >= backlog+len(lat) })
	rate := float64(backlog) / time.Since(start).Seconds()
	slices.Sort(lat)
	return lat, rate
}
