package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"liaison/internal/message"
)

var errPoison = errors.New("poisoned item")

// mergeStore is a SQLite store whose writer records the items of each
// acceptTx it runs, and fails one that holds poison.
func mergeStore(t *testing.T, poison message.ID) (*SQLite, *[][]message.ID) {
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	var calls [][]message.ID
	s.b.accept = func(ctx context.Context, q querier, items []AcceptItem, out []AcceptResult) error {
		var ids []message.ID
		for _, it := range items {
			ids = append(ids, it.Msg.ID)
		}
		calls = append(calls, ids)
		if slices.Contains(ids, poison) {
			return errPoison
		}
		return s.acceptTx(ctx, q, items, out)
	}
	return s, &calls
}

// idleWriter is a batcher of s's that no goroutine runs: the test is its
// writer, calling commitAll itself.
func idleWriter(s *SQLite) *batcher {
	return &batcher{begin: s.b.begin, accept: s.b.accept, log: s.b.log, maxBatch: 8,
		reqs: make(chan *writeReq, 8), urgent: make(chan *writeReq, 8)}
}

// kvWrite is a write that stores name under key name in kv, then calls
// then (if not nil) inside the transaction.
func kvWrite(name string, then func()) *writeReq {
	return &writeReq{done: make(chan error, 1), fn: func(ctx context.Context, q querier) error {
		if _, err := q.exec(ctx, `INSERT INTO kv (key, val) VALUES (?, ?)`, name, []byte(name)); err != nil {
			return err
		}
		if then != nil {
			then()
		}
		return nil
	}}
}

func acceptReqOf(ms ...*message.Message) *writeReq {
	r := &writeReq{acc: &acceptReq{out: make([]AcceptResult, len(ms))}}
	for _, m := range ms {
		r.acc.items = append(r.acc.items, AcceptItem{Msg: m, Routes: queued("XBB"), Audit: [][]byte{m.ID[:]}})
	}
	return r
}

// TestBatcherMergesAccepts: the accepts of one writer batch run as one
// acceptTx, with the results they would have had one after the other
// (including duplicates across requests), and the batch's other writes
// run too.
func TestBatcherMergesAccepts(t *testing.T) {
	ctx := context.Background()
	s, calls := mergeStore(t, message.ID{})
	old := newMsg("chat", message.Routine)
	s0 := accept(t, s, old, queued("XBB"))
	a, b, c := newMsg("chat", message.Routine), newMsg("chat", message.Flash), newMsg("chat", message.Routine)
	r1, r3, r4 := acceptReqOf(a, old), acceptReqOf(b, a), acceptReqOf(c)
	r2 := &writeReq{fn: func(ctx context.Context, q querier) error {
		_, err := q.exec(ctx, `INSERT INTO kv (key, val) VALUES (?, ?)`, "k", []byte("v"))
		return err
	}}
	*calls = nil
	_, errs, _ := s.b.runBatch([]*writeReq{r1, r2, r3, r4}, nil)
	if fmt.Sprint(errs) != "[<nil> <nil> <nil> <nil>]" {
		t.Fatalf("errors %v", errs)
	}
	if want := [][]message.ID{{a.ID, old.ID, b.ID, a.ID, c.ID}}; fmt.Sprint(*calls) != fmt.Sprint(want) {
		t.Fatalf("acceptTx calls %v, want one with every item", *calls)
	}
	for _, x := range []struct {
		got, want []AcceptResult
	}{
		{r1.acc.out, []AcceptResult{{s0 + 1, false}, {s0, true}}},
		{r3.acc.out, []AcceptResult{{s0 + 2, false}, {s0 + 1, true}}},
		{r4.acc.out, []AcceptResult{{s0 + 3, false}}},
	} {
		if !slices.Equal(x.got, x.want) {
			t.Errorf("results %v, want %v", x.got, x.want)
		}
	}
	if v, err := s.GetState(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("the batch's other write: %q, %v", v, err)
	}
	if seq := accept(t, s, newMsg("chat", message.Routine), nil); seq != s0+4 {
		t.Fatalf("next seq %d, want %d", seq, s0+4)
	}
	pend, err := s.PendingAudit(ctx, 0, 10)
	if err != nil || len(pend) != 3 {
		t.Fatalf("pending audit %d, %v; want a, b, c (nothing from the duplicates)", len(pend), err)
	}
	for i, m := range []*message.Message{a, b, c} {
		if string(pend[i].Record) != string(m.ID[:]) {
			t.Fatalf("pending audit %d is not %s's", i, m.ID)
		}
	}
}

// TestBatcherMergeFallback: when the merged acceptTx fails, each accept
// runs on its own, so only the failing one fails, and seqs have no gap.
func TestBatcherMergeFallback(t *testing.T) {
	bad := newMsg("chat", message.Routine)
	s, calls := mergeStore(t, bad.ID)
	s0 := accept(t, s, newMsg("chat", message.Routine), nil)
	d, e := newMsg("chat", message.Routine), newMsg("chat", message.Routine)
	r1, r2, r3 := acceptReqOf(d), acceptReqOf(bad), acceptReqOf(e)
	*calls = nil
	_, errs, _ := s.b.runBatch([]*writeReq{r1, r2, r3}, nil)
	if errs[0] != nil || !errors.Is(errs[1], errPoison) || errs[2] != nil {
		t.Fatalf("errors %v, want only the second to fail", errs)
	}
	if want := [][]message.ID{{d.ID, bad.ID, e.ID}, {d.ID}, {bad.ID}, {e.ID}}; fmt.Sprint(*calls) != fmt.Sprint(want) {
		t.Fatalf("acceptTx calls %v, want the merged one then each", *calls)
	}
	if r1.acc.out[0] != (AcceptResult{s0 + 1, false}) || r3.acc.out[0] != (AcceptResult{s0 + 2, false}) {
		t.Fatalf("results %v %v", r1.acc.out, r3.acc.out)
	}
	if _, _, err := s.Get(context.Background(), bad.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the failed accept was stored: %v", err)
	}
	if seq := accept(t, s, newMsg("chat", message.Routine), nil); seq != s0+3 {
		t.Fatalf("next seq %d, want %d", seq, s0+3)
	}
	// A lone accept in a batch is not merged with anything.
	*calls = nil
	f := newMsg("chat", message.Routine)
	if _, errs, _ := s.b.runBatch([]*writeReq{acceptReqOf(f)}, nil); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if len(*calls) != 1 || len((*calls)[0]) != 1 {
		t.Fatalf("acceptTx calls %v", *calls)
	}
}

// TestBatcherUrgentFirst: urgent writes found waiting with others commit
// first, in a transaction of their own, in arrival order; the others then
// commit together as before, and every request gets its answer.
func TestBatcherUrgentFirst(t *testing.T) {
	s, calls := mergeStore(t, message.ID{})
	a, f1, c, f2 := newMsg("chat", message.Routine), newMsg("chat", message.Flash), newMsg("chat", message.Priority), newMsg("chat", message.Flash)
	ra, rf1, rc, rf2 := acceptReqOf(a), acceptReqOf(f1), acceptReqOf(c), acceptReqOf(f2)
	rf1.urgent, rf2.urgent = true, true
	var order []string
	lease := &writeReq{urgent: true, fn: func(ctx context.Context, q querier) error {
		order = append(order, "urgent write")
		return nil
	}}
	plain := &writeReq{fn: func(ctx context.Context, q querier) error {
		order = append(order, "other write")
		return nil
	}}
	batch := []*writeReq{ra, rf1, plain, rc, lease, rf2}
	for _, r := range batch {
		r.done = make(chan error, 1)
	}
	commits := 0
	begin := s.b.begin
	s.b.begin = func(ctx context.Context, k commitKind) (txn, error) { commits++; return begin(ctx, k) }
	s.b.commitAll(batch, nil)
	for i, r := range []*writeReq{ra, rf1, plain, rc, lease, rf2} {
		if err := <-r.done; err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if want := fmt.Sprint([][]message.ID{{f1.ID, f2.ID}, {a.ID, c.ID}}); fmt.Sprint(*calls) != want {
		t.Errorf("accepts ran as %v, want the FLASH ones first, together, then the others: %v", *calls, want)
	}
	if fmt.Sprint(order) != "[urgent write other write]" || commits != 2 {
		t.Errorf("writes ran %v in %d transactions, want the urgent one first, 2 transactions", order, commits)
	}
	for _, m := range []*message.Message{a, f1, c, f2} {
		if _, _, err := s.Get(context.Background(), m.ID); err != nil {
			t.Errorf("%s not stored: %v", m.Precedence, err)
		}
	}

	// All urgent, or none: one transaction, as before.
	*calls, commits = nil, 0
	r1, r2 := acceptReqOf(newMsg("chat", message.Flash)), acceptReqOf(newMsg("chat", message.Flash))
	r1.urgent, r2.urgent = true, true
	r1.done, r2.done = make(chan error, 1), make(chan error, 1)
	s.b.commitAll([]*writeReq{r1, r2}, nil)
	if <-r1.done != nil || <-r2.done != nil || commits != 1 {
		t.Errorf("two urgent accepts took %d transactions, want 1", commits)
	}
}

// TestBatcherFlashStopsBatch: a FLASH accept that arrives while a batch's
// writes run stops the batch after the write under way; the FLASH joins
// that part, which commits, and the rest follows in the next transaction.
// Another urgent write (a lease on news) does not stop a batch, nor does a
// FLASH stop an urgent batch.
func TestBatcherFlashStopsBatch(t *testing.T) {
	ctx := context.Background()
	s, _ := mergeStore(t, message.ID{})
	b := idleWriter(s)
	commits := 0
	b.begin = func(ctx context.Context, k commitKind) (txn, error) { commits++; return s.b.begin(ctx, k) }
	var order []string
	write := func(name string, then func()) *writeReq {
		return kvWrite(name, func() {
			order = append(order, name)
			if then != nil {
				then()
			}
		})
	}
	// queue puts r on the writer's queues as submit does.
	queue := func(r *writeReq) {
		if r.flash {
			b.flashes.Add(1)
		}
		b.urgent <- r
	}
	f := newMsg("chat", message.Flash)
	fr := acceptReqOf(f)
	fr.urgent, fr.flash, fr.done = true, true, make(chan error, 1)
	w1 := write("w1", func() { queue(fr) })
	w2 := write("w2", func() {
		// The store's readers see only what was committed.
		_, _, ferr := s.Get(ctx, f.ID)
		_, werr := s.GetState(ctx, "w1")
		if commits != 2 || ferr != nil || werr != nil {
			t.Errorf("w2 ran in transaction %d (FLASH: %v, w1: %v), want 2, after the FLASH and w1 committed", commits, ferr, werr)
		}
		select {
		case err := <-fr.done:
			fr.done <- err
		default:
			t.Errorf("the FLASH was not answered before w2 ran")
		}
	})
	w3 := write("w3", nil)
	b.commitAll([]*writeReq{w1, w2, w3}, nil)
	for _, r := range []*writeReq{w1, w2, w3, fr} {
		if err := <-r.done; err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(order) != "[w1 w2 w3]" || commits != 2 || b.flashes.Load() != 0 {
		t.Errorf("writes ran %v in %d transactions (%d FLASH waiting), want [w1 w2 w3] in 2, none waiting", order, commits, b.flashes.Load())
	}
	if _, _, err := s.Get(ctx, f.ID); err != nil {
		t.Errorf("the FLASH: %v", err)
	}

	// A lease on news (urgent, not a FLASH) waits for the batch's end.
	order, commits = nil, 0
	lease := write("lease", nil)
	lease.urgent = true
	x1, x2 := write("x1", func() { queue(lease) }), write("x2", nil)
	b.commitAll([]*writeReq{x1, x2}, nil)
	if fmt.Sprint(order) != "[x1 x2]" || commits != 1 || len(b.urgent) != 1 {
		t.Errorf("batch ran %v in %d transactions (%d urgent waiting), want [x1 x2] in 1, the lease waiting", order, commits, len(b.urgent))
	}
	<-b.urgent

	// An urgent batch runs to its end.
	order, commits = nil, 0
	f2 := acceptReqOf(newMsg("chat", message.Flash))
	f2.urgent, f2.flash, f2.done = true, true, make(chan error, 1)
	y1 := write("y1", func() { queue(f2) })
	y2 := write("y2", nil)
	y1.urgent, y2.urgent = true, true
	b.commitAll([]*writeReq{y1, y2}, nil)
	if fmt.Sprint(order) != "[y1 y2]" || commits != 1 || len(b.urgent) != 1 {
		t.Errorf("urgent batch ran %v in %d transactions (%d urgent waiting), want [y1 y2] in 1", order, commits, len(b.urgent))
	}
}

// TestUrgentMarks: accepting a FLASH is urgent by itself; any write is
// urgent when its context says so.
func TestUrgentMarks(t *testing.T) {
	ctx := context.Background()
	items := func(ps ...message.Precedence) []AcceptItem {
		var out []AcceptItem
		for _, p := range ps {
			out = append(out, AcceptItem{Msg: newMsg("chat", p)})
		}
		return out
	}
	for _, tc := range []struct {
		name          string
		ctx           context.Context
		items         []AcceptItem
		urgent, flash bool
	}{
		{"routine", ctx, items(message.Routine), false, false},
		{"immediate and priority", ctx, items(message.Immediate, message.Priority), false, false},
		{"a flash among others", ctx, items(message.Routine, message.Flash), true, true},
		{"urgent context", Urgent(ctx), items(message.Priority), true, false},
	} {
		if u, f := acceptFlags(tc.ctx, tc.items); u != tc.urgent || f != tc.flash {
			t.Errorf("%s: urgent %v, flash %v; want %v, %v", tc.name, u, f, tc.urgent, tc.flash)
		}
	}
	if isUrgent(ctx) || !isUrgent(Urgent(ctx)) {
		t.Error("Urgent does not mark its context alone")
	}
}
