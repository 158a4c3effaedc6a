package node_test

import (
	"context"
	"testing"
	"time"

	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/node/nodetest"
)

// BenchmarkSubmit is one sender submitting messages one after another to
// an in-process node (SQLite store, the audit log's default 50ms
// batching, which Submit does not wait for).
func BenchmarkSubmit(b *testing.B) {
	usa, pak := nodetest.NewHome(b, "USA", nodetest.Config{}), nodetest.NewHome(b, "PAK", nodetest.Config{})
	n := nodetest.Start(b, usa, node.Options{AuditBatchAge: 50 * time.Millisecond})
	nodetest.Install(b, n, nodetest.Agreement(b, time.Now(), usa, pak))
	lbl := nodetest.Label(b, "USA", "CONFIDENTIAL", "USA", "PAK")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.Submit(ctx, msg("exercise", message.Routine, lbl, "bench")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmitParallel is many senders at once.
func BenchmarkSubmitParallel(b *testing.B) {
	usa, pak := nodetest.NewHome(b, "USA", nodetest.Config{}), nodetest.NewHome(b, "PAK", nodetest.Config{})
	n := nodetest.Start(b, usa, node.Options{AuditBatchAge: 50 * time.Millisecond})
	nodetest.Install(b, n, nodetest.Agreement(b, time.Now(), usa, pak))
	lbl := nodetest.Label(b, "USA", "CONFIDENTIAL", "USA", "PAK")
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := n.Submit(ctx, msg("exercise", message.Routine, lbl, "bench")); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
