package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SQLite is the embedded store: one database file in WAL mode with
// synchronous=FULL. One writer goroutine owns the only write connection and
// does group commit: it takes every pending write (up to Config.MaxBatch),
// runs each inside its own savepoint of one transaction, commits once (one
// fsync) and then answers each caller. Reads use a separate read-only pool
// and see the last committed state.
type SQLite struct {
	core
	wdb, rdb *sql.DB
	b        *batcher
	once     sync.Once
	cerr     error
}

// sqliteURI builds a modernc.org/sqlite DSN for path.
func sqliteURI(path string, readOnly bool) string {
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	q := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	if readOnly {
		q = "mode=ro&" + q
	} else {
		q += "&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)&_txlock=immediate"
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
		if err = migrate(ctx, sqlQ{tx}, sqliteDialect, ""); err == nil {
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
	s := &SQLite{wdb: wdb, rdb: rdb}
	s.b = newBatcher(cfg.MaxBatch, cfg.Logger, func(ctx context.Context) (txn, error) {
		tx, err := wdb.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		return &batchQ{tx: tx, stmts: make(map[string]*sql.Stmt)}, nil
	})
	s.core = core{d: sqliteDialect, now: cfg.Now, write: s.b.write, read: s.readFn}
	return s, nil
}

func (s *SQLite) readFn(ctx context.Context, fn func(ctx context.Context, q querier) error) error {
	return fn(ctx, sqlQ{s.rdb})
}

// Close stops accepting writes, waits for the writer to commit what was
// queued and closes the database. It is idempotent.
func (s *SQLite) Close() error {
	s.once.Do(func() {
		s.b.close()
		s.cerr = errors.Join(s.rdb.Close(), s.wdb.Close())
	})
	return s.cerr
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

// batchQ runs the writer's statements inside a batch transaction, preparing
// each distinct statement once per batch (the transaction closes them).
type batchQ struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (q *batchQ) commit(context.Context) error   { return q.tx.Commit() }
func (q *batchQ) rollback(context.Context) error { return q.tx.Rollback() }

func (q *batchQ) stmt(ctx context.Context, s string) (*sql.Stmt, error) {
	if st, ok := q.stmts[s]; ok {
		return st, nil
	}
	st, err := q.tx.PrepareContext(ctx, s)
	if err != nil {
		return nil, err
	}
	q.stmts[s] = st
	return st, nil
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
