package node

import (
	"fmt"
	"testing"

	"liaison/internal/store"
)

// BenchmarkSubscribers is one message accepted (on SQLite) and received by
// every one of k live subscribers of its channel, with the tail and
// without it (the store read at every wake-up that PostgreSQL keeps).
func BenchmarkSubscribers(b *testing.B) {
	for _, withTail := range []bool{true, false} {
		for _, k := range []int{1, 8} {
			b.Run(fmt.Sprintf("tail=%v/subscribers=%d", withTail, k), func(b *testing.B) {
				ctx := b.Context()
				raw, err := store.OpenSQLite(ctx, b.TempDir()+"/s.db", store.Config{})
				if err != nil {
					b.Fatal(err)
				}
				defer raw.Close()
				n := &Node{store: raw, history: newSignal(), status: newSignal(), quit: make(chan struct{})}
				if withTail {
					n.tail = newTail(tailEntries, tailBytes)
					n.store = tailStore{Store: raw, t: n.tail}
				}
				// Other channels' traffic in the history, as on a busy node.
				for range 100 {
					if _, _, err := n.store.Accept(ctx, tailMsg("other"), nil); err != nil {
						b.Fatal(err)
					}
				}
				var subs []<-chan struct{}
				for range k {
					es := n.subscribe(ctx, "c", 0, false)
					got := make(chan struct{}, 1)
					go func() {
						for range es {
							got <- struct{}{}
						}
					}()
					subs = append(subs, got)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := n.store.Accept(ctx, tailMsg("c"), nil); err != nil {
						b.Fatal(err)
					}
					n.history.fire() // as Submit does
					for _, s := range subs {
						<-s
					}
				}
			})
		}
	}
}
