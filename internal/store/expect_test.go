package store

import (
	"testing"
	"time"

	"liaison/internal/message"
)

// expecting is an idle batcher of a fresh store (the test is its writer)
// whose batches expect recent accept requests, and wait up to wait for
// them; each such wait is reported on the channel.
func expecting(t *testing.T, recent int, wait time.Duration) (*batcher, <-chan struct{}) {
	s, _ := mergeStore(t, message.ID{})
	b := idleWriter(s)
	b.recent, b.expectMax = recent, wait
	c := make(chan struct{}, 16)
	b.onExpect = func() { c <- struct{}{} }
	return b, c
}

// expectAsync runs b.expect on batch in a goroutine.
func expectAsync(b *batcher, batch ...*writeReq) <-chan []*writeReq {
	done := make(chan []*writeReq, 1)
	go func() { done <- b.expect(batch, b.reqs, b.urgent) }()
	return done
}

func waitExpect(t *testing.T, c <-chan struct{}) {
	t.Helper()
	waitSignal(t, c, "the writer did not wait for the batch to fill")
}

func expected(t *testing.T, done <-chan []*writeReq) []*writeReq {
	t.Helper()
	select {
	case got := <-done:
		return got
	case <-time.After(30 * time.Second):
		t.Fatal("expect still waiting")
		return nil
	}
}

func routineAccept() *writeReq { return acceptReqOf(newMsg("chat", message.Routine)) }

// A batch of far fewer accepts than the recent ones waits until it holds
// 3/4 of them, and the recent size decays towards what batches hold.
func TestExpectFillsSmallBatch(t *testing.T) {
	b, waiting := expecting(t, 8, time.Minute)
	done := expectAsync(b, routineAccept())
	waitExpect(t, waiting)
	for range 4 {
		b.reqs <- routineAccept()
	}
	select {
	case got := <-done:
		t.Fatalf("the batch committed with %d accepts, want it to wait for 6 (3/4 of 8)", len(got))
	case <-time.After(50 * time.Millisecond):
	}
	b.reqs <- routineAccept()
	if got := expected(t, done); len(got) != 6 {
		t.Fatalf("batch of %d, want 6", len(got))
	}
	if b.recent != 7 {
		t.Errorf("recent = %d after a batch of 6 with recent 8, want 7 (decayed by 1/8)", b.recent)
	}
}

// Batches as full as the recent ones, batches of no accepts, and batches
// with an urgent write do not wait; neither does a lone caller.
func TestExpectDoesNotWait(t *testing.T) {
	cases := []struct {
		name   string
		recent int
		batch  []*writeReq
	}{
		{"as full as recent ones", 8, []*writeReq{routineAccept(), routineAccept(), routineAccept(), routineAccept(), routineAccept(), routineAccept()}},
		{"no accepts", 8, []*writeReq{kvWrite("a", nil)}},
		{"urgent", 8, []*writeReq{routineAccept(), {urgent: true, acc: &acceptReq{}}}},
		{"lone caller", 1, []*writeReq{routineAccept()}},
		{"first batch", 0, []*writeReq{routineAccept()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, waiting := expecting(t, c.recent, time.Minute)
			got := expected(t, expectAsync(b, c.batch...))
			select {
			case <-waiting:
				t.Fatal("the batch waited")
			default:
			}
			if len(got) != len(c.batch) {
				t.Fatalf("batch of %d, want the %d given", len(got), len(c.batch))
			}
		})
	}
}

// A wait that runs out resets the recent size to what came, so the next
// small batch does not wait; an urgent write ends a wait without that.
func TestExpectWaitEnds(t *testing.T) {
	t.Run("runs out", func(t *testing.T) {
		b, waiting := expecting(t, 8, 10*time.Millisecond)
		got := expected(t, expectAsync(b, routineAccept()))
		waitExpect(t, waiting)
		if len(got) != 1 || b.recent != 1 {
			t.Fatalf("batch of %d, recent %d; want 1 and 1 (the load dropped)", len(got), b.recent)
		}
		expected(t, expectAsync(b, routineAccept()))
		select {
		case <-waiting:
			t.Fatal("the next lone accept waited again")
		default:
		}
	})
	t.Run("urgent", func(t *testing.T) {
		b, waiting := expecting(t, 8, time.Minute)
		done := expectAsync(b, routineAccept())
		waitExpect(t, waiting)
		b.urgent <- &writeReq{urgent: true, acc: &acceptReq{}}
		if got := expected(t, done); len(got) != 2 || !got[1].urgent {
			t.Fatalf("batch %v, want the accept and the urgent write", got)
		}
		if b.recent != 7 {
			t.Errorf("recent = %d, want 7: an urgent write is not a drop in load", b.recent)
		}
	})
}
