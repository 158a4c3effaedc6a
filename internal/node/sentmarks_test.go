package node

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"liaison/internal/federation"
	"liaison/internal/message"
)

// TestSentMarksOvertaken: a sent mark waits before it is written, and the
// custody ACK of its message, if it comes meanwhile, cancels it; marks
// queued while a round writes go in the next round.
func TestSentMarksOvertaken(t *testing.T) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		got     = map[string][]message.ID{}
		rounds  int
		release = make(chan struct{})
		waiting = make(chan struct{}, 1)
	)
	m := &sentMarks{
		wg: &wg,
		linger: func() {
			select {
			case waiting <- struct{}{}:
			default:
			}
			<-release
		},
		write: func(_ context.Context, peer string, ids []message.ID) {
			mu.Lock()
			got[peer] = append(got[peer], ids...)
			mu.Unlock()
		},
		wrote: func() { rounds++ },
	}
	a, b, c, d := message.NewID(), message.NewID(), message.NewID(), message.NewID()
	m.add(map[string][]message.ID{"XBB": {a, b}, "XCC": {c}}, nil)
	select {
	case <-waiting: // the writer has started, and waits
	case <-time.After(5 * time.Second):
		t.Fatal("the writer of sent marks did not wait before writing")
	}
	m.add(nil, []federation.Delivery{{Kind: federation.Delivered, Party: "XBB", ID: a}})
	close(release)
	wg.Wait()
	mu.Lock()
	if !slices.Equal(got["XBB"], []message.ID{b}) || !slices.Equal(got["XCC"], []message.ID{c}) || rounds != 1 {
		t.Errorf("wrote %v in %d rounds, want XBB [%s] and XCC [%s] in one: the mark of %s was overtaken by its ACK", got, rounds, b, c, a)
	}
	mu.Unlock()
	// A new mark starts a new turn of the writer.
	m.add(map[string][]message.ID{"XBB": {d}}, nil)
	wg.Wait()
	if !slices.Equal(got["XBB"], []message.ID{b, d}) || rounds != 2 {
		t.Errorf("after a second mark wrote %v in %d rounds, want XBB [%s %s] in two", got, rounds, b, d)
	}
}
