package store

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"liaison/internal/message"
)

// TestMemLeasesSkipLeased: after a release rewinds the cursor, a lease
// reads the queue from its start again, skips the rows still leased and
// hands out the rest in queue order, however its reads fall.
func TestMemLeasesSkipLeased(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	if s.leases == nil {
		t.Fatal("a SQLite store this process owns keeps no leases in memory")
	}
	var ms []*message.Message
	for range 6 {
		m := newMsg("c", message.Routine)
		accept(t, s, m, queued("XBB"))
		ms = append(ms, m)
	}
	if got := lease(t, s, "XBB", 3); !sameIDs(got, ms[0], ms[1], ms[2]) {
		t.Fatalf("first lease %v, want the first three", ids(got))
	}
	if err := s.Release(ctx, "XBB", ms[1].ID); err != nil {
		t.Fatal(err)
	}
	// Reads of two rows: [0 leased, 1] then [2 leased] then [3].
	if got := lease(t, s, "XBB", 2); !sameIDs(got, ms[1], ms[3]) {
		t.Fatalf("lease after a release %v, want 1 and 3", ids(got))
	}
	if got := lease(t, s, "XBB", 5); !sameIDs(got, ms[4], ms[5]) {
		t.Fatalf("next lease %v, want 4 and 5", ids(got))
	}
	if got := lease(t, s, "XBB", 5); len(got) != 0 {
		t.Fatalf("lease of an all-leased queue %v, want none", ids(got))
	}
}

// TestMemLeasesReopen: leases die with the process that took them, those
// stored by a FLASH's accepting transaction too: after a restart every
// queued message can be leased at once, not after its lease ran out.
func TestMemLeasesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLiteT(t, path, nil)
	r, f := newMsg("c", message.Routine), newMsg("c", message.Flash)
	accept(t, s, r, queued("XBB"))
	routes := queued("XBB")
	routes[0].LeaseFor = time.Hour
	accept(t, s, f, routes)
	if got := lease(t, s, "XBB", 5); !sameIDs(got, r) {
		t.Fatalf("lease %v, want only the ROUTINE (the FLASH is stored leased)", ids(got))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSQLiteT(t, path, nil)
	if got := lease(t, s, "XBB", 5); !sameIDs(got, f, r) {
		t.Fatalf("lease after reopening %v, want the FLASH, then the ROUTINE", ids(got))
	}
}

// TestSQLiteOneOwner: a second open of a store that is open fails and says
// why; once the first closes, it opens.
func TestSQLiteOneOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLiteT(t, path, nil)
	_, err := OpenSQLite(context.Background(), path, Config{})
	if err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second open: %v, want an error saying another process is using it", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	openSQLiteT(t, path, nil)
}

// TestMemLeasesConcurrent: accepts, leases, releases and acks racing each
// other never hand a message to two leases at once, and every message is
// acknowledged once in the end.
func TestMemLeasesConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	const writers, each = 4, 150
	var (
		mu    sync.Mutex
		held  = map[message.ID]bool{} // leased now
		acked = map[message.ID]int{}
		fails []string
	)
	var accepting sync.WaitGroup
	for w := range writers {
		accepting.Go(func() {
			for i := range each {
				p := message.Routine
				if i%10 == w {
					p = message.Flash
				}
				if _, _, err := s.Accept(ctx, newMsg("c", p), queued("XBB")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	var leasing sync.WaitGroup
	for l := range 2 {
		leasing.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				got, err := s.Lease(ctx, "XBB", 7, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, g := range got {
					if held[g.ID] || acked[g.ID] > 0 {
						fails = append(fails, g.ID.String())
					}
					held[g.ID] = true
				}
				mu.Unlock()
				// Release one in five leases, ack the rest.
				var back, ack []message.ID
				for i, g := range got {
					if (n+i+l)%5 == 0 {
						back = append(back, g.ID)
					} else {
						ack = append(ack, g.ID)
					}
				}
				mu.Lock()
				for _, id := range back {
					delete(held, id)
				}
				mu.Unlock()
				if err := s.Release(ctx, "XBB", back...); err != nil {
					t.Error(err)
					return
				}
				if err := s.Ack(ctx, "XBB", ack...); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, id := range ack {
					delete(held, id)
					acked[id]++
				}
				mu.Unlock()
			}
		})
	}
	accepting.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n == writers*each || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(done)
	leasing.Wait()
	if len(fails) > 0 {
		t.Errorf("%d messages handed to a lease while leased or after their ack, e.g. %s", len(fails), fails[0])
	}
	if len(acked) != writers*each {
		t.Errorf("%d of %d messages acknowledged", len(acked), writers*each)
	}
	for id, n := range acked {
		if n != 1 {
			t.Errorf("%s acknowledged %d times", id, n)
		}
	}
}

func sameIDs(got []*message.Message, want ...*message.Message) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].ID != want[i].ID {
			return false
		}
	}
	return true
}

// TestMemLeasesFlashDoesNotWait: the accept of a FLASH whose row is stored
// leased does not wait for a lease's reads under way, and neither that
// lease nor the next hands the FLASH out until it is released.
func TestMemLeasesFlashDoesNotWait(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	r := newMsg("c", message.Routine)
	accept(t, s, r, queued("XBB"))
	entered, block := make(chan struct{}), make(chan struct{})
	read := s.core.read
	var once sync.Once
	s.core.read = func(ctx context.Context, fn func(ctx context.Context, q querier) error) error {
		once.Do(func() {
			close(entered)
			<-block
		})
		return read(ctx, fn)
	}
	leased := make(chan []Leased, 1)
	go func() {
		got, err := s.Lease(ctx, "XBB", 5, time.Hour)
		if err != nil {
			t.Error(err)
		}
		leased <- got
	}()
	<-entered // the lease holds the peer's leases and reads
	f := newMsg("c", message.Flash)
	routes := queued("XBB")
	routes[0].LeaseFor = time.Hour
	accepted := make(chan error, 1)
	go func() {
		_, _, err := s.Accept(ctx, f, routes)
		accepted <- err
	}()
	select {
	case err := <-accepted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(block)
		t.Fatal("the FLASH's accept waited for the lease's reads")
	}
	close(block)
	if got := <-leased; len(got) != 1 || got[0].ID != r.ID {
		t.Fatalf("the lease under way got %d messages, want only the ROUTINE", len(got))
	}
	if got := lease(t, s, "XBB", 5); len(got) != 0 {
		t.Fatalf("next lease %v, want none: the FLASH is leased", ids(got))
	}
	if err := s.Release(ctx, "XBB", f.ID); err != nil {
		t.Fatal(err)
	}
	if got := lease(t, s, "XBB", 5); !sameIDs(got, f) {
		t.Fatalf("lease after the FLASH's release %v, want it", ids(got))
	}
}
