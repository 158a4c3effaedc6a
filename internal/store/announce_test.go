package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"liaison/internal/message"
)

// acceptAsync accepts m with ctx in a goroutine; the channel gets the error.
func acceptAsync(ctx context.Context, s *SQLite, m *message.Message) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Accept(ctx, m, queued("XBB"))
		done <- err
	}()
	return done
}

// gatheringStore is a mergeStore whose writer waits up to a minute for
// announced accepts and reports each such wait on the channel.
func gatheringStore(t *testing.T) (*SQLite, *[][]message.ID, <-chan struct{}) {
	s, calls := mergeStore(t, message.ID{})
	s.b.gatherMax = time.Minute
	c := make(chan struct{}, 16)
	s.b.onGather = func() { c <- struct{}{} }
	return s, calls, c
}

// waitGather waits until the writer waits for announced accepts.
func waitGather(t *testing.T, c <-chan struct{}) {
	t.Helper()
	waitSignal(t, c, "the writer did not wait for the announced accept")
}

// waitSignal waits for a signal on c, failing with msg after 30 s.
func waitSignal(t *testing.T, c <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatal(msg)
	}
}

// must waits for an accept's outcome, long before the writer's gather
// (set to a minute by these tests) would end by itself.
func must(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: still waiting", what)
	}
}

// A commit waits for the accepts announced before it began, and they
// share it.
func TestAnnouncedAcceptJoinsCommit(t *testing.T) {
	s, calls, waiting := gatheringStore(t)
	ctx := context.Background()
	a, b := newMsg("chat", message.Routine), newMsg("chat", message.Routine)

	actx, drop := s.Announce(ctx)
	defer drop()
	if again, noop := s.Announce(actx); again != actx {
		t.Fatal("announcing an announced context made a second announcement")
	} else {
		noop()
	}
	*calls = nil
	bdone := acceptAsync(ctx, s, b) // not announced: the writer takes it, then waits for a
	waitGather(t, waiting)
	select {
	case err := <-bdone:
		t.Fatalf("b committed (%v) while an announced accept was on its way", err)
	default:
	}
	must(t, acceptAsync(actx, s, a), "the announced accept")
	must(t, bdone, "the accept that waited")
	if want := fmt.Sprint([][]message.ID{{b.ID, a.ID}}); fmt.Sprint(*calls) != want {
		t.Fatalf("acceptTx calls %v, want one with both", *calls)
	}
	if got := s.b.announced.Load() - s.b.ended.Load(); got != 0 {
		t.Fatalf("%d announcements still open after the accept", got)
	}
}

// An announcement dropped, or an urgent write, ends the wait; writers that
// announce nothing never wait.
func TestAnnouncedWaitEnds(t *testing.T) {
	s, calls, waiting := gatheringStore(t)
	ctx := context.Background()

	t.Run("dropped", func(t *testing.T) {
		_, drop := s.Announce(ctx)
		*calls = nil
		b := newMsg("chat", message.Routine)
		bdone := acceptAsync(ctx, s, b)
		waitGather(t, waiting)
		drop()
		drop() // idempotent
		must(t, bdone, "the accept that waited")
		if want := fmt.Sprint([][]message.ID{{b.ID}}); fmt.Sprint(*calls) != want {
			t.Fatalf("acceptTx calls %v, want %v", *calls, want)
		}
	})
	t.Run("urgent", func(t *testing.T) {
		actx, drop := s.Announce(ctx)
		defer drop()
		*calls = nil
		b, f := newMsg("chat", message.Routine), newMsg("chat", message.Flash)
		bdone := acceptAsync(ctx, s, b)
		waitGather(t, waiting)
		must(t, acceptAsync(ctx, s, f), "a FLASH accept")
		must(t, bdone, "the accept that waited")
		if want := fmt.Sprint([][]message.ID{{f.ID}, {b.ID}}); fmt.Sprint(*calls) != want {
			t.Fatalf("acceptTx calls %v, want the FLASH first, on its own (urgent), then the other", *calls)
		}
		must(t, acceptAsync(actx, s, newMsg("chat", message.Routine)), "the announced accept, later")
	})
	t.Run("none announced", func(t *testing.T) {
		for range 3 {
			must(t, acceptAsync(ctx, s, newMsg("chat", message.Routine)), "an accept")
		}
		select {
		case <-waiting:
			t.Fatal("the writer waited with nothing announced")
		default:
		}
	})
}

// A batch that holds an urgent write does not wait for announced accepts,
// whether the urgent write was taken first or joined after another.
func TestUrgentBatchDoesNotGather(t *testing.T) {
	s, _, waiting := gatheringStore(t)
	_, drop := s.Announce(context.Background())
	defer drop()
	for _, batch := range [][]*writeReq{{{urgent: true}, {}}, {{}, {urgent: true}}} {
		done := make(chan []*writeReq, 1)
		go func() { done <- s.b.gather(batch, make(chan *writeReq), make(chan *writeReq)) }()
		select {
		case got := <-done:
			if len(got) != len(batch) {
				t.Errorf("gather returned %d requests, want the %d given", len(got), len(batch))
			}
		case <-waiting:
			t.Fatalf("a batch with an urgent write (urgent first: %v) waited for an announced accept", batch[0].urgent)
		}
	}
}
