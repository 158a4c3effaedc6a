package node

import (
	"context"
	"log/slog"
	"time"

	"liaison/internal/audit"
)

// The audit pump moves audit records that were written in a message's
// accepting transaction (store.PendingAudit) into the audit log, and
// removes them from the store once the log has them. A crash in between
// appends them again after the restart: an entry may appear twice, never
// not at all.

// auditRecords encodes entries for the store, stamping time and party.
func (n *Node) auditRecords(entries []audit.Entry, now time.Time) ([][]byte, error) {
	out := make([][]byte, len(entries))
	for i, e := range entries {
		if e.At.IsZero() {
			e.At = now
		}
		if e.Party == "" {
			e.Party = n.party
		}
		b, err := e.MarshalBinary()
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// pumpAudit wakes the pump.
func (n *Node) pumpAudit() {
	select {
	case n.auditWork <- struct{}{}:
	default:
	}
}

// auditChunk is how many pending records the pump reads and appends at a
// time.
const auditChunk = audit.DefaultBatchMaxSize

// auditPace is the least time between the pump's reads while records keep
// coming. The log's storage writes and flushes a handful of files for each
// append it integrates, whatever its size, on the disk the store flushes
// its commits to; so under load the pump appends a few large batches a
// second rather than one every few milliseconds. A full chunk is followed
// at once. Records wait in the store meanwhile, durable.
const auditPace = 250 * time.Millisecond

// auditPump runs until ctx is done, then drains once more. It reads on
// from the last record it pumped (the store never commits a record below
// one it has shown), and after a failure starts again from the oldest
// pending record.
func (n *Node) auditPump(ctx context.Context) {
	var after int64
	final := func() { n.drainAudit(context.WithoutCancel(ctx), after) }
	for {
		start := time.Now()
		after = n.drainAudit(context.WithoutCancel(ctx), after)
		select {
		case <-ctx.Done():
			final()
			return
		case <-n.auditWork:
		case <-time.After(time.Second):
		}
		if d := auditPace - time.Since(start); d > 0 {
			select {
			case <-ctx.Done():
				final()
				return
			case <-time.After(d):
			}
		}
	}
}

// auditChunkInFlight is a chunk of records queued on the audit log.
type auditChunkInFlight struct {
	wait func() (failed int, err error)
	runs [][2]int64 // ID ranges of the records queued
	last int64      // ID of the last record read
	full bool       // auditChunk records were read: more may be waiting
}

// drainAudit pumps the records after the given ID until it reads fewer
// than a full chunk, and returns the ID to read on from: that of the last
// record pumped, or 0 after a failure, so that whatever is still pending
// is pumped again. While chunks are full it queues the next on the log
// before waiting for the one before, so that the log always has a batch to
// sequence.
func (n *Node) drainAudit(ctx context.Context, after int64) int64 {
	var prev *auditChunkInFlight
	for {
		cur, ok := n.queueAudit(ctx, after)
		if cur != nil {
			after = cur.last
		}
		if prev != nil && !n.finishAudit(ctx, prev) {
			ok = false
		}
		if !ok {
			if cur != nil {
				n.finishAudit(ctx, cur)
			}
			return 0
		}
		if cur == nil {
			return after
		}
		if !cur.full { // caught up
			if !n.finishAudit(ctx, cur) {
				return 0
			}
			return after
		}
		prev = cur
	}
}

// queueAudit reads the next chunk of pending records and queues those that
// parse on the audit log; it returns nil if there are none, and false if
// reading failed.
func (n *Node) queueAudit(ctx context.Context, after int64) (*auditChunkInFlight, bool) {
	n.flash.wait(ctx) // bulk work: after a FLASH being submitted
	pending, err := n.store.PendingAudit(ctx, after, auditChunk)
	if err != nil {
		n.log.Error("reading pending audit records", slog.Any("error", err))
		return nil, false
	}
	if len(pending) == 0 {
		return nil, true
	}
	c := &auditChunkInFlight{last: pending[len(pending)-1].ID, full: len(pending) >= auditChunk}
	recs := make([][]byte, len(pending))
	for i, p := range pending {
		recs[i] = p.Record
	}
	bad, wait := n.audit.AppendEncoded(ctx, recs)
	c.wait = wait
	run := false
	for i, p := range pending {
		if err := bad[i]; err != nil {
			// A record this node wrote that no longer parses is a bug
			// or a corrupted store: keep it for inspection (the ranges
			// removed leave it out), say so.
			n.log.Error("pending audit record does not parse", slog.Int64("id", p.ID), slog.Any("error", err))
			n.metrics.auditErrors.Inc()
			run = false
			continue
		}
		if run {
			c.runs[len(c.runs)-1][1] = p.ID
		} else {
			c.runs = append(c.runs, [2]int64{p.ID, p.ID})
			run = true
		}
	}
	return c, true
}

// finishAudit waits until the log has a chunk, then removes it from the
// store, one statement per range; it reports whether both worked.
func (n *Node) finishAudit(ctx context.Context, c *auditChunkInFlight) bool {
	if failed, err := c.wait(); err != nil {
		n.metrics.auditErrors.Add(float64(failed))
		n.log.Error("audit append failed; will retry", slog.Int("entries", failed), slog.Any("error", err))
		return false
	}
	for _, r := range c.runs {
		if err := n.store.DoneAudit(ctx, r[0], r[1]); err != nil {
			n.log.Error("clearing pending audit records", slog.Any("error", err))
			return false
		}
	}
	return true
}
