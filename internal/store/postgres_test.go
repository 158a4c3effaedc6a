package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"liaison/internal/message"
)

// pgSchemaDSN creates a fresh schema liaison_test_<random> in the database
// named by LIAISON_POSTGRES_DSN, drops it when the test ends and returns a
// DSN whose search_path selects it. It skips the test if the variable is
// unset, or fails it if LIAISON_REQUIRE_PEERS=1.
func pgSchemaDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("LIAISON_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("LIAISON_REQUIRE_PEERS") == "1" {
			t.Fatal("LIAISON_POSTGRES_DSN is not set and LIAISON_REQUIRE_PEERS=1")
		}
		t.Skip("SKIPPING PostgreSQL tests: set LIAISON_POSTGRES_DSN=postgres://... to run them")
	}
	ctx := context.Background()
	var rb [6]byte
	rand.Read(rb[:])
	schema := "liaison_test_" + hex.EncodeToString(rb[:])
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to LIAISON_POSTGRES_DSN: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openPostgresT(t *testing.T, dsn string, clk *fakeClock) *Postgres {
	t.Helper()
	cfg := Config{}
	if clk != nil {
		cfg.Now = clk.Now
	}
	s, err := OpenPostgres(context.Background(), dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgres(t *testing.T) {
	pgSchemaDSN(t) // skips (or fails) here rather than in every subtest
	runSuite(t, func(t *testing.T, clk *fakeClock) Store {
		return openPostgresT(t, pgSchemaDSN(t), clk)
	})
}

func TestPostgresReopen(t *testing.T) {
	ctx := context.Background()
	dsn := pgSchemaDSN(t)
	s := openPostgresT(t, dsn, nil)
	m := newMsg("chat", message.Flash)
	seq := accept(t, s, m, queued("XBB"))
	s.Close()
	for range 2 {
		s := openPostgresT(t, dsn, nil)
		if _, got, err := s.Get(ctx, m.ID); err != nil || got != seq {
			t.Fatalf("Get after reopen: %d %v", got, err)
		}
		var v int
		if err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM schema_version`).Scan(&v); err != nil || v != schemaVersion {
			t.Fatalf("schema_version rows = %d, %v", v, err)
		}
		s.Close()
	}
}

// Two instances sharing one database never lease the same message.
func TestPostgresConcurrentLease(t *testing.T) {
	ctx := context.Background()
	dsn := pgSchemaDSN(t)
	a, b := openPostgresT(t, dsn, nil), openPostgresT(t, dsn, nil)
	const N = 300
	for i := range N {
		accept(t, a, newMsg("c", message.Precedence(i%4)), queued("XBB"))
	}
	var (
		mu   sync.Mutex
		seen = make(map[message.ID]int)
		wg   sync.WaitGroup
		errs = make(chan error, 4)
	)
	for _, s := range []*Postgres{a, b, a, b} {
		wg.Go(func() {
			for {
				ms, err := s.Lease(ctx, "XBB", 7, time.Hour)
				if err != nil {
					errs <- err
					return
				}
				if len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != N {
		t.Fatalf("leased %d distinct messages, want %d", len(seen), N)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("message %s leased %d times", id, n)
		}
	}
}

// The same message accepted through two instances at once is stored once.
func TestPostgresConcurrentDedup(t *testing.T) {
	ctx := context.Background()
	dsn := pgSchemaDSN(t)
	a, b := openPostgresT(t, dsn, nil), openPostgresT(t, dsn, nil)
	for range 20 {
		m := newMsg("c", message.Routine)
		var wg sync.WaitGroup
		var dups, errs [2]bool
		var seqs [2]uint64
		for i, s := range []*Postgres{a, b} {
			wg.Go(func() {
				var err error
				seqs[i], dups[i], err = s.Accept(ctx, m, queued("XBB"))
				errs[i] = err != nil
			})
		}
		wg.Wait()
		if errs[0] || errs[1] || dups[0] == dups[1] || seqs[0] != seqs[1] {
			t.Fatalf("concurrent Accept of one id: dup=%v seq=%v errors=%v", dups, seqs, errs)
		}
	}
	if d, _ := a.QueueDepth(ctx, "XBB"); d[message.Routine] != 20 {
		t.Fatalf("queue depth %v, want 20", d)
	}
}

// Two instances accept while one pumps the audit outbox by ranges: the
// counter row lock makes seqs visible in order across instances too.
func TestPostgresAuditRangeIsSafe(t *testing.T) {
	dsn := pgSchemaDSN(t)
	a, b := openPostgresT(t, dsn, nil), openPostgresT(t, dsn, nil)
	checkAuditRange(t, []Store{a, b}, a)
}

// TestPostgresRelaxed: a relaxed transaction commits with
// synchronous_commit off, for itself only; a durable one keeps the
// server's setting.
func TestPostgresRelaxed(t *testing.T) {
	ctx := context.Background()
	p := openPostgresT(t, pgSchemaDSN(t), nil)
	setting := func(durable bool) string {
		t.Helper()
		tx, err := p.beginTx(ctx, durable)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		var v string
		if err := tx.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := setting(false); got != "off" {
		t.Errorf("relaxed transaction: synchronous_commit = %q, want off", got)
	}
	if got := setting(true); got != "on" {
		t.Errorf("durable transaction after a relaxed one: synchronous_commit = %q, want on", got)
	}
}
