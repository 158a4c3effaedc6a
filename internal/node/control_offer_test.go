package node

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
)

// Checkpoints a partner offers are witnessed one at a time, in the order
// they came, so that a stale offer is never checked after a newer one (which
// the witness would take for a rollback); a flood of offers is bounded.
func TestOffersWitnessedInOrder(t *testing.T) {
	c := newControlMux(&Node{log: slog.New(slog.DiscardHandler)})
	var (
		mu      sync.Mutex
		got     []string
		running int
		overlap bool
	)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	done := make(chan struct{})
	c.witnessFn = func(party string, cp []byte) {
		mu.Lock()
		running++
		overlap = overlap || running > 1
		first := len(got) == 0
		got = append(got, party+":"+string(cp))
		mu.Unlock()
		if first {
			started <- struct{}{}
			<-release // hold the first while the rest arrive
		}
		mu.Lock()
		running--
		n := len(got)
		mu.Unlock()
		if n == 1+maxQueuedOffers {
			close(done)
		}
	}
	c.queueOffer("XBB", []byte("cp0"))
	<-started
	var want []string
	want = append(want, "XBB:cp0")
	for i := 1; i <= maxQueuedOffers+3; i++ {
		cp := fmt.Sprintf("cp%d", i)
		c.queueOffer("XBB", []byte(cp))
		if i <= maxQueuedOffers {
			want = append(want, "XBB:"+cp)
		}
	}
	close(release)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("witnessed %q, want %q (arrival order, the flood beyond %d dropped)", got, want, maxQueuedOffers)
	}
	if overlap {
		t.Error("two offers of one partner were witnessed at once")
	}
}
