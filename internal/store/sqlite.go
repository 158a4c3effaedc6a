package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
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
	log      *slog.Logger
	wdb, rdb *sql.DB
	reqs     chan *writeReq
	maxBatch int

	mu     sync.RWMutex // guards closed and sending on reqs
	closed bool
	done   chan struct{}
	once   sync.Once
	cerr   error
}

type writeReq struct {
	fn   func(ctx context.Context, q querier) error
	done chan error
}

// sqliteURI builds a modernc.org/sqlite DSN for path.
func sqliteURI(path string, readOnly bool) string {
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	q := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	if readOnly {
		q = "mode=ro&" + q
	} else {
		q += "&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
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
	s := &SQLite{
		log: cfg.Logger, wdb: wdb, rdb: rdb, maxBatch: cfg.MaxBatch,
		reqs: make(chan *writeReq, cfg.MaxBatch), done: make(chan struct{}),
	}
	s.core = core{d: sqliteDialect, now: cfg.Now, write: s.write, read: s.readFn}
	go s.writer()
	return s, nil
}

func (s *SQLite) readFn(ctx context.Context, fn func(ctx context.Context, q querier) error) error {
	return fn(ctx, sqlQ{s.rdb})
}

// write queues fn for the writer and waits for the commit of its batch.
func (s *SQLite) write(ctx context.Context, fn func(ctx context.Context, q querier) error) error {
	r := &writeReq{fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	// Once queued the write will be applied or fail; wait for the answer
	// so that a caller never misses an outcome that did happen.
	return <-r.done
}

func (s *SQLite) writer() {
	defer close(s.done)
	batch := make([]*writeReq, 0, s.maxBatch)
	errs := make([]error, 0, s.maxBatch)
	for {
		r, ok := <-s.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], r)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		errs = s.runBatch(batch, errs[:0])
		for i, r := range batch {
			r.done <- errs[i]
		}
	}
}

// runBatch applies the batch in one transaction, each request in its own
// savepoint so that one failing request does not undo the others.
func (s *SQLite) runBatch(batch []*writeReq, errs []error) []error {
	ctx := context.Background()
	fail := func(err error) []error {
		errs = errs[:0]
		for range batch {
			errs = append(errs, err)
		}
		return errs
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	q := sqlQ{tx}
	for _, r := range batch {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT w`); err != nil {
			tx.Rollback()
			return fail(err)
		}
		err := r.fn(ctx, q)
		if err != nil {
			if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO w`); rerr != nil {
				tx.Rollback()
				return fail(rerr)
			}
			if errors.Is(err, errRollback) {
				err = nil
			}
		}
		if _, rerr := tx.ExecContext(ctx, `RELEASE w`); rerr != nil {
			tx.Rollback()
			return fail(rerr)
		}
		errs = append(errs, err)
	}
	if err := tx.Commit(); err != nil {
		s.log.Error("store commit failed", "err", err, "batch", len(batch))
		return fail(err)
	}
	return errs
}

// Close stops accepting writes, waits for the writer to commit what was
// queued and closes the database. It is idempotent.
func (s *SQLite) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.reqs)
		s.mu.Unlock()
		<-s.done
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
