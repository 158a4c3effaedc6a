package store

import (
	"context"
	"fmt"
	"slices"

	"liaison/internal/message"
)

// AcceptItem is one message of an AcceptBatch, with the arguments Accept
// takes for it.
type AcceptItem struct {
	Msg    *message.Message
	Routes []Route
	Audit  [][]byte

	packed *packedMsg // Msg's label and alternatives as stored, packed by the caller's goroutine
}

// AcceptResult is what Accept would have returned for one item.
type AcceptResult struct {
	Seq uint64
	Dup bool
}

// AcceptBatch implements Store.
func (c *core) AcceptBatch(ctx context.Context, items []AcceptItem) ([]AcceptResult, error) {
	if len(items) == 0 {
		return nil, nil
	}
	items = slices.Clone(items) // the caller's stay as they were
	for i, it := range items {
		if err := checkAccept(it.Msg, it.Routes); err != nil {
			return nil, fmt.Errorf("accept batch item %d: %w", i, err)
		}
		items[i].packed = packMsg(it.Msg)
	}
	out := make([]AcceptResult, len(items))
	if err := c.accept(ctx, items, out); err != nil {
		return nil, fmt.Errorf("accept batch of %d: %w", len(items), err)
	}
	now := c.nowNano()
	for i, it := range items {
		c.leases.took(it.Msg, out[i], it.Routes, now)
	}
	return out, nil
}

func checkAccept(m *message.Message, routes []Route) error {
	if m == nil {
		return fmt.Errorf("accept: nil message")
	}
	for _, r := range routes {
		if !validState(r.State) {
			return fmt.Errorf("accept %s: unknown delivery state %q for %q", m.ID, r.State, r.Peer)
		}
	}
	return nil
}

// The statements of acceptTx, each carrying many rows.
var (
	insDedup    = valuesList(`INSERT INTO dedup (id, seq, accepted) VALUES `, 3, ``)
	insMessages = valuesList(`INSERT INTO messages (`+msgCols+`, accepted) VALUES `, 13, ``)
	upsDelivery = valuesList(`INSERT INTO deliveries (msg_id, peer, state, code, reason, at) VALUES `, 6, `
	ON CONFLICT (msg_id, peer) DO UPDATE SET state = excluded.state, code = excluded.code, reason = excluded.reason, at = excluded.at`)
	// upsQueue inserts or re-activates a queue row, clearing any lease.
	upsQueue = valuesList(`INSERT INTO queue (msg_id, peer, seq, precedence, held, lease_until) VALUES `, 6, `
	ON CONFLICT (msg_id, peer) DO UPDATE SET held = excluded.held, lease_until = 0`)
	insAudit = valuesList(`INSERT INTO audit_pending (seq, n, record) VALUES `, 3, ``)
	selDedup = inList(`SELECT id, seq FROM dedup WHERE id IN (`, `)`)
)

const (
	takeSeqs = `UPDATE counters SET v = v + ? WHERE name = 'history' RETURNING v`
	giveBack = `UPDATE counters SET v = ? WHERE name = 'history'`
)

// acceptTx is the body of Accept and AcceptBatch, in the caller's
// transaction: it stores every item that is not a duplicate (of history or
// of an earlier item) under consecutive sequence numbers in slice order,
// and fills out. When every item is a duplicate it returns errRollback.
//
// Whatever the batch size it runs a handful of statements: each table's
// rows go in multi-row statements (see rowList).
func (c *core) acceptTx(ctx context.Context, q querier, items []AcceptItem, out []AcceptResult) error {
	clear(out)
	now := c.nowNano()
	// The counter row lock serialises Accepts (on PostgreSQL across
	// instances), so seqs are assigned in commit order and the
	// de-duplication check below cannot race.
	var top int64
	if _, err := one(ctx, q, takeSeqs, []any{int64(len(items))}, &top); err != nil {
		return err
	}
	seen, err := c.dedupSeqs(ctx, q, items)
	if err != nil {
		return err
	}
	next := top - int64(len(items)) + 1
	var dedup, msgs, dels, queue, audit []any // rows, flattened
	for i, it := range items {
		m := it.Msg
		if seq, ok := seen[m.ID]; ok {
			out[i] = AcceptResult{Seq: uint64(seq), Dup: true}
			continue
		}
		seq := next
		next++
		seen[m.ID] = seq
		out[i] = AcceptResult{Seq: uint64(seq)}
		id := idb(m.ID)
		dedup = append(dedup, id, seq, now)
		pk := it.packed // Accept and AcceptBatch pack before the writer
		if pk == nil {  // an accept queued some other way (tests)
			pk = packMsg(m)
		}
		msgs = appendMsgArgs(msgs, seq, m, pk, now)
		for j, r := range it.Routes {
			if !laterRoute(it.Routes, j, false) {
				dels = append(dels, id, r.Peer, string(r.State), r.Code, r.Reason, now)
			}
			if (r.State == Queued || r.State == Held) && !laterRoute(it.Routes, j, true) {
				queue = append(queue, id, r.Peer, seq, int64(m.Precedence), heldInt(r.State == Held), leaseUntil(r, now))
			}
		}
		for k, rec := range it.Audit {
			audit = append(audit, seq, int64(k), nonNil(rec))
		}
	}
	if len(dedup) == 0 {
		return errRollback // all duplicates: leave the counter as it was
	}
	st := insDedup.appendTo(nil, nil, dedup)
	st = insMessages.appendTo(st, nil, msgs)
	st = upsDelivery.appendTo(st, nil, dels)
	st = upsQueue.appendTo(st, nil, queue)
	st = insAudit.appendTo(st, nil, audit)
	if next <= top {
		// Some were duplicates: give back the numbers they did not use,
		// so that sequence numbers have no gaps.
		st = append(st, stmt{giveBack, []any{next - 1}})
	}
	// None of it needs answers: one round trip on PostgreSQL.
	return q.execAll(ctx, st)
}

// laterRoute reports whether a route after routes[j] names the same peer
// (and, for queue, is queued or held). Upserting one row at a time lets the
// last of them win; one multi-row upsert must not name a row twice
// (PostgreSQL refuses to), so acceptTx keeps only that last one.
func laterRoute(routes []Route, j int, queue bool) bool {
	for _, r := range routes[j+1:] {
		if r.Peer == routes[j].Peer && (!queue || r.State == Queued || r.State == Held) {
			return true
		}
	}
	return false
}

// leaseUntil is a new queue row's lease_until: 0 (not leased) unless the
// route asks for it to be stored leased.
func leaseUntil(r Route, now int64) int64 {
	if r.State != Queued || r.LeaseFor <= 0 {
		return 0
	}
	return now + int64(r.LeaseFor)
}

func heldInt(held bool) int64 {
	if held {
		return 1
	}
	return 0
}

// dedupSeqs returns the seqs under which items' ids were accepted before.
func (c *core) dedupSeqs(ctx context.Context, q querier, items []AcceptItem) (map[message.ID]int64, error) {
	seen := make(map[message.ID]int64, len(items))
	ids := make([]any, len(items))
	for i, it := range items {
		ids[i] = idb(it.Msg.ID)
	}
	for _, s := range selDedup.appendTo(nil, nil, ids) {
		rs, err := q.query(ctx, s.sql, s.args...)
		if err != nil {
			return nil, err
		}
		for rs.Next() {
			var id []byte
			var seq int64
			if err := rs.Scan(&id, &seq); err != nil {
				rs.Close()
				return nil, err
			}
			if len(id) == 16 {
				seen[message.ID(id)] = seq
			}
		}
		err = rs.Err()
		rs.Close()
		if err != nil {
			return nil, err
		}
	}
	return seen, nil
}

// MarkSentBatch implements Store.
func (c *core) MarkSentBatch(ctx context.Context, peer string, ids ...message.ID) error {
	if len(ids) == 0 {
		return nil
	}
	err := c.write(relaxed(ctx), func(ctx context.Context, q querier) error {
		return q.execAll(ctx, markSent.appendTo(nil, []any{string(Sent), c.nowNano(), peer, string(Queued)}, idArgs(ids)))
	})
	if err != nil {
		return fmt.Errorf("mark %d sent to %q: %w", len(ids), peer, err)
	}
	return nil
}
