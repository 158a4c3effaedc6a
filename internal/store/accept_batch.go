package store

import (
	"context"
	"fmt"

	"liaison/internal/message"
)

// AcceptItem is one message of an AcceptBatch, with the arguments Accept
// takes for it.
type AcceptItem struct {
	Msg    *message.Message
	Routes []Route
	Audit  [][]byte
}

// AcceptResult is what Accept would have returned for one item.
type AcceptResult struct {
	Seq uint64
	Dup bool
}

// maxDedupIn bounds the ids one de-duplication query asks about.
const maxDedupIn = 128

// AcceptBatch implements Store.
func (c *core) AcceptBatch(ctx context.Context, items []AcceptItem) ([]AcceptResult, error) {
	if len(items) == 0 {
		return nil, nil
	}
	for i, it := range items {
		if err := checkAccept(it.Msg, it.Routes); err != nil {
			return nil, fmt.Errorf("accept batch item %d: %w", i, err)
		}
	}
	out := make([]AcceptResult, len(items))
	write := c.write
	if c.accept != nil {
		write = c.accept
	}
	err := write(ctx, func(ctx context.Context, q querier) error {
		return c.acceptTx(ctx, q, items, out)
	})
	if err != nil {
		return nil, fmt.Errorf("accept batch of %d: %w", len(items), err)
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

// acceptTx is the body of Accept and AcceptBatch, in the caller's
// transaction: it stores every item that is not a duplicate (of history or
// of an earlier item) under consecutive sequence numbers in slice order,
// and fills out. When every item is a duplicate it returns errRollback.
func (c *core) acceptTx(ctx context.Context, q querier, items []AcceptItem, out []AcceptResult) error {
	clear(out)
	now := c.nowNano()
	// The counter row lock serialises Accepts (on PostgreSQL across
	// instances), so seqs are assigned in commit order and the
	// de-duplication check below cannot race.
	var top int64
	if _, err := one(ctx, q, `UPDATE counters SET v = v + ? WHERE name = 'history' RETURNING v`, []any{int64(len(items))}, &top); err != nil {
		return err
	}
	seen, err := c.dedupSeqs(ctx, q, items)
	if err != nil {
		return err
	}
	next := top - int64(len(items)) + 1
	var st []stmt
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
		st = append(st,
			stmt{`INSERT INTO dedup (id, seq, accepted) VALUES (?, ?, ?)`, []any{idb(m.ID), seq, now}},
			stmt{`INSERT INTO messages (` + msgCols + `, accepted) VALUES (` + placeholders(13) + `)`, msgArgs(seq, m, now)})
		for _, r := range it.Routes {
			st = append(st, stmt{upsertDelivery, []any{idb(m.ID), r.Peer, string(r.State), r.Code, r.Reason, now}})
			if r.State == Queued || r.State == Held {
				st = append(st, queueStmt(m.ID, r.Peer, seq, int64(m.Precedence), r.State == Held))
			}
		}
		for k, rec := range it.Audit {
			st = append(st, stmt{`INSERT INTO audit_pending (seq, n, record) VALUES (?, ?, ?)`, []any{seq, int64(k), nonNil(rec)}})
		}
	}
	if len(st) == 0 {
		return errRollback // all duplicates: leave the counter as it was
	}
	if next <= top {
		// Some were duplicates: give back the numbers they did not use,
		// so that sequence numbers have no gaps.
		st = append(st, stmt{`UPDATE counters SET v = ? WHERE name = 'history'`, []any{next - 1}})
	}
	// None of it needs answers: one round trip on PostgreSQL.
	return q.execAll(ctx, st)
}

// dedupSeqs returns the seqs under which items' ids were accepted before.
func (c *core) dedupSeqs(ctx context.Context, q querier, items []AcceptItem) (map[message.ID]int64, error) {
	seen := make(map[message.ID]int64, len(items))
	args := make([]any, 0, maxDedupIn)
	for start := 0; start < len(items); start += maxDedupIn {
		chunk := items[start:min(start+maxDedupIn, len(items))]
		// Pad to a power of two with the first id so that few distinct
		// statements are prepared.
		k := 1
		for k < len(chunk) {
			k *= 2
		}
		args = args[:0]
		for i := range k {
			args = append(args, idb(chunk[min(i, len(chunk)-1)].Msg.ID))
		}
		var sql string
		if k == 1 {
			sql = `SELECT id, seq FROM dedup WHERE id = ?`
		} else {
			sql = `SELECT id, seq FROM dedup WHERE id IN (` + placeholders(k) + `)`
		}
		rs, err := q.query(ctx, sql, args...)
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
