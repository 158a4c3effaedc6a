package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"liaison/internal/message"
)

func collectMsgs(ctx context.Context, q querier, sql string, args ...any) ([]*message.Message, error) {
	rs, err := q.query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*message.Message
	for rs.Next() {
		m, _, err := scanMsg(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rs.Err()
}

func (c *core) HeldFor(ctx context.Context, peer string) ([]*message.Message, error) {
	var out []*message.Message
	err := c.read(ctx, func(ctx context.Context, q querier) (err error) {
		out, err = collectMsgs(ctx, q, `SELECT `+msgColsM+` FROM messages m JOIN deliveries d ON d.msg_id = m.id
			WHERE d.peer = ? AND d.state = ? ORDER BY m.seq`, peer, string(Held))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("held for %q: %w", peer, err)
	}
	return out, nil
}

func (c *core) QueueDepth(ctx context.Context, peer string) (map[message.Precedence]int, error) {
	out := make(map[message.Precedence]int)
	err := c.read(ctx, func(ctx context.Context, q querier) error {
		rs, err := q.query(ctx, `SELECT precedence, COUNT(*) FROM queue WHERE peer = ? AND held = 0 GROUP BY precedence`, peer)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var p, n int64
			if err := rs.Scan(&p, &n); err != nil {
				return err
			}
			out[message.Precedence(p)] = int(n)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("queue depth for %q: %w", peer, err)
	}
	return out, nil
}

func (c *core) Peers(ctx context.Context) ([]string, error) {
	var out []string
	err := c.read(ctx, func(ctx context.Context, q querier) error {
		out = out[:0]
		rs, err := q.query(ctx, `SELECT DISTINCT peer FROM deliveries ORDER BY peer`)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var p string
			if err := rs.Scan(&p); err != nil {
				return err
			}
			out = append(out, p)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("peers: %w", err)
	}
	return out, nil
}

func (c *core) History(ctx context.Context, channel string, after uint64, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 10000)
	var out []Entry
	err := c.read(ctx, func(ctx context.Context, q querier) error {
		out = out[:0]
		rs, err := q.query(ctx, `SELECT `+msgCols+` FROM messages WHERE channel = ? AND seq > ? ORDER BY seq LIMIT ?`,
			channel, int64(min(after, 1<<63-1)), int64(limit))
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			m, seq, err := scanMsg(rs)
			if err != nil {
				return err
			}
			out = append(out, Entry{Seq: seq, Msg: m})
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("history of %q: %w", channel, err)
	}
	return out, nil
}

func (c *core) Get(ctx context.Context, id message.ID) (*message.Message, uint64, error) {
	var (
		m   *message.Message
		seq uint64
	)
	err := c.read(ctx, func(ctx context.Context, q querier) error {
		rs, err := q.query(ctx, `SELECT `+msgCols+` FROM messages WHERE id = ?`, idb(id))
		if err != nil {
			return err
		}
		defer rs.Close()
		if !rs.Next() {
			if err := rs.Err(); err != nil {
				return err
			}
			return ErrNotFound
		}
		m, seq, err = scanMsg(rs)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("get message %s: %w", id, err)
	}
	return m, seq, nil
}

func (c *core) Status(ctx context.Context, id message.ID) ([]Delivery, error) {
	var out []Delivery
	err := c.read(ctx, func(ctx context.Context, q querier) error {
		out = out[:0]
		var seq int64
		ok, err := one(ctx, q, `SELECT seq FROM messages WHERE id = ?`, []any{idb(id)}, &seq)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		rs, err := q.query(ctx, `SELECT peer, state, code, reason, at FROM deliveries WHERE msg_id = ? ORDER BY peer`, idb(id))
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var (
				d  Delivery
				st string
				at int64
			)
			if err := rs.Scan(&d.Peer, &st, &d.Code, &d.Reason, &at); err != nil {
				return err
			}
			d.State, d.At = DeliveryState(st), time.Unix(0, at).UTC()
			out = append(out, d)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", id, err)
	}
	return out, nil
}

func (c *core) Quarantined(ctx context.Context) ([]HeldItem, error) {
	var out []HeldItem
	err := c.read(ctx, func(ctx context.Context, q querier) error {
		out = out[:0]
		rs, err := q.query(ctx, `SELECT `+msgColsM+`, d.peer, d.reason, d.at FROM messages m JOIN deliveries d ON d.msg_id = m.id
			WHERE d.state = ? ORDER BY d.at, m.seq, d.peer`, string(Quarantined))
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var (
				it HeldItem
				at int64
			)
			if it.Msg, _, err = scanMsg(moreCols{rows: rs, after: []any{&it.Peer, &it.Reason, &at}}); err != nil {
				return err
			}
			it.Since = time.Unix(0, at).UTC()
			out = append(out, it)
		}
		if err := rs.Err(); err != nil {
			return err
		}
		rs.Close()
		for i := range out {
			if out[i].Approvals, err = approvals(ctx, q, out[i].Msg.ID, out[i].Peer); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("quarantined: %w", err)
	}
	return out, nil
}

func approvals(ctx context.Context, q querier, id message.ID, peer string) ([]string, error) {
	rs, err := q.query(ctx, `SELECT reviewer FROM approvals WHERE msg_id = ? AND peer = ? ORDER BY at, reviewer`, idb(id), peer)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var r string
		if err := rs.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

func (c *core) Review(ctx context.Context, id message.ID, peer, reviewer string, approve bool) (ReviewOutcome, []string, error) {
	if reviewer == "" {
		return "", nil, fmt.Errorf("review %s for %q: reviewer is empty", id, peer)
	}
	var (
		out  ReviewOutcome
		apps []string
	)
	err := c.write(ctx, func(ctx context.Context, q querier) error {
		out, apps = "", nil
		now := c.nowNano()
		var state string
		ok, err := one(ctx, q, `SELECT state FROM deliveries WHERE msg_id = ? AND peer = ?`, []any{idb(id), peer}, &state)
		if err != nil {
			return err
		}
		if !ok || DeliveryState(state) != Quarantined {
			return ErrNotQuarantined
		}
		if !approve {
			if apps, err = approvals(ctx, q, id, peer); err != nil {
				return err
			}
			out = ReviewDenied
			return setRoute(ctx, q, now, id, peer, Denied, "review-denied", "denied by reviewer "+reviewer)
		}
		n, err := q.exec(ctx, `INSERT INTO approvals (msg_id, peer, reviewer, at) VALUES (?, ?, ?, ?) ON CONFLICT (msg_id, peer, reviewer) DO NOTHING`,
			idb(id), peer, reviewer, now)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrAlreadyReviewed
		}
		if apps, err = approvals(ctx, q, id, peer); err != nil {
			return err
		}
		if len(apps) < 2 {
			out = ReviewPending
			return nil
		}
		out = ReviewReleased
		return setRoute(ctx, q, now, id, peer, Queued, "review-released", "released by two-person review")
	})
	if out == ReviewReleased {
		c.leases.rewind(peer) // its row is behind the cursor
	}
	if err != nil {
		return "", nil, fmt.Errorf("review %s for %q by %q: %w", id, peer, reviewer, err)
	}
	return out, slices.Clip(apps), nil
}

func (c *core) PutAgreement(ctx context.Context, key string, doc []byte) error {
	err := c.write(ctx, func(ctx context.Context, q querier) error {
		_, err := q.exec(ctx, `INSERT INTO agreements (key, ord, doc) VALUES (?, (SELECT COALESCE(MAX(ord), 0) + 1 FROM agreements), ?)
			ON CONFLICT (key) DO UPDATE SET doc = excluded.doc`, key, nonNil(doc))
		return err
	})
	if err != nil {
		return fmt.Errorf("put agreement %q: %w", key, err)
	}
	return nil
}

func (c *core) Agreements(ctx context.Context) ([][]byte, error) {
	var out [][]byte
	err := c.read(ctx, func(ctx context.Context, q querier) error {
		out = out[:0]
		rs, err := q.query(ctx, `SELECT doc FROM agreements ORDER BY ord, key`)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var b []byte
			if err := rs.Scan(&b); err != nil {
				return err
			}
			out = append(out, b)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("agreements: %w", err)
	}
	return out, nil
}

func (c *core) PutCard(ctx context.Context, party string, card []byte) error {
	err := c.write(ctx, func(ctx context.Context, q querier) error {
		_, err := q.exec(ctx, `INSERT INTO cards (party, card) VALUES (?, ?) ON CONFLICT (party) DO UPDATE SET card = excluded.card`, party, nonNil(card))
		return err
	})
	if err != nil {
		return fmt.Errorf("put card %q: %w", party, err)
	}
	return nil
}

func (c *core) Cards(ctx context.Context) (map[string][]byte, error) {
	out := make(map[string][]byte)
	err := c.read(ctx, func(ctx context.Context, q querier) error {
		rs, err := q.query(ctx, `SELECT party, card FROM cards`)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var (
				p string
				b []byte
			)
			if err := rs.Scan(&p, &b); err != nil {
				return err
			}
			out[p] = b
		}
		return rs.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("cards: %w", err)
	}
	return out, nil
}

func (c *core) GetState(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := c.read(ctx, func(ctx context.Context, q querier) error {
		ok, err := one(ctx, q, `SELECT val FROM kv WHERE key = ?`, []any{key}, &v)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get state %q: %w", key, err)
	}
	return v, nil
}

func (c *core) PutState(ctx context.Context, key string, val []byte) error {
	err := c.write(ctx, func(ctx context.Context, q querier) error {
		_, err := q.exec(ctx, `INSERT INTO kv (key, val) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET val = excluded.val`, key, nonNil(val))
		return err
	})
	if err != nil {
		return fmt.Errorf("put state %q: %w", key, err)
	}
	return nil
}
