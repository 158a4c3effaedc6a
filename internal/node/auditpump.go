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

// auditPump runs until ctx is done, then drains once more.
func (n *Node) auditPump(ctx context.Context) {
	for {
		n.drainAudit(context.WithoutCancel(ctx))
		select {
		case <-ctx.Done():
			n.drainAudit(context.WithoutCancel(ctx))
			return
		case <-n.auditWork:
		case <-time.After(time.Second):
		}
	}
}

func (n *Node) drainAudit(ctx context.Context) {
	for {
		pending, err := n.store.PendingAudit(ctx, 512)
		if err != nil || len(pending) == 0 {
			if err != nil {
				n.log.Error("reading pending audit records", slog.Any("error", err))
			}
			return
		}
		waits := make([]func() (uint64, error), 0, len(pending))
		ids := make([]int64, 0, len(pending))
		for _, p := range pending {
			e, err := audit.ParseEntry(p.Record)
			if err != nil {
				// A record this node wrote that no longer parses is a bug
				// or a corrupted store: keep it for inspection, say so.
				n.log.Error("pending audit record does not parse", slog.Int64("id", p.ID), slog.Any("error", err))
				n.metrics.auditErrors.Inc()
				continue
			}
			waits = append(waits, n.audit.AppendAsync(ctx, e))
			ids = append(ids, p.ID)
		}
		failed := false
		for _, w := range waits {
			if _, err := w(); err != nil {
				failed = true
				n.metrics.auditErrors.Inc()
				n.log.Error("audit append failed; will retry", slog.Any("error", err))
			}
		}
		if failed || len(ids) == 0 {
			return
		}
		if err := n.store.DoneAudit(ctx, ids...); err != nil {
			n.log.Error("clearing pending audit records", slog.Any("error", err))
			return
		}
	}
}
