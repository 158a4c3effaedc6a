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
	errs := s.b.runBatch([]*writeReq{r1, r2, r3, r4}, nil)
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
	errs := s.b.runBatch([]*writeReq{r1, r2, r3}, nil)
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
	if errs := s.b.runBatch([]*writeReq{acceptReqOf(f)}, nil); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if len(*calls) != 1 || len((*calls)[0]) != 1 {
		t.Fatalf("acceptTx calls %v", *calls)
	}
}
