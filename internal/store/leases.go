package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"liaison/internal/message"
)

// memLeases keeps the leases of a store that one process owns (SQLite,
// with its lock file held) in memory instead of in the queue's rows. A
// lease then costs a read on the read pool, not a write queued behind the
// writer's commits: under load that wait was most of a link's lease time.
//
// Nothing is lost by not storing them: a lease only keeps a message from
// being handed out twice while a link has it, and no link outlives the
// process. After a restart every queued message may be leased at once,
// which is what the receiver's de-duplication is for (the on-disk leases
// that a FLASH's accepting transaction writes are cleared when the store
// opens, see OpenSQLite).
//
// Per peer and precedence a cursor remembers the last queue seq a lease
// looked at: every row up to it was leased, or was not leasable then (held,
// or leased in its accepting transaction). A lease reads on from the
// cursor, so it does not pass over the rows in flight each time. Anything
// that can make a row behind a cursor leasable again (a release, a lease
// that ran out, a row queued again, a peer resumed) rewinds that peer's
// cursors, and the next lease skips the rows still leased.
//
// Queue seqs come from the single writer in commit order, so a reader
// never sees a row committed after one with a higher seq: a cursor cannot
// pass a row that is yet to appear.
type memLeases struct {
	mu    sync.Mutex
	peers map[string]*peerLeases
}

type peerLeases struct {
	// mu is held across a lease's reads, so that an Ack or a Release
	// (which change leased after their commit) cannot slip between a
	// read that still saw their rows and the check against leased.
	mu     sync.Mutex
	after  [message.Routine + 1]int64 // per precedence: the cursor
	leased map[message.ID]memLease
	soon   int64 // the earliest until in leased, or 0

	// taken holds the leases made outside Lease (took) until the next
	// lease moves them into leased, under mu: a FLASH's accept must not
	// wait for a lease's reads. Its row is stored leased meanwhile, and
	// the reads honour that.
	takenMu sync.Mutex
	taken   map[message.ID]memLease
}

type memLease struct {
	seq   int64
	prec  message.Precedence
	until int64
}

func (m *memLeases) peer(p string) *peerLeases {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.peers[p]
	if l == nil {
		if m.peers == nil {
			m.peers = make(map[string]*peerLeases)
		}
		l = &peerLeases{leased: make(map[message.ID]memLease)}
		m.peers[p] = l
	}
	return l
}

// rewind lets the next lease for peer look at its whole queue again.
func (m *memLeases) rewind(peer string) {
	if m == nil {
		return
	}
	l := m.peer(peer)
	l.mu.Lock()
	l.after = [message.Routine + 1]int64{}
	l.mu.Unlock()
}

// done forgets the leases of ids for peer: acknowledged (their rows are
// gone) or released (rewind too).
func (m *memLeases) done(peer string, ids []message.ID, rewind bool) {
	if m == nil {
		return
	}
	l := m.peer(peer)
	l.mu.Lock()
	l.takenMu.Lock()
	for _, id := range ids {
		delete(l.leased, id)
		delete(l.taken, id)
	}
	l.takenMu.Unlock()
	if rewind {
		l.after = [message.Routine + 1]int64{}
	}
	l.mu.Unlock()
}

// took records the leases made outside Lease for one accepted message: a
// FLASH's queue row stored already leased by the transaction that accepted
// it.
func (m *memLeases) took(msg *message.Message, res AcceptResult, routes []Route, now int64) {
	if m == nil || res.Dup {
		return
	}
	for _, r := range routes {
		if until := leaseUntil(r, now); until > 0 {
			l := m.peer(r.Peer)
			l.takenMu.Lock()
			if l.taken == nil {
				l.taken = make(map[message.ID]memLease)
			}
			l.taken[msg.ID] = memLease{seq: int64(res.Seq), prec: msg.Precedence, until: until}
			l.takenMu.Unlock()
		}
	}
}

func (l *peerLeases) add(id message.ID, x memLease) {
	l.leased[id] = x
	if l.soon == 0 || x.until < l.soon {
		l.soon = x.until
	}
}

// absorb moves the leases that took recorded into leased; l.mu is held.
func (l *peerLeases) absorb() {
	l.takenMu.Lock()
	for id, x := range l.taken {
		l.add(id, x)
	}
	clear(l.taken)
	l.takenMu.Unlock()
}

// expire drops the leases that ran out by now and rewinds the cursors
// past them.
func (l *peerLeases) expire(now int64) {
	if l.soon == 0 || l.soon > now {
		return
	}
	l.soon = 0
	for id, x := range l.leased {
		if x.until <= now {
			delete(l.leased, id)
			l.after[x.prec] = min(l.after[x.prec], x.seq-1)
			continue
		}
		if l.soon == 0 || x.until < l.soon {
			l.soon = x.until
		}
	}
}

// leaseRows reads a peer's leasable queue rows of one precedence, with
// their messages, after a seq, in queue order. lease_until still counts: a
// FLASH's accepting transaction may store its row leased, and the lease
// it records in memory (took) comes just after the commit.
//
// The precedence and the LIMIT are in the text, one statement per
// precedence, not parameters: SQLite prepares a statement again whenever
// the value bound to either changes (a lease reads the precedences in
// turn), which cost more than the read. A lease stops reading once it has
// what it wants.
var leaseRows = func() (qs [message.Routine + 1]string) {
	for p := range qs {
		qs[p] = fmt.Sprintf(`SELECT q.lease_until, %s FROM queue q JOIN messages m ON m.seq = q.seq
	WHERE q.peer = ? AND q.held = 0 AND q.precedence = %d AND q.seq > ?
	ORDER BY q.seq LIMIT %d`, msgColsM, p, leaseRowsLimit)
	}
	return qs
}()

const leaseRowsLimit = 256

// leaseMem is Lease for a store with memLeases: reads only.
func (c *core) leaseMem(ctx context.Context, peer string, n int, ttl time.Duration) ([]Leased, error) {
	l := c.leases.peer(peer)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := c.nowNano()
	l.absorb()
	l.expire(now)
	until := now + int64(ttl)
	var out []Leased
	err := c.read(ctx, func(ctx context.Context, q querier) error {
		var held int64
		if _, err := one(ctx, q, `SELECT held FROM peer_hold WHERE peer = ?`, []any{peer}, &held); err != nil || held != 0 {
			return err
		}
		for p := message.Flash; p <= message.Routine && len(out) < n; p++ {
			// Rows still leased are skipped (after a rewind), so one
			// read may not be enough.
			for len(out) < n {
				more, err := c.leaseRead(ctx, q, l, peer, p, n, now, until, &out)
				if err != nil {
					return err
				}
				if !more {
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		// The caller never sees what this call took: lease it again.
		for _, x := range out {
			delete(l.leased, x.Message.ID)
		}
		l.after = [message.Routine + 1]int64{}
		return nil, fmt.Errorf("lease for %q: %w", peer, err)
	}
	return slices.Clip(out), nil
}

// leaseRead reads rows of precedence p after the cursor until out holds n,
// leases those not leased already and moves the cursor past every row it
// looked at. It reports whether the precedence may have more rows.
func (c *core) leaseRead(ctx context.Context, q querier, l *peerLeases, peer string, p message.Precedence, n int, now, until int64, out *[]Leased) (bool, error) {
	rs, err := q.query(ctx, leaseRows[p], peer, l.after[p])
	if err != nil {
		return false, err
	}
	defer rs.Close()
	read := 0
	for len(*out) < n && rs.Next() {
		var lu int64
		m, seq, err := scanMsg(moreCols{rows: rs, before: []any{&lu}})
		if err != nil {
			return false, err
		}
		read++
		l.after[p] = int64(seq)
		if _, ok := l.leased[m.ID]; ok || lu > now {
			continue
		}
		l.add(m.ID, memLease{seq: int64(seq), prec: p, until: until})
		*out = append(*out, Leased{Message: m, Seq: seq})
	}
	if err := rs.Err(); err != nil {
		return false, err
	}
	return read == leaseRowsLimit, nil
}

// moreCols scans columns before and after those its caller scans (as
// scanMsg's msgCols) into before and after.
type moreCols struct {
	rows
	before, after []any
}

func (m moreCols) Scan(dest ...any) error {
	return m.rows.Scan(slices.Concat(m.before, dest, m.after)...)
}
