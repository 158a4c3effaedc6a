package cot

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"liaison/internal/message"
)

// heldCore holds the first Submit until the test opens the gate, so that a
// client's next events accumulate into one batch; it records the content
// type of every message submitted.
type heldCore struct {
	*fakeCore
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
	mu      sync.Mutex
	types   []string
}

func (c *heldCore) Submit(ctx context.Context, m *message.Message) error {
	c.once.Do(func() {
		close(c.entered)
		<-c.gate
	})
	c.mu.Lock()
	c.types = append(c.types, m.ContentType)
	c.mu.Unlock()
	return c.fakeCore.Submit(ctx, m)
}

// A client's events that wait behind a Submit cross as one batch; each side
// splits it and delivers every event as a single one, in order, with its
// markings; the sending client gets none back.
func TestBatchCrossesAndSplits(t *testing.T) {
	n := &fakeNet{}
	l := testLabeler()
	usaCore := &heldCore{fakeCore: n.node("USA"), gate: make(chan struct{}), entered: make(chan struct{})}
	start := func(party string, core Core) *Gateway {
		g, err := New(Config{
			Origin: party, TCP: "127.0.0.1:0", AnonymousGroups: []string{"Cyan"},
			Channels: map[string]string{"Cyan": "coalition-sa"},
		}, core, l)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		return g
	}
	usa := start("USA", usaCore)
	pak := start("PAK", n.node("PAK"))
	px := dial(t, pak)
	ux := dial(t, usa)
	tx := dial(t, usa)
	var sub *submitter
	usa.mu.Lock()
	for c := range usa.clients {
		if c.remote == tx.conn.LocalAddr().String() {
			sub = c.sub
		}
	}
	usa.mu.Unlock()
	if sub == nil {
		t.Fatal("sending client not found")
	}

	const total = 8
	marks := `access='Restricted' releasableTo='USA PAK'`
	tx.write(position("b0", marks))
	<-usaCore.entered
	for i := 1; i < total; i++ {
		tx.write(position(fmt.Sprint("b", i), marks))
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(sub.in) < total-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d events queued, want %d", len(sub.in), total-1)
		}
		time.Sleep(time.Millisecond)
	}
	close(usaCore.gate)
	for _, rx := range []*tcpClient{px, ux} {
		for i := range total {
			e := rx.next()
			if e.UID != fmt.Sprint("b", i) || e.Access != "Restricted" || e.ReleasableTo != "USA PAK" || string(e.Detail) != detail[len("<detail>"):len(detail)-len("</detail>")] {
				t.Fatalf("event %d: got %s", i, e.Raw)
			}
		}
	}
	usaCore.mu.Lock()
	types := append([]string(nil), usaCore.types...)
	usaCore.mu.Unlock()
	if len(types) != 2 || types[0] != ContentType || types[1] != BatchContentType {
		t.Errorf("submitted content types %q, want one single event then one batch", types)
	}
	// Echo suppression: the sender's next event is someone else's.
	ux.write(position("after", marks))
	if e := tx.next(); e.UID != "after" {
		t.Fatalf("sender got %q back", e.UID)
	}
}
