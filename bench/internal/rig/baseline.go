package rig

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"liaison/internal/message"
	"liaison/internal/store"
)

// Rate is a measured rate with latency percentiles.
type Rate struct {
	N        int64
	Elapsed  time.Duration
	P50, P99 time.Duration
	// Commits is what the store committed meanwhile, where known.
	Commits store.CommitStats
}

// PerSec is N per second of Elapsed.
func (r Rate) PerSec() float64 { return float64(r.N) / r.Elapsed.Seconds() }

func (r Rate) String() string {
	if r.P50 == 0 {
		return fmt.Sprintf("%9.0f msgs/s", r.PerSec())
	}
	return fmt.Sprintf("%9.0f msgs/s  p50 %8s  p99 %8s", r.PerSec(), Round(r.P50), Round(r.P99))
}

// Round shortens a duration for printing.
func Round(d time.Duration) time.Duration {
	switch {
	case d > 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// Latencies collects latency samples from many goroutines.
type Latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one sample.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// Len is the number of samples.
func (l *Latencies) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// Pct returns the p-th percentile (0 < p ≤ 100).
func (l *Latencies) Pct(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Load runs fn from workers goroutines until d passes and returns the
// count and latency percentiles of the calls that succeeded.
func Load(ctx context.Context, workers int, d time.Duration, fn func(ctx context.Context) error) (Rate, error) {
	var (
		lat   Latencies
		n     atomic.Int64
		wg    sync.WaitGroup
		first error
		once  sync.Once
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	stop := start.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				t := time.Now()
				if err := fn(ctx); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				lat.Add(time.Since(t))
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return Rate{N: n.Load(), Elapsed: time.Since(start), P50: lat.Pct(50), P99: lat.Pct(99)}, first
}

// RawStore is the baseline: the store alone (store.OpenSQLite on a file
// in dir, the same pragmas and fsync policy as a node's store) accepting
// messages made by mk, one queued route each, from workers goroutines, so
// that its group commit batches them.
func RawStore(ctx context.Context, dir string, workers int, d time.Duration, mk func() *message.Message) (Rate, error) {
	s, err := store.OpenSQLite(ctx, filepath.Join(dir, fmt.Sprintf("raw-%d.db", workers)), store.Config{})
	if err != nil {
		return Rate{}, err
	}
	defer s.Close()
	routes := []store.Route{{Peer: "PAK", State: store.Queued, Code: "released"}}
	r, err := Load(ctx, workers, d, func(ctx context.Context) error {
		_, _, err := s.Accept(ctx, mk(), routes)
		return err
	})
	r.Commits = s.CommitStats()
	return r, err
}

// Commits describes the commits behind a measurement: how many writes
// shared each (group commit) and how long each took.
func Commits(c store.CommitStats) string {
	n := c.Durable + c.Relaxed
	if n == 0 {
		return "no commits counted"
	}
	return fmt.Sprintf("%.1f writes a commit, %s a commit (%d commits)", float64(c.Writes)/float64(n), Round(c.CommitTime/time.Duration(n)), n)
}

// RawStoreBatch is the store's own ceiling for the same messages: one
// goroutine storing them per messages at a time with store.AcceptBatch
// (one queued route each), so that every write carries a full batch. A node
// that groups concurrent submissions into batches is bounded by it.
func RawStoreBatch(ctx context.Context, dir string, per int, d time.Duration, mk func() *message.Message) (Rate, error) {
	s, err := store.OpenSQLite(ctx, filepath.Join(dir, fmt.Sprintf("raw-batch-%d.db", per)), store.Config{})
	if err != nil {
		return Rate{}, err
	}
	defer s.Close()
	routes := []store.Route{{Peer: "PAK", State: store.Queued, Code: "released"}}
	items := make([]store.AcceptItem, per)
	r, err := Load(ctx, 1, d, func(ctx context.Context) error {
		for i := range items {
			items[i] = store.AcceptItem{Msg: mk(), Routes: routes}
		}
		_, err := s.AcceptBatch(ctx, items)
		return err
	})
	// Load counted calls; each stored per messages.
	r.N *= int64(per)
	return r, err
}

// PlainSQL is the physical ceiling: the same payloads inserted with plain
// database/sql into one table with the store's pragmas (WAL,
// synchronous=FULL), 100 rows per transaction, from one goroutine.
func PlainSQL(ctx context.Context, dir string, d time.Duration, mk func() *message.Message) (Rate, error) {
	dsn := "file:" + filepath.Join(dir, "plain.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return Rate{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE raw (seq INTEGER PRIMARY KEY, id BLOB NOT NULL, channel TEXT NOT NULL,
		origin TEXT NOT NULL, precedence INTEGER NOT NULL, created INTEGER NOT NULL, label BLOB NOT NULL,
		content_type TEXT NOT NULL, body BLOB NOT NULL)`); err != nil {
		return Rate{}, err
	}
	const perTx = 100
	start := time.Now()
	var n int64
	for time.Since(start) < d {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return Rate{}, err
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO raw (id, channel, origin, precedence, created, label, content_type, body) VALUES (?,?,?,?,?,?,?,?)`)
		if err != nil {
			return Rate{}, err
		}
		for range perTx {
			m := mk()
			if _, err := st.ExecContext(ctx, m.ID[:], m.Channel, m.Origin, int(m.Precedence), m.Created.UnixNano(), m.Label, m.ContentType, m.Body); err != nil {
				return Rate{}, err
			}
		}
		if err := tx.Commit(); err != nil {
			return Rate{}, err
		}
		n += perTx
	}
	return Rate{N: n, Elapsed: time.Since(start)}, nil
}

// CPU is the process's user+system CPU time so far.
func CPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
