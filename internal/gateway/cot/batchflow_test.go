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

// batchPair starts USA and PAK gateways on a fake net, USA's core holding
// its first Submit; it dials a client at PAK and two at USA, and returns
// the anonymous submitter at USA.
func batchPair(t *testing.T) (usaCore *heldCore, px, ux, tx *tcpClient, sub *submitter) {
	t.Helper()
	n := &fakeNet{}
	l := testLabeler()
	usaCore = &heldCore{fakeCore: n.node("USA"), gate: make(chan struct{}), entered: make(chan struct{})}
	start := func(party string, core Core) *Gateway {
		return startGateway(t, Config{
			Origin: party, TCP: "127.0.0.1:0", AnonymousGroups: []string{"Cyan"},
			Channels: map[string]string{"Cyan": "coalition-sa"}, MinBatch: 4,
		}, core, l)
	}
	usa := start("USA", usaCore)
	pak := start("PAK", n.node("PAK"))
	px, ux, tx = dial(t, pak), dial(t, usa), dial(t, usa)
	usa.mu.Lock()
	sub = usa.subs["anonymous"]
	usa.mu.Unlock()
	if sub == nil {
		t.Fatal("no anonymous submitter")
	}
	return usaCore, px, ux, tx, sub
}

// waitQueued polls until n events wait in sub.
func waitQueued(t *testing.T, sub *submitter, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(sub.in) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d events queued, want %d", len(sub.in), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *heldCore) submitted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.types...)
}

const marksRel = `access='Restricted' releasableTo='USA PAK'`

// A client's events that wait behind a Submit cross as one batch; each side
// splits it and delivers every event as a single one, in order, with its
// markings; the sending client gets none back.
func TestBatchCrossesAndSplits(t *testing.T) {
	usaCore, px, ux, tx, sub := batchPair(t)
	const total = 8
	marks := marksRel
	tx.write(position("b0", marks))
	<-usaCore.entered
	for i := 1; i < total; i++ {
		tx.write(position(fmt.Sprint("b", i), marks))
	}
	waitQueued(t, sub, total-1)
	close(usaCore.gate)
	for _, rx := range []*tcpClient{px, ux} {
		for i := range total {
			e := rx.next()
			if e.UID != fmt.Sprint("b", i) || e.Access != "Restricted" || e.ReleasableTo != "USA PAK" || string(e.Detail) != detail[len("<detail>"):len(detail)-len("</detail>")] {
				t.Fatalf("event %d: got %s", i, e.Raw)
			}
		}
	}
	if types := usaCore.submitted(); len(types) != 2 || types[0] != ContentType || types[1] != BatchContentType {
		t.Errorf("submitted content types %q, want one single event then one batch", types)
	}
	// Echo suppression: the sender's next event is someone else's.
	ux.write(position("after", marks))
	if e := tx.next(); e.UID != "after" {
		t.Fatalf("sender got %q back", e.UID)
	}
}

// Clients of one user share a submitter: their events batch together, and
// each client gets the others' events of the batch but none of its own.
func TestBatchAcrossClients(t *testing.T) {
	usaCore, px, ux, tx, sub := batchPair(t)
	tx.write(position("b0", marksRel))
	<-usaCore.entered
	tx.write(position("b1", marksRel))
	waitQueued(t, sub, 1)
	ux.write(position("c1", marksRel))
	waitQueued(t, sub, 2)
	tx.write(position("b2", marksRel))
	waitQueued(t, sub, 3)
	ux.write(position("c2", marksRel))
	waitQueued(t, sub, 4) // MinBatch: load
	close(usaCore.gate)
	want := []string{"b0", "b1", "c1", "b2", "c2"}
	for i := range want {
		if e := px.next(); e.UID != want[i] {
			t.Fatalf("PAK event %d: %q, want %q", i, e.UID, want[i])
		}
	}
	for _, u := range []string{"c1", "c2"} {
		if e := tx.next(); e.UID != u {
			t.Fatalf("tx got %q, want %q", e.UID, u)
		}
	}
	for _, u := range []string{"b0", "b1", "b2"} {
		if e := ux.next(); e.UID != u {
			t.Fatalf("ux got %q, want %q", e.UID, u)
		}
	}
	if types := usaCore.submitted(); len(types) != 2 || types[1] != BatchContentType {
		t.Errorf("submitted %q, want a single event then one batch", types)
	}
	// Neither sender got its own events: the next each sees is from PAK.
	px.write(position("p1", marksRel))
	for _, c := range []*tcpClient{tx, ux} {
		if e := c.next(); e.UID != "p1" {
			t.Fatalf("got %q, want p1", e.UID)
		}
	}
}
