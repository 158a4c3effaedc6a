package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"liaison/internal/message"
)

// testAcceptBatch is the AcceptBatch part of the suite: s is fresh.
func testAcceptBatch(t *testing.T, s Store) {
	ctx := context.Background()
	if res, err := s.AcceptBatch(ctx, nil); err != nil || len(res) != 0 {
		t.Fatalf("empty batch: %v, %v", res, err)
	}
	old := newMsg("chat", message.Routine)
	s0 := accept(t, s, old, queued("XBB"))
	m1, m2, m3 := newMsg("chat", message.Flash), newMsg("chat", message.Routine), newMsg("ops", message.Priority)
	items := []AcceptItem{
		{Msg: m1, Routes: queued("XBB"), Audit: [][]byte{[]byte("m1a"), []byte("m1b")}},
		{Msg: old, Routes: queued("XBB", "XCC"), Audit: [][]byte{[]byte("old")}}, // accepted before
		{Msg: m2, Routes: []Route{{Peer: "XBB", State: Held, Code: "hold", Reason: "held"}}, Audit: [][]byte{[]byte("m2")}},
		{Msg: m1, Routes: queued("XCC"), Audit: [][]byte{[]byte("m1 again")}}, // earlier in the batch
		{Msg: m3, Audit: [][]byte{[]byte("m3")}},
	}
	res, err := s.AcceptBatch(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	want := []AcceptResult{{s0 + 1, false}, {s0, true}, {s0 + 2, false}, {s0 + 1, true}, {s0 + 3, false}}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("results %v, want %v", res, want)
	}
	h, err := s.History(ctx, "chat", 0, 10)
	if err != nil || len(h) != 3 || h[0].Msg.ID != old.ID || h[1].Msg.ID != m1.ID || h[2].Msg.ID != m2.ID || h[1].Seq != s0+1 || h[2].Seq != s0+2 {
		t.Fatalf("chat history = %v, %v; want old, m1, m2 in order", h, err)
	}
	sameMsg(t, h[1].Msg, m1)
	if st := state(t, s, m1.ID, "XCC"); st != "" {
		t.Fatalf("the in-batch duplicate wrote a route for XCC: %q", st)
	}
	if st := state(t, s, old.ID, "XCC"); st != "" {
		t.Fatalf("the duplicate of history wrote a route for XCC: %q", st)
	}
	if st := state(t, s, m2.ID, "XBB"); st != Held {
		t.Fatalf("m2 for XBB is %q, want held", st)
	}
	// Queued FLASH m1 and ROUTINE old are leasable, held m2 is not.
	if got := lease(t, s, "XBB", 10); len(got) != 2 || got[0].ID != m1.ID || got[1].ID != old.ID {
		t.Fatalf("lease = %v, want m1 then old", ids(got))
	}
	pend, err := s.PendingAudit(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var recs []string
	for _, p := range pend {
		recs = append(recs, string(p.Record))
	}
	if strings.Join(recs, ",") != "m1a,m1b,m2,m3" {
		t.Fatalf("pending audit %v, want m1a,m1b,m2,m3: nothing from duplicates", recs)
	}
	// The numbers the duplicates did not use were given back: no gaps.
	if seq := accept(t, s, newMsg("chat", message.Routine), nil); seq != s0+4 {
		t.Fatalf("next seq %d, want %d", seq, s0+4)
	}
	// A batch of duplicates only changes nothing.
	if res, err := s.AcceptBatch(ctx, []AcceptItem{{Msg: m2}, {Msg: m3}}); err != nil || !res[0].Dup || !res[1].Dup || res[1].Seq != s0+3 {
		t.Fatalf("all-duplicate batch: %v, %v", res, err)
	}
	if seq := accept(t, s, newMsg("chat", message.Routine), nil); seq != s0+5 {
		t.Fatalf("next seq after an all-duplicate batch %d, want %d", seq, s0+5)
	}
	// Atomic: a bad item fails the batch and stores nothing of it.
	m4 := newMsg("chat", message.Routine)
	if _, err := s.AcceptBatch(ctx, []AcceptItem{{Msg: m4}, {Msg: newMsg("chat", message.Routine), Routes: []Route{{Peer: "XBB", State: "bogus"}}}}); err == nil {
		t.Fatal("batch with a bad route accepted")
	}
	if _, _, err := s.Get(ctx, m4.ID); err == nil {
		t.Fatal("first item of a failed batch was stored")
	}
	if _, err := s.AcceptBatch(ctx, []AcceptItem{{Msg: m4}, {Msg: nil}}); err == nil {
		t.Fatal("batch with a nil message accepted")
	}
}

// testMarkSentBatch: queued deliveries move to sent, others stay.
func testMarkSentBatch(t *testing.T, s Store) {
	ctx := context.Background()
	a, b, c := newMsg("chat", message.Routine), newMsg("chat", message.Routine), newMsg("chat", message.Routine)
	accept(t, s, a, queued("XBB", "XCC"))
	accept(t, s, b, queued("XBB"))
	accept(t, s, c, queued("XBB"))
	if err := s.Ack(ctx, "XBB", c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSentBatch(ctx, "XBB", a.ID, b.ID, c.ID, message.NewID()); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		id   message.ID
		peer string
		want DeliveryState
	}{{a.ID, "XBB", Sent}, {b.ID, "XBB", Sent}, {a.ID, "XCC", Queued}, {c.ID, "XBB", Delivered}} {
		if got := state(t, s, x.id, x.peer); got != x.want {
			t.Errorf("%s for %s is %q, want %q", x.id, x.peer, got, x.want)
		}
	}
	if err := s.MarkSentBatch(ctx, "XBB"); err != nil {
		t.Fatal(err)
	}
}

// testAcceptBatchConcurrent: batches and single accepts racing, with
// overlapping ids, store each message once and leave no seq gaps.
func testAcceptBatchConcurrent(t *testing.T, s Store) {
	ctx := context.Background()
	const G, B, N = 8, 20, 10
	shared := make([]*message.Message, B)
	for i := range shared {
		shared[i] = newMsg("load", message.Routine)
	}
	var wg sync.WaitGroup
	errs := make(chan error, G)
	for range G {
		wg.Go(func() {
			for range N {
				items := []AcceptItem{}
				for _, m := range shared[:B/2] {
					items = append(items, AcceptItem{Msg: m, Routes: queued("XBB")})
				}
				for range B / 2 {
					items = append(items, AcceptItem{Msg: newMsg("load", message.Routine), Routes: queued("XBB")})
				}
				if _, err := s.AcceptBatch(ctx, items); err != nil {
					errs <- err
					return
				}
				if _, _, err := s.Accept(ctx, shared[B/2+len(items)%(B/2)], queued("XBB")); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	h, err := s.History(ctx, "load", 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[message.ID]bool{}
	for i, e := range h {
		if seen[e.Msg.ID] {
			t.Fatalf("message %s stored twice", e.Msg.ID)
		}
		seen[e.Msg.ID] = true
		if i > 0 && e.Seq != h[i-1].Seq+1 {
			t.Fatalf("seq gap: %d after %d", e.Seq, h[i-1].Seq)
		}
	}
	if want := B/2 + G*N*B/2 + 1; len(h) != want {
		t.Fatalf("history has %d, want %d", len(h), want)
	}
}
