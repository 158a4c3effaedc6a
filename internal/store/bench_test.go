package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"

	"liaison/internal/message"
)

// benchMsg is a labelled message with a 1 KiB body.
func benchMsg() *message.Message {
	m := newMsg("bench", message.Routine)
	m.Body = bytes.Repeat([]byte("x"), 1024)
	return m
}

func openBenchSQLite(b *testing.B) Store {
	s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "bench.db"), Config{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// openBenchPostgres needs LIAISON_POSTGRES_DSN.
func openBenchPostgres(b *testing.B) Store {
	if os.Getenv("LIAISON_POSTGRES_DSN") == "" {
		b.Skip("SKIPPING: set LIAISON_POSTGRES_DSN to benchmark PostgreSQL")
	}
	s, err := OpenPostgres(context.Background(), pgSchemaDSN(b), Config{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkAccept(b *testing.B) { benchAccept(b, openBenchSQLite) }

// BenchmarkAcceptPostgres: each Accept is its own write; an instance
// group-commits them and they serialise on the history counter row.
func BenchmarkAcceptPostgres(b *testing.B) { benchAccept(b, openBenchPostgres) }

// benchAccept measures Accept of 1 KiB labelled messages with one queued
// recipient, from one producer and from 64 concurrent producers.
func benchAccept(b *testing.B, open func(b *testing.B) Store) {
	for _, producers := range []int{1, 64} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			ctx := context.Background()
			s := open(b)
			defer s.Close()
			routes := queued("XBB")
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			if producers == 1 {
				for b.Loop() {
					if _, _, err := s.Accept(ctx, benchMsg(), routes); err != nil {
						b.Fatal(err)
					}
					n.Add(1)
				}
			} else {
				// RunParallel starts parallelism*GOMAXPROCS goroutines.
				b.SetParallelism(max(1, producers/runtime.GOMAXPROCS(0)))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, _, err := s.Accept(ctx, benchMsg(), routes); err != nil {
							b.Error(err)
							return
						}
						n.Add(1)
					}
				})
			}
			b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time the process has used (user and system), in ns:
// on a shared machine it says more about a write path's cost than the
// wall clock, and it includes what the writer goroutine spends.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkRawAppend is the baseline: the same payloads inserted with plain
// database/sql under the same pragmas, 100 rows per transaction, from one
// goroutine, into one table with no de-duplication, fan-out or queue.
func BenchmarkRawAppend(b *testing.B) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", sqliteURI(filepath.Join(b.TempDir(), "raw.db"), false))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE raw (seq INTEGER PRIMARY KEY, id BLOB NOT NULL, channel TEXT NOT NULL,
		origin TEXT NOT NULL, originator TEXT NOT NULL, precedence INTEGER NOT NULL, created INTEGER NOT NULL,
		label BLOB NOT NULL, alternatives BLOB, content_type TEXT NOT NULL, body BLOB NOT NULL, trace_id TEXT NOT NULL,
		accepted INTEGER NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	const perTx = 100
	var (
		tx    *sql.Tx
		stmt  *sql.Stmt
		inTx  int
		total int64
	)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if tx == nil {
			if tx, err = db.BeginTx(ctx, nil); err != nil {
				b.Fatal(err)
			}
			if stmt, err = tx.PrepareContext(ctx, `INSERT INTO raw (`+msgCols+`, accepted) VALUES (`+placeholders(13)+`)`); err != nil {
				b.Fatal(err)
			}
		}
		total++
		bm := benchMsg()
		if _, err := stmt.ExecContext(ctx, appendMsgArgs(nil, total, bm, packMsg(bm), 1)...); err != nil {
			b.Fatal(err)
		}
		if inTx++; inTx == perTx {
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			tx, inTx = nil, 0
		}
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkAcceptBatch(b *testing.B)         { benchAcceptBatch(b, openBenchSQLite) }
func BenchmarkAcceptBatchPostgres(b *testing.B) { benchAcceptBatch(b, openBenchPostgres) }

// benchAcceptBatch measures AcceptBatch of 1 KiB messages from one caller,
// each with one queued recipient and one audit record; msgs/s counts
// messages.
func benchAcceptBatch(b *testing.B, open func(b *testing.B) Store) {
	for _, n := range []int{1, 16, 128, 256} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			s := open(b)
			defer s.Close()
			items := make([]AcceptItem, n)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				for i := range items {
					items[i] = AcceptItem{Msg: benchMsg(), Routes: queued("XBB"), Audit: [][]byte{[]byte("audit")}}
				}
				if _, err := s.AcceptBatch(context.Background(), items); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func BenchmarkAck(b *testing.B)         { benchAck(b, openBenchSQLite) }
func BenchmarkAckPostgres(b *testing.B) { benchAck(b, openBenchPostgres) }

// benchAck measures one Ack of 256 ids, each queued for the peer (what a
// link does with a custody acknowledgement of a full window). Accepting
// the messages is not timed.
func benchAck(b *testing.B, open func(b *testing.B) Store) {
	const n = 256
	ctx := context.Background()
	s := open(b)
	defer s.Close()
	items := make([]AcceptItem, n)
	ids := make([]message.ID, n)
	fill := func() {
		for i := range items {
			items[i] = AcceptItem{Msg: benchMsg(), Routes: queued("XBB")}
			ids[i] = items[i].Msg.ID
		}
		if _, err := s.AcceptBatch(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
	// A store that has been running: some history, and on PostgreSQL
	// planner statistics, as autovacuum gathers them. (On a table never
	// analysed, PostgreSQL may plan the IN lists through deliveries_state
	// and scan all of the peer's deliveries.)
	for range 8 {
		fill()
		if err := s.Ack(ctx, "XBB", ids...); err != nil {
			b.Fatal(err)
		}
	}
	if p, ok := s.(*Postgres); ok {
		if _, err := p.pool.Exec(ctx, `ANALYZE deliveries, queue`); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var cpu int64
	for b.Loop() {
		b.StopTimer()
		fill()
		b.StartTimer()
		cpu0 := cpuTime()
		if err := s.Ack(ctx, "XBB", ids...); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - cpu0
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "ids/s")
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkRead measures the read path on a store holding 1,000 messages:
// History of the ten newest of a channel (a subscriber's wake-up), Get of a
// message by id, and PendingAudit of 512 records.
func BenchmarkRead(b *testing.B) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, filepath.Join(b.TempDir(), "bench.db"), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 1000
	ids := make([]message.ID, 0, n)
	var last uint64
	for range n {
		m := benchMsg()
		seq, _, err := s.Accept(ctx, m, queued("XBB"), []byte("audit record one"), []byte("audit record two"))
		if err != nil {
			b.Fatal(err)
		}
		ids, last = append(ids, m.ID), seq
	}
	b.Run("History", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if es, err := s.History(ctx, "bench", last-10, 100); err != nil || len(es) != 10 {
				b.Fatalf("History = %d entries, %v", len(es), err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, _, err := s.Get(ctx, ids[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("PendingAudit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if p, err := s.PendingAudit(ctx, 0, 512); err != nil || len(p) != 512 {
				b.Fatalf("PendingAudit = %d, %v", len(p), err)
			}
		}
	})
}
