package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// BenchmarkAppend measures audit appends per second with 1 and 64
// concurrent appenders each waiting for its index (Append), and with one
// caller queuing and collecting (AppendAsync), as the node does.
func BenchmarkAppend(b *testing.B) {
	for _, workers := range []int{1, 64} {
		b.Run(fmt.Sprintf("appenders=%d", workers), func(b *testing.B) {
			l := openBenchLog(b)
			e := testEntry(1)
			b.ReportAllocs()
			var mu sync.Mutex
			n := 0
			next := func() bool {
				mu.Lock()
				defer mu.Unlock()
				if n >= b.N {
					return false
				}
				n++
				return true
			}
			b.ResetTimer()
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for next() {
						if _, err := l.Append(b.Context(), e); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
	b.Run("async", func(b *testing.B) {
		l := openBenchLog(b)
		e := testEntry(1)
		b.ReportAllocs()
		waits := make([]func() (uint64, error), 0, 1024)
		for b.Loop() {
			waits = append(waits, l.AppendAsync(b.Context(), e))
			if len(waits) == cap(waits) {
				collect(b, waits)
				waits = waits[:0]
			}
		}
		collect(b, waits)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	})
}

func collect(b *testing.B, waits []func() (uint64, error)) {
	for _, w := range waits {
		if _, err := w(); err != nil {
			b.Fatal(err)
		}
	}
}

func openBenchLog(b *testing.B) *Log {
	cfg := testConfig(b, testKey(b, 1))
	cfg.BatchMaxAge, cfg.CheckpointInterval = DefaultBatchMaxAge, DefaultCheckpointInterval
	l, err := Open(b.Context(), b.TempDir(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close(context.Background()) })
	return l
}

// BenchmarkAppendBatch feeds the log the way the node's audit pump does:
// AppendBatch of BatchMaxSize entries, queuing the next batch before
// waiting for the one before, for several batch sizes.
func BenchmarkAppendBatch(b *testing.B) {
	for _, size := range []uint{256, 1024, 4096} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			cfg := testConfig(b, testKey(b, 1))
			cfg.BatchMaxSize, cfg.BatchMaxAge, cfg.CheckpointInterval = size, DefaultBatchMaxAge, DefaultCheckpointInterval
			l, err := Open(b.Context(), b.TempDir(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close(context.Background())
			batch := make([]Entry, 0, size)
			prev := func() (int, error) { return 0, nil }
			wait := func(w func() (int, error)) {
				if _, err := w(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				batch = append(batch, testEntry(1))
				if len(batch) == cap(batch) {
					cur := l.AppendBatch(b.Context(), batch)
					wait(prev)
					prev, batch = cur, batch[:0]
				}
			}
			wait(prev)
			wait(l.AppendBatch(b.Context(), batch))
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}
