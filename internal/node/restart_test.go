package node_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/node/nodetest"
)

// Many senders retrying one id at once: exactly one acceptance, the rest
// duplicates, one stored message and one queue row.
func testConcurrentDuplicates(t *testing.T, f *fixture) {
	ctx := context.Background()
	m := msg("exercise", message.Flash, f.rel, "retried")
	const senders = 8
	var wg sync.WaitGroup
	fresh := make(chan bool, senders)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := *m
			rc, err := f.n.Submit(ctx, &c)
			if err != nil {
				t.Error(err)
				return
			}
			fresh <- !rc.Duplicate
		}()
	}
	wg.Wait()
	close(fresh)
	accepted := 0
	for ok := range fresh {
		if ok {
			accepted++
		}
	}
	if accepted != 1 {
		t.Fatalf("%d of %d concurrent submissions of one id were accepted as new, want 1", accepted, senders)
	}
	es, _ := f.n.History(ctx, "exercise", 0, 100)
	if len(es) != 1 {
		t.Fatalf("history holds %d messages, want 1", len(es))
	}
	st, _ := f.n.Status(ctx)
	if got := st.Queues["PAK"]["FLASH"]; got != 1 {
		t.Errorf("PAK FLASH queue %d, want 1", got)
	}
}

// A node reopened on the same home keeps its agreement, history, queue
// and half-done reviews: the reviewer who approved before the restart may
// not approve again after it.
func testRestartKeepsState(t *testing.T, f *fixture) {
	ctx := context.Background()
	queued, err := f.n.Submit(ctx, msg("exercise", message.Priority, f.rel, "before restart"))
	if err != nil {
		t.Fatal(err)
	}
	dirty, err := f.n.Submit(ctx, msg("exercise", message.Routine, f.rel, "KESTREL before restart"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.n.Review(ctx, dirty.ID, "PAK", "reviewer-a", true); err != nil {
		t.Fatal(err)
	}
	if err := f.n.Close(); err != nil {
		t.Fatal(err)
	}

	n := nodetest.Start(t, f.usa, node.Options{StoreURL: f.store})
	if err := n.Ready(ctx); err != nil {
		t.Fatalf("reopened node not ready: %v", err)
	}
	if st, err := n.MessageStatus(ctx, queued.ID); err != nil || st.Recipients[0].State != "queued" {
		t.Fatalf("after restart: %+v, %v; want queued for PAK", st, err)
	}
	_, err = n.Review(ctx, dirty.ID, "PAK", "reviewer-a", true)
	apiError(t, err, http.StatusConflict, "already-reviewed")
	res, err := n.Review(ctx, dirty.ID, "PAK", "reviewer-b", true)
	if err != nil || res.Outcome != "released" {
		t.Fatalf("second reviewer after restart: %+v, %v", res, err)
	}
	again := msg("exercise", message.Priority, f.rel, "resent")
	again.ID = queued.ID
	if rc, err := n.Submit(ctx, again); err != nil || !rc.Duplicate {
		t.Fatalf("resubmitting after restart: %+v, %v; want a duplicate", rc, err)
	}
	es, _ := n.History(ctx, "exercise", 0, 100)
	if len(es) != 2 {
		t.Errorf("history after restart holds %d messages, want 2", len(es))
	}
	if _, err := n.Review(ctx, message.NewID(), "PAK", "reviewer-a", true); err == nil {
		t.Error("review of an unknown message succeeded")
	} else {
		apiError(t, err, http.StatusNotFound, "not-found")
	}
	_, err = n.Review(ctx, queued.ID, "PAK", "reviewer-a", true)
	apiError(t, err, http.StatusConflict, "not-quarantined")
}
