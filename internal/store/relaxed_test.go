package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"liaison/internal/message"
)

// writerPragma reads a setting of the SQLite writer's connection (its only
// one), between batches.
func writerPragma(t *testing.T, s *SQLite, name string) int {
	t.Helper()
	var v int
	if err := s.wdb.QueryRowContext(context.Background(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// TestRelaxedCommits: the store's relaxed writes (an ack, a sent mark, a
// release) commit without a flush, and a lease, kept in memory, does not
// commit at all; an accept after them commits durably again,
// with synchronous=FULL and automatic checkpoints back; a FLASH accept
// commits durably without a checkpoint; and no more than maxDeferred such
// commits follow each other.
func TestRelaxedCommits(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	const full, off = 2, 0
	want := func(step string, durable, relaxed uint64, sync, ckpt int) {
		t.Helper()
		st := s.CommitStats()
		if st.Durable != durable || st.Relaxed != relaxed {
			t.Errorf("after %s: %d durable and %d relaxed commits, want %d and %d", step, st.Durable, st.Relaxed, durable, relaxed)
		}
		if got := writerPragma(t, s, "synchronous"); got != sync {
			t.Errorf("after %s: synchronous=%d, want %d", step, got, sync)
		}
		if got := writerPragma(t, s, "wal_autocheckpoint"); got != ckpt {
			t.Errorf("after %s: wal_autocheckpoint=%d, want %d", step, got, ckpt)
		}
	}
	want("opening", 0, 0, full, walAutocheckpoint)

	m := newMsg("chat", message.Routine)
	accept(t, s, m, queued("XBB"))
	want("an accept", 1, 0, full, walAutocheckpoint)
	if got := lease(t, s, "XBB", 1); len(got) != 1 {
		t.Fatalf("leased %d, want 1", len(got))
	}
	want("a lease", 1, 0, full, walAutocheckpoint)
	if err := s.MarkSentBatch(ctx, "XBB", m.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, "XBB", m.ID); err != nil {
		t.Fatal(err)
	}
	want("a sent mark and an ack", 1, 2, off, 0)
	if got := state(t, s, m.ID, "XBB"); got != Delivered {
		t.Errorf("acknowledged message is %q, want delivered", got)
	}

	accept(t, s, newMsg("chat", message.Routine), queued("XBB"))
	want("another accept", 2, 2, full, walAutocheckpoint)
	accept(t, s, newMsg("chat", message.Flash), queued("XBB"))
	want("a FLASH accept", 3, 2, full, 0)
	accept(t, s, newMsg("chat", message.Priority), queued("XBB"))
	want("a PRIORITY accept", 4, 2, full, walAutocheckpoint)

	// A long run of relaxed writes: every maxDeferred+1-th commit is
	// durable, the last one here too.
	for range 2*maxDeferred + 2 {
		if err := s.Release(ctx, "XBB", m.ID); err != nil {
			t.Fatal(err)
		}
	}
	want("a long run of releases", 6, 2+2*maxDeferred, full, walAutocheckpoint)
	// The commit due to be durable is not a FLASH's: it stays urgent,
	// and the next other commit is durable.
	for range maxDeferred {
		if err := s.Release(ctx, "XBB", m.ID); err != nil {
			t.Fatal(err)
		}
	}
	accept(t, s, newMsg("chat", message.Flash), queued("XBB"))
	want("a FLASH accept after a run of releases", 7, 2+3*maxDeferred, full, 0)
	if err := s.Release(ctx, "XBB", m.ID); err != nil {
		t.Fatal(err)
	}
	want("a release after it", 8, 2+3*maxDeferred, full, walAutocheckpoint)
	// Unless FLASH accepts are all there is: then one in 2*maxDeferred+1
	// is durable.
	for range 2*maxDeferred + 1 {
		accept(t, s, newMsg("chat", message.Flash), queued("XBB"))
	}
	want("a long run of FLASH accepts", 9+2*maxDeferred, 2+3*maxDeferred, full, walAutocheckpoint)
	if st := s.CommitStats(); st.Writes != st.Durable+st.Relaxed || st.CommitTime <= 0 {
		t.Errorf("stats %+v: want one write per commit here and some time spent committing", st)
	}
}

// TestRelaxedBatch: a batch is relaxed only if every write in it is; a
// FLASH accept that stops a relaxed batch does not join its transaction
// but commits durably in its own, as an urgent commit.
func TestRelaxedBatch(t *testing.T) {
	s, _ := mergeStore(t, message.ID{})
	b := idleWriter(s)
	var kinds []commitKind // per transaction
	b.begin = func(ctx context.Context, k commitKind) (txn, error) {
		kinds = append(kinds, k)
		return s.b.begin(ctx, k)
	}
	write := func(name string, relax bool, then func()) *writeReq {
		r := kvWrite(name, then)
		r.relax = relax
		return r
	}
	wait := func(rs ...*writeReq) {
		t.Helper()
		for _, r := range rs {
			if err := <-r.done; err != nil {
				t.Fatal(err)
			}
		}
	}

	b.commitAll([]*writeReq{write("r1", true, nil), write("p1", false, nil)}, nil)
	if fmt.Sprint(kinds) != fmt.Sprint([]commitKind{commitDurable}) {
		t.Errorf("a relaxed and a plain write committed as %v, want one durable transaction", kinds)
	}

	kinds = nil
	f := newMsg("chat", message.Flash)
	fr := acceptReqOf(f)
	fr.urgent, fr.flash, fr.done = true, true, make(chan error, 1)
	r2 := write("r2", true, func() { b.flashes.Add(1); b.urgent <- fr })
	r3 := write("r3", true, nil)
	b.commitAll([]*writeReq{r2, r3}, nil)
	wait(r2, r3, fr)
	if want := []commitKind{commitRelaxed, commitUrgent, commitRelaxed}; fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("relaxed writes with a FLASH arriving committed as %v, want %v: the FLASH on its own, durably", kinds, want)
	}
	if _, _, err := s.Get(context.Background(), f.ID); err != nil {
		t.Errorf("the FLASH: %v", err)
	}
}

// testCommitKinds: a store counts its commits (CommitStatser, which both
// of this package's stores are) and commits an accept durably and an ack
// relaxed.
func testCommitKinds(t *testing.T, s Store) {
	cs, ok := s.(CommitStatser)
	if !ok {
		t.Fatalf("%T does not count its commits: it is not a CommitStatser", s)
	}
	before := cs.CommitStats()
	m := newMsg("chat", message.Routine)
	accept(t, s, m, queued("XBB"))
	mid := cs.CommitStats()
	if mid.Durable <= before.Durable || mid.Relaxed != before.Relaxed {
		t.Errorf("an accept: commits %+v → %+v, want one more durable, no relaxed", before, mid)
	}
	if err := s.Ack(context.Background(), "XBB", m.ID); err != nil {
		t.Fatal(err)
	}
	after := cs.CommitStats()
	if after.Relaxed != mid.Relaxed+1 || after.Durable != mid.Durable {
		t.Errorf("an ack: commits %+v → %+v, want one more relaxed, no durable", mid, after)
	}
}

// TestCloseSettles: a store closed after relaxed commits first makes its
// writer's connection durable again, so that the checkpoint SQLite runs as
// it closes flushes the database file before the log goes.
func TestCloseSettles(t *testing.T) {
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	m := newMsg("chat", message.Routine)
	accept(t, s, m, queued("XBB"))
	if err := s.Ack(context.Background(), "XBB", m.ID); err != nil {
		t.Fatal(err)
	}
	if got := writerPragma(t, s, "synchronous"); got != 0 {
		t.Fatalf("after an ack, synchronous=%d, want 0 (relaxed)", got)
	}
	s.b.close() // as Close does first
	if err := s.settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, ckpt := writerPragma(t, s, "synchronous"), writerPragma(t, s, "wal_autocheckpoint"); got != 2 || ckpt != walAutocheckpoint {
		t.Errorf("settled: synchronous=%d wal_autocheckpoint=%d, want 2 and %d", got, ckpt, walAutocheckpoint)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSetConnAfterFailure: a change of the writer's settings that fails
// half-way leaves them unknown, and the next change makes each of them
// again; so a relaxed commit never runs with automatic checkpoints on.
func TestSetConnAfterFailure(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	s.b.close() // the test is the writer now
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.setConn(gone, commitRelaxed); err == nil {
		t.Fatal("setConn with a cancelled context succeeded")
	}
	if err := s.setConn(ctx, commitRelaxed); err != nil {
		t.Fatal(err)
	}
	if sync, ckpt := writerPragma(t, s, "synchronous"), writerPragma(t, s, "wal_autocheckpoint"); sync != 0 || ckpt != 0 {
		t.Errorf("relaxed after a failed change: synchronous=%d wal_autocheckpoint=%d, want 0 and 0", sync, ckpt)
	}
	if err := s.setConn(gone, commitDurable); err == nil {
		t.Fatal("setConn with a cancelled context succeeded")
	}
	if err := s.setConn(ctx, commitDurable); err != nil {
		t.Fatal(err)
	}
	if sync, ckpt := writerPragma(t, s, "synchronous"), writerPragma(t, s, "wal_autocheckpoint"); sync != 2 || ckpt != walAutocheckpoint {
		t.Errorf("durable after a failed change: synchronous=%d wal_autocheckpoint=%d, want 2 and %d", sync, ckpt, walAutocheckpoint)
	}
}
