package store

import (
	"context"
	"database/sql"
	"sync"
)

// readQ runs the read path's statements on the read-only pool. Each
// distinct statement is prepared once, on first use, as a *sql.Stmt of the
// pool (which prepares it on each connection the first time it runs
// there), so that a read does not parse and plan its SQL every call.
// Statements beyond the cache's bound run unprepared, as before.
type readQ struct {
	db    *sql.DB
	cache *readStmts
}

// readStmts is the read path's statement cache, keyed by SQL text.
type readStmts struct {
	db     *sql.DB
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	closed bool
}

// maxReadStmts bounds the read cache. The read path has a few dozen
// statements; Lease pads its IN list to a power of two so that it adds
// only a handful.
const maxReadStmts = 128

func newReadStmts(db *sql.DB) *readStmts {
	return &readStmts{db: db, m: make(map[string]*sql.Stmt)}
}

// get returns the prepared statement for s, preparing it if the cache has
// room, or nil to run s unprepared.
func (c *readStmts) get(ctx context.Context, s string) *sql.Stmt {
	c.mu.Lock()
	st, ok := c.m[s]
	full := c.closed || len(c.m) >= maxReadStmts
	c.mu.Unlock()
	if ok || full {
		return st
	}
	// Prepared outside the lock: it may wait for a pooled connection.
	st, err := c.db.PrepareContext(ctx, s)
	if err != nil {
		// The unprepared call reports the error (or succeeds).
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[s]; ok || c.closed || len(c.m) >= maxReadStmts {
		st.Close()
		return old
	}
	c.m[s] = st
	return st
}

// close closes the cached statements; later gets return nil.
func (c *readStmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for s, st := range c.m {
		st.Close()
		delete(c.m, s)
	}
}

func (q readQ) exec(ctx context.Context, s string, args ...any) (int64, error) {
	return sqlQ{q.db}.exec(ctx, s, args...)
}

func (q readQ) query(ctx context.Context, s string, args ...any) (rows, error) {
	st := q.cache.get(ctx, s)
	if st == nil {
		return sqlQ{q.db}.query(ctx, s, args...)
	}
	rs, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

func (q readQ) execAll(ctx context.Context, st []stmt) error { return execEach(ctx, q, st) }
