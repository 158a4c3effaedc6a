package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"liaison/internal/message"
	"liaison/internal/store"
)

func tailMsg(channel string) *message.Message {
	return &message.Message{ID: message.NewID(), Channel: channel, Origin: "XAA", Precedence: message.Routine,
		Created: time.Unix(1700000000, 0), Label: []byte("<label/>"), ContentType: "text/plain", Body: []byte("hello")}
}

// seqs lists the seqs of a channel the tail serves after pos.
func tailSeqs(t *tail, channel string, pos uint64) ([]uint64, bool) {
	es, _, ok := t.since(channel, pos, 1000, nil)
	var out []uint64
	for _, e := range es {
		out = append(out, e.seq)
	}
	return out, ok
}

func TestTailWindow(t *testing.T) {
	type step struct {
		seq uint64 // 0: an Accept that fails
		dup bool
	}
	tests := []struct {
		name string
		// Accepts begin in order, then end in the order of steps.
		steps  []step
		pos    uint64
		want   []uint64
		wantOK bool
	}{
		{"in order", []step{{seq: 5}, {seq: 6}, {seq: 7}}, 4, []uint64{5, 6, 7}, true},
		{"out of order", []step{{seq: 7}, {seq: 5}, {seq: 6}}, 4, []uint64{5, 6, 7}, true},
		{"before the window", []step{{seq: 5}, {seq: 6}}, 2, nil, false},
		{"from inside", []step{{seq: 5}, {seq: 6}, {seq: 7}}, 5, []uint64{6, 7}, true},
		{"duplicate is not published", []step{{seq: 5}, {seq: 3, dup: true}, {seq: 6}}, 4, []uint64{5, 6}, true},
		{"failure loses sync", []step{{seq: 5}, {seq: 0}, {seq: 6}}, 4, nil, false},
		{"failure, then resync", []step{{seq: 5}, {seq: 0}, {seq: 6}}, 5, []uint64{6}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTail(100, 1<<20)
			gens := make([]uint64, len(tt.steps))
			for i := range tt.steps {
				gens[i] = tl.begin()
			}
			for i, s := range tt.steps {
				var err error
				if s.seq == 0 {
					err = fmt.Errorf("disk on fire")
				}
				tl.end(gens[i], s.seq, s.dup, err, tailMsg("c"))
			}
			got, ok := tailSeqs(tl, "c", tt.pos)
			if ok != tt.wantOK || !slices.Equal(got, tt.want) {
				t.Errorf("since(%d) = %v, %v; want %v, %v", tt.pos, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestTailHole: an entry above a hole is not served until the hole fills.
func TestTailHole(t *testing.T) {
	tl := newTail(100, 1<<20)
	g := tl.begin()
	tl.end(g, 1, false, nil, tailMsg("c"))
	g2, g3 := tl.begin(), tl.begin()
	tl.end(g3, 3, false, nil, tailMsg("c"))
	if got, ok := tailSeqs(tl, "c", 0); !ok || !slices.Equal(got, []uint64{1}) {
		t.Fatalf("with seq 2 in flight: since(0) = %v, %v; want [1], true", got, ok)
	}
	if !tl.stalled() {
		t.Errorf("stalled() = false with seq 3 above a hole")
	}
	tl.end(g2, 2, false, nil, tailMsg("c"))
	if got, ok := tailSeqs(tl, "c", 0); !ok || !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("since(0) = %v, %v; want [1 2 3], true", got, ok)
	}
	if w, ok := tl.mark(); !ok || w != 3 {
		t.Errorf("mark() = %d, %v; want 3, true", w, ok)
	}
}

// TestTailBarrier: a tail that lost sync trusts nothing below the first
// seq published after until every Accept then in flight has returned.
func TestTailBarrier(t *testing.T) {
	tl := newTail(100, 1<<20)
	g1, g2 := tl.begin(), tl.begin()
	tl.end(g2, 11, false, nil, tailMsg("c")) // the barrier
	if _, ok := tl.mark(); ok {
		t.Fatalf("synced while seq 10 may be in flight")
	}
	g3 := tl.begin()
	tl.end(g3, 12, false, nil, tailMsg("c"))
	if _, ok := tl.mark(); ok {
		t.Fatalf("synced while seq 10 may be in flight")
	}
	tl.end(g1, 10, false, nil, tailMsg("c"))
	if got, ok := tailSeqs(tl, "c", 9); !ok || !slices.Equal(got, []uint64{10, 11, 12}) {
		t.Fatalf("since(9) = %v, %v; want [10 11 12], true", got, ok)
	}
}

// TestTailLateReturn: an Accept returns after a later one, and a failure
// in between drops the later one's entry with the window. The first seq
// published after the failure is then below a seq that will never be
// published again, so it cannot start the window (it did, and the tail
// stalled above the hole for good).
func TestTailLateReturn(t *testing.T) {
	tl := newTail(100, 1<<20)
	g := tl.begin()
	tl.end(g, 1, false, nil, tailMsg("c"))
	if w, ok := tl.mark(); !ok || w != 1 {
		t.Fatalf("mark after the first publish = %d, %v", w, ok)
	}
	ga, gb, gc := tl.begin(), tl.begin(), tl.begin()
	tl.end(gb, 3, false, nil, tailMsg("c"))                        // 2 is still in flight
	tl.end(gc, 0, false, errors.New("store failed"), tailMsg("c")) // drops the window and 3
	tl.end(ga, 2, false, nil, tailMsg("c"))                        // returns late
	gd := tl.begin()
	tl.end(gd, 4, false, nil, tailMsg("c"))
	if tl.stalled() {
		t.Fatal("tail stalled above a hole")
	}
	if w, ok := tl.mark(); !ok || w != 4 {
		t.Fatalf("mark = %d, %v; want 4, true", w, ok)
	}
	if _, ok := tailSeqs(tl, "c", 2); ok {
		t.Fatal("the tail claims to hold seq 3, which it dropped")
	}
	if got, ok := tailSeqs(tl, "c", 3); !ok || !slices.Equal(got, []uint64{4}) {
		t.Fatalf("since(3) = %v, %v; want [4], true", got, ok)
	}
}

func TestTailTrim(t *testing.T) {
	tl := newTail(4, 1<<20)
	for s := uint64(1); s <= 20; s++ {
		tl.end(tl.begin(), s, false, nil, tailMsg("c"))
	}
	if _, ok := tailSeqs(tl, "c", 1); ok {
		t.Errorf("since(1) served from memory after trimming to 4..8 entries")
	}
	if got, ok := tailSeqs(tl, "c", 17); !ok || !slices.Equal(got, []uint64{18, 19, 20}) {
		t.Errorf("since(17) = %v, %v; want [18 19 20], true", got, ok)
	}

	// 13 bytes a message, at most 50 kept: trimmed to at most 25.
	tl = newTail(100, 50)
	for s := uint64(1); s <= 10; s++ {
		tl.end(tl.begin(), s, false, nil, tailMsg("c"))
	}
	if _, ok := tailSeqs(tl, "c", 5); ok {
		t.Errorf("since(5) served from memory with 50 bytes kept")
	}
	if got, ok := tailSeqs(tl, "c", 9); !ok || !slices.Equal(got, []uint64{10}) {
		t.Errorf("since(9) = %v, %v; want [10], true", got, ok)
	}
}

// TestSubscribeMatchesStore runs concurrent Accepts and AcceptBatches on a
// SQLite store, some failing, with a small tail (or none, as on PostgreSQL), and checks
// that every subscriber sees exactly its channel's history: no entry
// skipped, repeated or reordered.
func TestSubscribeMatchesStore(t *testing.T) {
	for _, withTail := range []bool{true, false} {
		t.Run(fmt.Sprintf("tail=%v", withTail), func(t *testing.T) { testSubscribeMatchesStore(t, withTail) })
	}
}

func testSubscribeMatchesStore(t *testing.T, withTail bool) {
	ctx := t.Context()
	raw, err := store.OpenSQLite(ctx, t.TempDir()+"/s.db", store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	n := &Node{store: raw, history: newSignal(), status: newSignal(), quit: make(chan struct{})}
	if withTail {
		n.tail = newTail(16, 1<<20)
		n.store = tailStore{Store: raw, t: n.tail}
	}
	channels := []string{"a", "b", "c"}
	const writers, each = 6, 60

	// Subscribers from the start, and one that starts late.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	subs := map[string][]<-chan uint64{}
	start := func(channel string, after uint64) {
		es := n.subscribe(sctx, channel, after, false)
		seqs := make(chan uint64, writers*each)
		go func() {
			defer close(seqs)
			for e := range es {
				seqs <- e.Seq
			}
		}()
		subs[channel] = append(subs[channel], seqs)
	}
	for _, c := range channels {
		start(c, 0)
	}

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var prev *message.Message
			for i := 0; i < each; {
				actx := ctx
				if i%25 == 7 && i < each-10 {
					c, cancel := context.WithCancel(ctx)
					cancel() // this Accept fails
					actx = c
				}
				if w%2 == 0 {
					// Even writers accept one at a time, odd ones in
					// batches of 1 to 6 items, with duplicates of an
					// earlier message and within the batch.
					n.store.Accept(actx, tailMsg(channels[(w+i)%len(channels)]), nil)
					i++
				} else {
					var items []store.AcceptItem
					for k := range 1 + i%4 {
						m := tailMsg(channels[(w+i+k)%len(channels)])
						items = append(items, store.AcceptItem{Msg: m})
						if k == 1 && prev != nil {
							items = append(items, store.AcceptItem{Msg: prev})
						}
						if k == 2 {
							items = append(items, store.AcceptItem{Msg: m})
						}
						prev = m
					}
					n.store.AcceptBatch(actx, items)
					i += len(items)
				}
				n.history.fire() // as Submit does
			}
		})
		if w == writers/2 {
			start("b", 0)
		}
	}
	wg.Wait()
	if w, ok := n.tail.mark(); withTail && !ok {
		// Every writer's last Accept succeeds: the tail resyncs after
		// the last failure.
		t.Errorf("tail not synced after the writers finished (mark %d)", w)
	}
	if withTail && n.tail.stalled() {
		// Every accepted seq was published: no hole is left.
		n.tail.mu.Lock()
		var ps []uint64
		for k := range n.tail.pending {
			ps = append(ps, k)
		}
		slices.Sort(ps)
		t.Errorf("tail stalled above a hole after the writers finished: base %d w %d barrier %d pending %v", n.tail.base, n.tail.w(), n.tail.barrier, ps)
		n.tail.mu.Unlock()
	}

	for _, c := range channels {
		es, err := raw.History(ctx, c, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		var want []uint64
		for _, e := range es {
			want = append(want, e.Seq)
		}
		for i, seqs := range subs[c] {
			var got []uint64
			deadline := time.After(10 * time.Second)
			for len(got) < len(want) {
				select {
				case s := <-seqs:
					got = append(got, s)
				case <-deadline:
					t.Fatalf("channel %s subscriber %d: got %d of %d entries", c, i, len(got), len(want))
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("channel %s subscriber %d: got %v\nwant %v", c, i, got, want)
			}
		}
	}
	cancel()
}

// TestTailStoreBatch checks that a batch publishes each message it
// accepts, skipping duplicates, and that a failed batch drops the window
// until the tail resyncs.
func TestTailStoreBatch(t *testing.T) {
	ctx := t.Context()
	raw, err := store.OpenSQLite(ctx, t.TempDir()+"/s.db", store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tl := newTail(100, 1<<20)
	s := tailStore{Store: raw, t: tl}
	first := tailMsg("a")
	if _, _, err := s.Accept(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	a, b := tailMsg("a"), tailMsg("b")
	items := []store.AcceptItem{{Msg: a}, {Msg: first}, {Msg: b}, {Msg: a}, {Msg: tailMsg("a")}}
	res, err := s.AcceptBatch(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	if got := []bool{res[0].Dup, res[1].Dup, res[2].Dup, res[3].Dup, res[4].Dup}; !slices.Equal(got, []bool{false, true, false, true, false}) {
		t.Fatalf("dup flags %v", got)
	}
	if w, ok := tl.mark(); !ok || w != 4 {
		t.Fatalf("mark = %d, %v; want 4, true", w, ok)
	}
	if got, ok := tailSeqs(tl, "a", 0); !ok || !slices.Equal(got, []uint64{1, 2, 4}) {
		t.Errorf("channel a from the tail: %v, %v; want [1 2 4]", got, ok)
	}
	if got, ok := tailSeqs(tl, "b", 0); !ok || !slices.Equal(got, []uint64{3}) {
		t.Errorf("channel b from the tail: %v, %v; want [3]", got, ok)
	}

	bad := []store.Route{{Peer: "XBB", State: "no-such-state"}}
	if _, err := s.AcceptBatch(ctx, []store.AcceptItem{{Msg: tailMsg("a")}, {Msg: tailMsg("b"), Routes: bad}}); err == nil {
		t.Fatal("batch with a bad route state succeeded")
	}
	if _, ok := tl.mark(); ok {
		t.Fatal("tail still synced after a failed batch")
	}
	res, err = s.AcceptBatch(ctx, []store.AcceptItem{{Msg: tailMsg("a")}, {Msg: tailMsg("a")}})
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := tl.mark(); !ok || w != res[1].Seq {
		t.Fatalf("after resync mark = %d, %v; want %d, true", w, ok, res[1].Seq)
	}
	if got, ok := tailSeqs(tl, "a", res[0].Seq-1); !ok || !slices.Equal(got, []uint64{res[0].Seq, res[1].Seq}) {
		t.Errorf("channel a after resync: %v, %v; want [%d %d]", got, ok, res[0].Seq, res[1].Seq)
	}
}
