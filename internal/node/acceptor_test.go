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

// fakeAcceptStore numbers messages in the order it stores them and records
// the size of every write. Accept blocks while gate is non-nil and open.
type fakeAcceptStore struct {
	mu      sync.Mutex
	next    uint64
	writes  []int
	gate    chan struct{}
	failAll bool             // AcceptBatch fails
	failOne map[string]error // Accept fails for these bodies
	entered chan struct{}    // receives when Accept starts
}

func (s *fakeAcceptStore) Accept(ctx context.Context, m *message.Message, routes []store.Route, audit ...[]byte) (uint64, bool, error) {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, 1)
	if err := s.failOne[string(m.Body)]; err != nil {
		return 0, false, err
	}
	s.next++
	return s.next, false, nil
}

func (s *fakeAcceptStore) AcceptBatch(ctx context.Context, items []store.AcceptItem) ([]store.AcceptResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failAll {
		return nil, errors.New("batch refused")
	}
	s.writes = append(s.writes, len(items))
	out := make([]store.AcceptResult, len(items))
	for i := range items {
		s.next++
		out[i].Seq = s.next
	}
	return out, nil
}

func acceptItem(body string) store.AcceptItem {
	return store.AcceptItem{Msg: &message.Message{ID: message.NewID(), Body: []byte(body)}}
}

// queued waits until n calls wait in a's queue.
func queued(t *testing.T, a *acceptor, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a.mu.Lock()
		got := len(a.queue)
		a.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond) // polling another goroutine's progress, with a deadline
	}
}

type acceptOutcome struct {
	res store.AcceptResult
	err error
}

// start runs accept for each body in its own goroutine; the outcomes
// arrive on the returned channels, one per body.
func start(a *acceptor, st acceptStore, bodies ...string) []chan acceptOutcome {
	var chans []chan acceptOutcome
	for _, b := range bodies {
		ch := make(chan acceptOutcome, 1)
		chans = append(chans, ch)
		go func() {
			res, err := a.accept(context.Background(), st, acceptItem(b))
			ch <- acceptOutcome{res, err}
		}()
	}
	return chans
}

// Messages submitted while a write is in flight are stored together, in
// one batch, by the next leader; each caller gets its own result.
func TestAcceptorBatchesWaiters(t *testing.T) {
	st := &fakeAcceptStore{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	a := &acceptor{}
	first := start(a, st, "first")
	<-st.entered // the leader is storing its lone message
	st.entered = nil
	var bodies []string
	for i := range 10 {
		bodies = append(bodies, fmt.Sprint(i))
	}
	rest := start(a, st, bodies...)
	queued(t, a, 10)
	close(st.gate)

	if o := <-first[0]; o.err != nil || o.res.Seq != 1 {
		t.Fatalf("first: %+v, want seq 1", o)
	}
	var seqs []uint64
	for _, ch := range rest {
		o := <-ch
		if o.err != nil {
			t.Fatal(o.err)
		}
		seqs = append(seqs, o.res.Seq)
	}
	slices.Sort(seqs)
	if want := []uint64{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; !slices.Equal(seqs, want) {
		t.Errorf("seqs %v, want %v (each caller its own)", seqs, want)
	}
	if !slices.Equal(st.writes, []int{1, 10}) {
		t.Errorf("store writes %v, want [1 10]: the ten waiters in one batch", st.writes)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.busy || len(a.queue) != 0 {
		t.Errorf("acceptor after the run: busy %v, %d queued; want idle", a.busy, len(a.queue))
	}
}

// A batch never holds more than max messages.
func TestAcceptorBoundsBatch(t *testing.T) {
	st := &fakeAcceptStore{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	a := &acceptor{max: 4}
	first := start(a, st, "first")
	<-st.entered
	st.entered = nil
	rest := start(a, st, "a", "b", "c", "d", "e", "f", "g", "h", "i")
	queued(t, a, 9)
	close(st.gate)
	for _, ch := range append(first, rest...) {
		if o := <-ch; o.err != nil {
			t.Fatal(o.err)
		}
	}
	if !slices.Equal(st.writes, []int{1, 4, 4, 1}) {
		t.Errorf("store writes %v, want [1 4 4 1]", st.writes)
	}
}

// When the batch write fails, each message is stored on its own: only the
// one the store refuses fails.
func TestAcceptorFallsBackPerMessage(t *testing.T) {
	bad := errors.New("refused this one")
	st := &fakeAcceptStore{gate: make(chan struct{}), entered: make(chan struct{}, 1), failOne: map[string]error{"bad": bad}}
	a := &acceptor{}
	first := start(a, st, "first")
	<-st.entered
	st.entered = nil
	st.failAll = true
	rest := start(a, st, "ok1", "bad", "ok2")
	queued(t, a, 3)
	close(st.gate)
	if o := <-first[0]; o.err != nil {
		t.Fatal(o.err)
	}
	for i, ch := range rest {
		o := <-ch
		if want := i == 1; (o.err != nil) != want || (want && !errors.Is(o.err, bad)) {
			t.Errorf("message %d: %+v, want error only for the refused one", i, o)
		}
	}
	if !slices.Equal(st.writes, []int{1, 1, 1, 1}) {
		t.Errorf("store writes %v, want four single writes after the failed batch", st.writes)
	}
}

// A caller whose context has ended stores nothing.
func TestAcceptorCancelled(t *testing.T) {
	st := &fakeAcceptStore{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&acceptor{}).accept(ctx, st, acceptItem("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("accept with a cancelled context: %v, want context.Canceled", err)
	}
	if len(st.writes) != 0 {
		t.Errorf("store writes %v, want none", st.writes)
	}
}
