package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the scale-out store: several node instances may share one
// database. Lease locks its candidate rows with FOR UPDATE SKIP LOCKED, so
// two instances never lease the same row. Accepts serialise on a counter
// row so that history sequence numbers are assigned in commit order; to
// keep that from limiting throughput to one commit per message, each
// instance group-commits its Accepts like the SQLite writer does. Every
// other write is its own transaction.
type Postgres struct {
	core
	pool *pgxpool.Pool
	b    *batcher
	once sync.Once
}

// OpenPostgres connects to the database at dsn (a postgres:// URL or a
// key=value string; a search_path parameter selects the schema) and brings
// its schema up to date.
func OpenPostgres(ctx context.Context, dsn string, cfg Config) (*Postgres, error) {
	cfg = cfg.withDefaults()
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", redact(err))
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", redact(err))
	}
	p := &Postgres{pool: pool}
	p.b = newBatcher(cfg.MaxBatch, cfg.Logger, func(ctx context.Context, k commitKind) (txn, error) {
		tx, err := p.beginTx(ctx, k.durable())
		if err != nil {
			return nil, err
		}
		return pgTxn{pgQ{tx}, tx}, nil
	}, p.acceptTx)
	p.core = core{d: postgresDialect, now: cfg.Now, write: p.write, accept: p.b.writeAccept, read: p.readFn}
	err = p.write(ctx, func(ctx context.Context, q querier) error {
		// Serialise concurrent migrators (several instances starting).
		return migrate(ctx, q, postgresDialect, `SELECT pg_advisory_xact_lock(7306412021)`)
	})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return p, nil
}

// redact keeps a password in a malformed DSN out of error messages.
func redact(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("malformed postgres dsn")
	}
	return err
}

// write runs fn in a transaction of its own. A relaxed write (see relaxed)
// commits with synchronous_commit off: PostgreSQL answers before its WAL
// is flushed, which its WAL writer does within a moment; a server crash
// can take back only such commits.
func (p *Postgres) write(ctx context.Context, fn func(ctx context.Context, q querier) error) error {
	durable := !isRelaxed(ctx)
	tx, err := p.beginTx(ctx, durable)
	if err != nil {
		return err
	}
	if err := fn(ctx, pgQ{tx}); err != nil {
		rerr := tx.Rollback(ctx)
		if errors.Is(err, errRollback) {
			return rerr
		}
		return err
	}
	start := time.Now()
	err = tx.Commit(ctx)
	p.b.stats.add(durable, 1, time.Since(start)) // counted with the batcher's commits
	return err
}

// beginTx begins a transaction, relaxed unless durable.
func (p *Postgres) beginTx(ctx context.Context, durable bool) (pgx.Tx, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil || durable {
		return tx, err
	}
	if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit TO OFF`); err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	return tx, nil
}

// CommitStats implements CommitStatser: the batched accepts' commits and
// the other writes' own.
func (p *Postgres) CommitStats() CommitStats { return p.b.stats.get() }

func (p *Postgres) readFn(ctx context.Context, fn func(ctx context.Context, q querier) error) error {
	return fn(ctx, pgQ{p.pool})
}

// Close waits for queued Accepts to commit and closes the pool. It is
// idempotent.
func (p *Postgres) Close() error {
	p.once.Do(func() {
		p.b.close()
		p.pool.Close()
	})
	return nil
}

type pgTxn struct {
	pgQ
	tx pgx.Tx
}

func (t pgTxn) commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgTxn) rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

type pgDB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

type pgQ struct{ db pgDB }

var rebound sync.Map // ? statement -> $n statement

// rebind rewrites ? placeholders to $1, $2, ... The statements in this
// package contain no ? inside literals.
func rebind(q string) string {
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	s := b.String()
	rebound.Store(q, s)
	return s
}

func (q pgQ) exec(ctx context.Context, s string, args ...any) (int64, error) {
	tag, err := q.db.Exec(ctx, rebind(s), args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q pgQ) query(ctx context.Context, s string, args ...any) (rows, error) {
	rs, err := q.db.Query(ctx, rebind(s), args...)
	if err != nil {
		return nil, err
	}
	return rs, nil
}

func (q pgQ) execAll(ctx context.Context, st []stmt) error {
	var b pgx.Batch
	for _, s := range st {
		b.Queue(rebind(s.sql), s.args...)
	}
	br := q.db.SendBatch(ctx, &b)
	for range st {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

// Announce implements Announcer.
func (p *Postgres) Announce(ctx context.Context) (context.Context, func()) { return p.b.announce(ctx) }
