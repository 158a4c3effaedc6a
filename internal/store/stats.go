package store

import (
	"sync/atomic"
	"time"
)

// CommitStats counts a store's commits since it opened: how well group
// commit shares flushes (Writes per commit) and what the flushes cost.
type CommitStats struct {
	Durable uint64 // commits flushed before they returned
	Relaxed uint64 // commits of relaxed writes only, flushed by a later durable one
	// Writes is how many write requests the commits held (an Accept or an
	// AcceptBatch counts once, as does a Lease or an Ack).
	Writes uint64
	// CommitTime is the time spent in commits: writing the log and, for
	// durable ones, waiting for the disk.
	CommitTime time.Duration
}

// Sub is what was committed between the counts before and c.
func (c CommitStats) Sub(before CommitStats) CommitStats {
	return CommitStats{Durable: c.Durable - before.Durable, Relaxed: c.Relaxed - before.Relaxed,
		Writes: c.Writes - before.Writes, CommitTime: c.CommitTime - before.CommitTime}
}

// CommitStatser is implemented by stores that count their commits (both
// of this package's stores).
type CommitStatser interface {
	CommitStats() CommitStats
}

// commitStats is CommitStats, updated as commits happen.
type commitStats struct {
	durable, relaxed, writes atomic.Uint64
	nanos                    atomic.Int64
}

func (s *commitStats) add(durable bool, writes int, took time.Duration) {
	if durable {
		s.durable.Add(1)
	} else {
		s.relaxed.Add(1)
	}
	s.writes.Add(uint64(writes))
	s.nanos.Add(int64(took))
}

func (s *commitStats) get() CommitStats {
	return CommitStats{Durable: s.durable.Load(), Relaxed: s.relaxed.Load(), Writes: s.writes.Load(), CommitTime: time.Duration(s.nanos.Load())}
}
