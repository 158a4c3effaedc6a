package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"liaison/internal/message"
)

// core implements Store on top of a write path (one transaction per
// function; SQLite batches them) and a read path. The SQL lives here,
// once, for both databases.
type core struct {
	d     dialect
	now   func() time.Time
	write func(ctx context.Context, fn func(ctx context.Context, q querier) error) error
	// accept is the write path of Accept and AcceptBatch: it runs acceptTx
	// (with other callers', see batcher) and commits.
	accept func(ctx context.Context, items []AcceptItem, out []AcceptResult) error
	read   func(ctx context.Context, fn func(ctx context.Context, q querier) error) error
	// leases, when set, keeps leases in memory (see memLeases): a store
	// that one process owns.
	leases *memLeases
}

func (c *core) nowNano() int64 { return c.now().UnixNano() }

func validState(s DeliveryState) bool {
	switch s {
	case Queued, Held, Sent, Delivered, Denied, Quarantined, Refused:
		return true
	}
	return false
}

func (c *core) Accept(ctx context.Context, m *message.Message, routes []Route, audit ...[]byte) (uint64, bool, error) {
	if err := checkAccept(m, routes); err != nil {
		return 0, false, err
	}
	var out [1]AcceptResult
	if err := c.accept(ctx, []AcceptItem{{Msg: m, Routes: routes, Audit: audit, packed: packMsg(m)}}, out[:]); err != nil {
		return 0, false, fmt.Errorf("accept %s: %w", m.ID, err)
	}
	c.leases.took(m, out[0], routes, c.nowNano())
	return out[0].Seq, out[0].Dup, nil
}

func (c *core) Lease(ctx context.Context, peer string, n int, ttl time.Duration) ([]Leased, error) {
	if n <= 0 {
		return nil, nil
	}
	if c.leases != nil {
		return c.leaseMem(ctx, peer, n, ttl)
	}
	type cand struct{ seq, prec int64 }
	var cands []cand
	err := c.write(relaxed(ctx), func(ctx context.Context, q querier) error {
		cands = cands[:0]
		now := c.nowNano()
		rs, err := q.query(ctx, `UPDATE queue SET lease_until = ? WHERE (msg_id, peer) IN (
				SELECT qq.msg_id, qq.peer FROM queue qq
				WHERE qq.peer = ? AND qq.held = 0 AND qq.lease_until <= ?
				  AND NOT EXISTS (SELECT 1 FROM peer_hold h WHERE h.peer = qq.peer AND h.held = 1)
				ORDER BY qq.precedence, qq.seq LIMIT ? `+c.d.lock+`)
			RETURNING seq, precedence`,
			now+int64(ttl), peer, now, int64(n))
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var x cand
			if err := rs.Scan(&x.seq, &x.prec); err != nil {
				return err
			}
			cands = append(cands, x)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("lease for %q: %w", peer, err)
	}
	if len(cands) == 0 {
		return nil, nil
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.prec != b.prec {
			return int(a.prec - b.prec)
		}
		return int(a.seq - b.seq)
	})
	// The IN list is padded to a power of two by repeating the last seq,
	// so that the read path prepares a handful of statements, not one
	// per batch size.
	args := make([]any, inListLen(len(cands)))
	for i := range args {
		args[i] = cands[min(i, len(cands)-1)].seq
	}
	bySeq := make(map[uint64]*message.Message, len(cands))
	err = c.read(ctx, func(ctx context.Context, q querier) error {
		rs, err := q.query(ctx, `SELECT `+msgCols+` FROM messages WHERE seq IN (`+placeholders(len(args))+`)`, args...)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			m, seq, err := scanMsg(rs)
			if err != nil {
				return err
			}
			bySeq[seq] = m
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("lease for %q: %w", peer, err)
	}
	out := make([]Leased, 0, len(cands))
	for _, x := range cands {
		if m := bySeq[uint64(x.seq)]; m != nil {
			out = append(out, Leased{Message: m, Seq: uint64(x.seq)})
		}
	}
	return out, nil
}

// The statements of Ack, Release and MarkSentBatch: the ids go in IN
// lists, after the fixed values. Each is meant to find its rows by primary
// key (msg_id, peer).
var (
	delQueue = inList(`DELETE FROM queue WHERE peer = ? AND msg_id IN (`, `)`)
	setState = inList(`UPDATE deliveries SET state = ?, at = ? WHERE peer = ? AND msg_id IN (`, `)`)
	// state || '' keeps the state test out of index choice: SQLite, which
	// has no statistics here, would otherwise read every delivery queued
	// for the peer through deliveries_state (state, peer) instead of
	// looking the ids up by primary key (TestSQLiteInListPlans).
	markSent = inList(`UPDATE deliveries SET state = ?, at = ? WHERE peer = ? AND state || '' = ? AND msg_id IN (`, `)`)
	unleaseQ = inList(`UPDATE queue SET lease_until = 0 WHERE peer = ? AND msg_id IN (`, `)`)
)

func idArgs(ids []message.ID) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = idb(id)
	}
	return args
}

func (c *core) Ack(ctx context.Context, peer string, ids ...message.ID) error {
	if len(ids) == 0 {
		return nil
	}
	err := c.write(relaxed(ctx), func(ctx context.Context, q querier) error {
		args := idArgs(ids)
		st := delQueue.appendTo(nil, []any{peer}, args)
		st = setState.appendTo(st, []any{string(Delivered), c.nowNano(), peer}, args)
		return q.execAll(ctx, st)
	})
	if err != nil {
		return fmt.Errorf("ack for %q: %w", peer, err)
	}
	c.leases.done(peer, ids, false)
	return nil
}

func (c *core) Release(ctx context.Context, peer string, ids ...message.ID) error {
	if len(ids) == 0 {
		return nil
	}
	err := c.write(relaxed(ctx), func(ctx context.Context, q querier) error {
		return q.execAll(ctx, unleaseQ.appendTo(nil, []any{peer}, idArgs(ids)))
	})
	// Forgotten even if the write failed: a lease on disk is then what
	// holds them, until it runs out.
	c.leases.done(peer, ids, true)
	if err != nil {
		return fmt.Errorf("release for %q: %w", peer, err)
	}
	return nil
}

func (c *core) SetRoute(ctx context.Context, id message.ID, peer string, state DeliveryState, code, reason string) error {
	if !validState(state) {
		return fmt.Errorf("set route %s for %q: unknown delivery state %q", id, peer, state)
	}
	err := c.write(ctx, func(ctx context.Context, q querier) error {
		return setRoute(ctx, q, c.nowNano(), id, peer, state, code, reason)
	})
	if state == Queued {
		c.leases.rewind(peer) // its row may be behind the cursor
	}
	if err != nil {
		return fmt.Errorf("set route %s for %q: %w", id, peer, err)
	}
	return nil
}

func setRoute(ctx context.Context, q querier, now int64, id message.ID, peer string, state DeliveryState, code, reason string) error {
	var seq, prec int64
	ok, err := one(ctx, q, `SELECT seq, precedence FROM messages WHERE id = ?`, []any{idb(id)}, &seq, &prec)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	if _, err := q.exec(ctx, upsDelivery.texts[0], idb(id), peer, string(state), code, reason, now); err != nil {
		return err
	}
	switch state {
	case Queued, Held:
		_, err := q.exec(ctx, upsQueue.texts[0], idb(id), peer, seq, prec, heldInt(state == Held), int64(0))
		return err
	case Denied, Refused, Quarantined, Delivered:
		if _, err := q.exec(ctx, `DELETE FROM queue WHERE msg_id = ? AND peer = ?`, idb(id), peer); err != nil {
			return err
		}
		if state == Quarantined {
			// A fresh quarantine starts a fresh review.
			_, err := q.exec(ctx, `DELETE FROM approvals WHERE msg_id = ? AND peer = ?`, idb(id), peer)
			return err
		}
	}
	return nil
}

func (c *core) Hold(ctx context.Context, peer string, held bool, reason string) error {
	h := int64(0)
	if held {
		h = 1
	}
	err := c.write(ctx, func(ctx context.Context, q querier) error {
		_, err := q.exec(ctx, `INSERT INTO peer_hold (peer, held, reason, at) VALUES (?, ?, ?, ?)
			ON CONFLICT (peer) DO UPDATE SET held = excluded.held, reason = excluded.reason, at = excluded.at`,
			peer, h, reason, c.nowNano())
		return err
	})
	if !held {
		c.leases.rewind(peer) // resumed
	}
	if err != nil {
		return fmt.Errorf("hold %q: %w", peer, err)
	}
	return nil
}

// PendingAudit implements Store. The record id is seq<<16 | n: records
// come out in acceptance order.
func (c *core) PendingAudit(ctx context.Context, after int64, n int) ([]PendingAudit, error) {
	if n <= 0 {
		n = 256
	}
	after = max(after, 0)
	aseq, an := after>>16, after&0xffff
	var out []PendingAudit
	err := c.read(ctx, func(ctx context.Context, q querier) error {
		out = make([]PendingAudit, 0, min(n, 1024))
		rs, err := q.query(ctx, `SELECT seq, n, record FROM audit_pending
			WHERE seq >= ? AND (seq > ? OR n > ?) ORDER BY seq, n LIMIT ?`, aseq, aseq, an, int64(n))
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var seq, k int64
			var rec []byte
			if err := rs.Scan(&seq, &k, &rec); err != nil {
				return err
			}
			out = append(out, PendingAudit{ID: seq<<16 | k, Record: rec})
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("pending audit after %d: %w", after, err)
	}
	return out, nil
}

// DoneAudit implements Store: one statement for the whole range.
//
// Why a range cannot remove a record that was never read: a caller passes
// ids it read with PendingAudit, and PendingAudit returns, from one
// snapshot, every pending record in id order. So every record with an id
// in [from, to] that was committed at that snapshot was read (or removed
// before). One committed later would need an id at most to, that is a
// history seq no greater than one already visible. Only Accept inserts
// into audit_pending, under the seq it takes from the history counter in
// the same transaction, and seqs become visible in increasing order:
//   - SQLite has one writer. A batch's Accepts take increasing seqs and
//     become visible together at its one commit; the next batch starts
//     from the committed counter. A rolled-back Accept or batch also rolls
//     back its counter increment, so its seq is reused, never filled in
//     later below a visible one.
//   - PostgreSQL: Accept's UPDATE of the counter row locks it until its
//     transaction ends, so a second transaction (another batch or another
//     instance) gets its seq only after the first has committed and become
//     visible, or rolled back (and then takes the same seq).
//
// checkAuditRange (suite_test.go) races Accepts against such a pump on
// both databases, and across two PostgreSQL instances.
func (c *core) DoneAudit(ctx context.Context, from, to int64) error {
	if from > to {
		return nil
	}
	from, to = max(from, 0), max(to, 0)
	fs, fn, ts, tn := from>>16, from&0xffff, to>>16, to&0xffff
	err := c.write(relaxed(ctx), func(ctx context.Context, q querier) error {
		_, err := q.exec(ctx, `DELETE FROM audit_pending WHERE seq >= ? AND seq <= ?
			AND (seq > ? OR n >= ?) AND (seq < ? OR n <= ?)`, fs, ts, fs, fn, ts, tn)
		return err
	})
	if err != nil {
		return fmt.Errorf("done audit %d to %d: %w", from, to, err)
	}
	return nil
}
