package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SQLite is the embedded store: one database file in WAL mode with
// synchronous=FULL. One writer goroutine owns the only write connection and
// does group commit: it takes every pending write (up to Config.MaxBatch),
// runs each inside its own savepoint of one transaction, commits once (one
// fsync) and then answers each caller. A batch of relaxed writes only
// commits without the fsync, and an urgent batch without a checkpoint
// (see begin). Reads use a separate read-only pool and see the last
// committed state.
type SQLite struct {
	core
	wdb, rdb *sql.DB
	b        *batcher
	stmts    *stmtCache
	rstmts   *readStmts
	once     sync.Once
	cerr     error
	lock     *os.File // held while open: this process owns the store
	// conn is what the writer's connection is set to (see setConn):
	// flushes at commits (synchronous=FULL) and automatic checkpoints,
	// if known (not after a failed change). Only the writer's goroutine
	// uses it.
	conn struct{ known, full, ckpt bool }
}

// sqliteURI builds a modernc.org/sqlite DSN for path.
func sqliteURI(path string, readOnly bool) string {
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	q := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	if readOnly {
		q = "mode=ro&" + q
	} else {
		q += fmt.Sprintf("&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=wal_autocheckpoint(%d)&_pragma=temp_store(MEMORY)&_txlock=immediate", walAutocheckpoint)
	}
	return "file:" + p + "?" + q
}

// OpenSQLite opens (creating if needed) the SQLite store at path and
// brings its schema up to date.
func OpenSQLite(ctx context.Context, path string, cfg Config) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("open sqlite store: empty path")
	}
	cfg = cfg.withDefaults()
	// One process owns the store: its leases live in its memory.
	lock, err := lockFile(path + "-lock")
	switch {
	case errors.Is(err, errLocked):
		return nil, fmt.Errorf("open sqlite store %q: another process (or another open store in this one) is using it", path)
	case errors.Is(err, errors.ErrUnsupported):
		// No file locks here: the leases stay in the queue's rows.
	case err != nil:
		return nil, fmt.Errorf("open sqlite store %q: lock: %w", path, err)
	}
	s, err := openSQLite(ctx, path, cfg, lock != nil)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// errLocked is lockFile's answer when the lock is taken.
var errLocked = errors.New("locked")

func openSQLite(ctx context.Context, path string, cfg Config, owned bool) (*SQLite, error) {
	wdb, err := sql.Open("sqlite", sqliteURI(path, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	var mode string
	if err := wdb.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite store %q: journal mode is %q, want wal", path, mode)
	}
	tx, err := wdb.BeginTx(ctx, nil)
	if err == nil {
		err = migrate(ctx, sqlQ{tx}, sqliteDialect, "")
		if err == nil && owned {
			// No lease outlives the process that took it (memLeases),
			// so those a FLASH's accepting transaction stored are void.
			_, err = tx.ExecContext(ctx, `UPDATE queue SET lease_until = 0 WHERE lease_until > 0`)
		}
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
	}
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
	}
	rdb, err := sql.Open("sqlite", sqliteURI(path, true))
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
	}
	rdb.SetMaxOpenConns(8)
	rdb.SetMaxIdleConns(8)
	s := &SQLite{wdb: wdb, rdb: rdb, stmts: &stmtCache{db: wdb, m: make(map[string]*sql.Stmt)}, rstmts: newReadStmts(rdb)}
	s.conn.known, s.conn.full, s.conn.ckpt = true, true, true // as sqliteURI opens it
	s.b = newBatcher(cfg.MaxBatch, cfg.Logger, s.begin, s.acceptTx)
	s.core = core{d: sqliteDialect, now: cfg.Now, write: s.b.write, accept: s.b.writeAccept, read: s.readFn}
	if owned {
		s.core.leases = &memLeases{}
	}
	return s, nil
}

// begin opens the writer's transaction for a batch, to commit as k says.
// A durable commit runs with synchronous=FULL: SQLite flushes the log
// before the commit returns. A relaxed one (see relaxed) runs with
// synchronous=OFF: its bytes are in the log, where readers and a restarted
// process find them, and the next durable commit's flush carries them to
// the disk. The log is appended in order, so a power loss can take only a
// tail of relaxed commits, never a durable one.
//
// Automatic checkpoints run only at commitDurable: not at a relaxed
// commit, where a checkpoint without flushes could lose durable commits
// once the log were reused, and not at an urgent one, which a FLASH waits
// for. The batcher makes a commitDurable at least every 2*maxDeferred+1
// commits, and after maxDeferred as soon as no FLASH waits for it.
//
// The settings change only between transactions (SQLite refuses to change
// synchronous inside one) and only when they differ from the connection's:
// the writer's single connection keeps them.
func (s *SQLite) begin(ctx context.Context, k commitKind) (txn, error) {
	if err := s.setConn(ctx, k); err != nil {
		return nil, err
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &batchQ{tx: tx, stmts: make(map[string]*sql.Stmt), cache: s.stmts}, nil
}

// setConn sets the writer's connection up for commits of kind k, between
// transactions. Flushes go on before anything else changes, and
// checkpoints go off before flushes do, so that no step in between lets a
// checkpoint run without flushes.
func (s *SQLite) setConn(ctx context.Context, k commitKind) error {
	full, ckpt := k.durable(), k == commitDurable
	c := s.conn
	if c.known && c.full == full && c.ckpt == ckpt {
		return nil
	}
	// Until every step succeeded, the settings are not known: the next
	// call then makes each of them again.
	s.conn.known = false
	if full && (!c.known || !c.full) {
		if _, err := s.wdb.ExecContext(ctx, `PRAGMA synchronous=FULL`); err != nil {
			return fmt.Errorf("restore synchronous=FULL: %w", err)
		}
	}
	if !c.known || c.ckpt != ckpt {
		n := 0
		if ckpt {
			n = walAutocheckpoint
		}
		if _, err := s.wdb.ExecContext(ctx, fmt.Sprintf(`PRAGMA wal_autocheckpoint=%d`, n)); err != nil {
			return fmt.Errorf("set wal_autocheckpoint=%d: %w", n, err)
		}
	}
	if !full && (!c.known || c.full) {
		if _, err := s.wdb.ExecContext(ctx, `PRAGMA synchronous=OFF`); err != nil {
			return fmt.Errorf("set synchronous=OFF: %w", err)
		}
	}
	s.conn.known, s.conn.full, s.conn.ckpt = true, full, ckpt
	return nil
}

// walAutocheckpoint is SQLite's default: checkpoint when the log holds
// 1000 pages.
const walAutocheckpoint = 1000

// CommitStats implements CommitStatser.
func (s *SQLite) CommitStats() CommitStats { return s.b.stats.get() }

func (s *SQLite) readFn(ctx context.Context, fn func(ctx context.Context, q querier) error) error {
	return fn(ctx, readQ{s.rdb, s.rstmts})
}

// Close stops accepting writes, waits for the writer to commit what was
// queued and closes the database. It is idempotent.
func (s *SQLite) Close() error {
	s.once.Do(func() {
		s.b.close()
		// The writer has stopped: its connection is this goroutine's.
		ferr := s.settle(context.Background())
		s.stmts.close()
		s.rstmts.close()
		s.cerr = errors.Join(ferr, s.rdb.Close(), s.wdb.Close())
		if s.lock != nil {
			s.lock.Close()
		}
	})
	return s.cerr
}

// settle makes the writer's connection durable again before it closes:
// SQLite checkpoints the log into the database file and removes the log
// as the last connection closes, and with synchronous=OFF it would do so
// without flushing the database file first, so that a power loss soon
// after a clean stop could lose durable commits with the log. It is also
// a flush of any relaxed commits.
func (s *SQLite) settle(ctx context.Context) error {
	if err := s.setConn(ctx, commitDurable); err != nil {
		return fmt.Errorf("close sqlite store: %w", err)
	}
	return nil
}

// sqlQ adapts database/sql to querier.
type sqlQ struct {
	db interface {
		ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	}
}

func (q sqlQ) exec(ctx context.Context, s string, args ...any) (int64, error) {
	res, err := q.db.ExecContext(ctx, s, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQ) query(ctx context.Context, s string, args ...any) (rows, error) {
	rs, err := q.db.QueryContext(ctx, s, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

// batchQ runs the writer's statements inside a batch transaction. A
// statement the cache already holds is bound to the transaction with
// Tx.StmtContext, which reuses the SQLite statement prepared on the writer's
// one connection; a new one is prepared in the transaction for this batch and
// handed to the cache to prepare on the database once the batch is over.
type batchQ struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt // this batch's, closed with the transaction
	cache *stmtCache
	fresh []string // statements the cache does not hold yet
}

func (q *batchQ) commit(context.Context) error {
	err := q.tx.Commit()
	q.cache.add(q.fresh)
	return err
}

func (q *batchQ) rollback(context.Context) error {
	err := q.tx.Rollback()
	q.cache.add(q.fresh)
	return err
}

func (q *batchQ) stmt(ctx context.Context, s string) (*sql.Stmt, error) {
	if st, ok := q.stmts[s]; ok {
		return st, nil
	}
	var st *sql.Stmt
	if ds := q.cache.get(s); ds != nil {
		st = q.tx.StmtContext(ctx, ds)
	} else {
		var err error
		if st, err = q.tx.PrepareContext(ctx, s); err != nil {
			return nil, err
		}
		q.fresh = append(q.fresh, s)
	}
	q.stmts[s] = st
	return st, nil
}

// stmtCache holds the writer's statements prepared on the writer database,
// whose only connection keeps them prepared across batches. Statements are
// prepared on the database only between batches (add is called after the
// transaction ended): preparing while a transaction holds the one
// connection would wait for it forever.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxCachedStmts bounds the cache; the writer uses a few dozen statements.
const maxCachedStmts = 256

func (c *stmtCache) get(s string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[s]
}

func (c *stmtCache) add(ss []string) {
	for _, s := range ss {
		c.mu.Lock()
		_, ok := c.m[s]
		full := len(c.m) >= maxCachedStmts
		c.mu.Unlock()
		if ok || full {
			continue
		}
		// A statement that fails to prepare here is prepared per batch
		// as before; the batch that used it has already reported any error.
		st, err := c.db.Prepare(s)
		if err != nil {
			continue
		}
		c.mu.Lock()
		c.m[s] = st
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s, st := range c.m {
		st.Close()
		delete(c.m, s)
	}
}

func (q *batchQ) exec(ctx context.Context, s string, args ...any) (int64, error) {
	st, err := q.stmt(ctx, s)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q *batchQ) query(ctx context.Context, s string, args ...any) (rows, error) {
	st, err := q.stmt(ctx, s)
	if err != nil {
		return nil, err
	}
	rs, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

func (q sqlQ) execAll(ctx context.Context, st []stmt) error    { return execEach(ctx, q, st) }
func (q *batchQ) execAll(ctx context.Context, st []stmt) error { return execEach(ctx, q, st) }

// Announce implements Announcer.
func (s *SQLite) Announce(ctx context.Context) (context.Context, func()) { return s.b.announce(ctx) }
