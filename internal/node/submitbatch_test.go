package node_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"liaison/internal/audit"
	"liaison/internal/guard"
	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/node/nodetest"
)

func TestSubmitBatch(t *testing.T) { testSubmitBatch(t, newFixture(t, "")) }

// testSubmitBatch checks that a batch gives each message what Submit
// would: receipts in order with consecutive seqs, refusals for bad ones
// (the rest stored), duplicates within the batch and of history, audit.
func testSubmitBatch(t *testing.T, f *fixture) {
	ctx := context.Background()
	before, err := f.n.Submit(ctx, msg("exercise", message.Routine, f.rel, "before"))
	if err != nil {
		t.Fatal(err)
	}
	old := msg("exercise", message.Routine, f.rel, "old")
	if _, err := f.n.Submit(ctx, old); err != nil {
		t.Fatal(err)
	}
	a := msg("exercise", message.Priority, f.rel, "a")
	ms := []*message.Message{
		a,
		msg("exercise", message.Routine, []byte("<not a label"), "refused"),
		msg("exercise", message.Routine, nodetest.Label(t, "USA", "CONFIDENTIAL", "USA"), "denied"),
		old,
		msg("no-such-channel", message.Routine, f.rel, "refused"),
		a,
		msg("exercise", message.Flash, f.rel, "b"),
	}
	res := f.n.SubmitBatch(ctx, ms)
	if len(res) != len(ms) {
		t.Fatalf("%d results for %d messages", len(res), len(ms))
	}
	apiError(t, res[1].Err, http.StatusUnprocessableEntity, guard.CodeLabelUnparsable)
	apiError(t, res[4].Err, http.StatusConflict, guard.CodeNoAgreement)
	for _, i := range []int{0, 2, 3, 5, 6} {
		if res[i].Err != nil || res[i].Receipt == nil {
			t.Fatalf("message %d: %+v", i, res[i])
		}
	}
	seq0 := before.Seq + 2
	if rc := res[0].Receipt; rc.Seq != seq0 || rc.Duplicate || recipient(rc, "PAK").State != "queued" {
		t.Errorf("message 0: receipt %+v, want seq %d queued", rc, seq0)
	}
	if rc := res[2].Receipt; rc.Seq != seq0+1 || recipient(rc, "PAK").State != "denied" {
		t.Errorf("message 2: receipt %+v, want seq %d denied", rc, seq0+1)
	}
	if rc := res[3].Receipt; !rc.Duplicate || rc.Seq != before.Seq+1 || recipient(rc, "PAK").State != "queued" {
		t.Errorf("message 3: receipt %+v, want a duplicate of seq %d", rc, before.Seq+1)
	}
	if rc := res[5].Receipt; !rc.Duplicate || rc.Seq != seq0 {
		t.Errorf("message 5: receipt %+v, want a duplicate of seq %d", rc, seq0)
	}
	if rc := res[6].Receipt; rc.Seq != seq0+2 || rc.Duplicate {
		t.Errorf("message 6: receipt %+v, want seq %d", rc, seq0+2)
	}
	es, err := f.n.History(ctx, "exercise", before.Seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, e := range es {
		bodies = append(bodies, string(e.Message.Body))
	}
	if want := []string{"old", "a", "denied", "b"}; !slices.Equal(bodies, want) {
		t.Errorf("history after the first message: %q, want %q", bodies, want)
	}
	waitAudit(t, f.n, a.ID, audit.KindReleased)
	waitAudit(t, f.n, ms[2].ID, audit.KindDenied)
	waitAudit(t, f.n, ms[1].ID, audit.KindDenied)
	if res := f.n.SubmitBatch(ctx, nil); len(res) != 0 {
		t.Errorf("empty batch: %d results", len(res))
	}
}

// BenchmarkSubmitBatch submits batches of 64 messages; ns/op is per
// message, to compare with BenchmarkSubmit.
func BenchmarkSubmitBatch(b *testing.B) {
	usa, pak := nodetest.NewHome(b, "USA", nodetest.Config{}), nodetest.NewHome(b, "PAK", nodetest.Config{})
	n := nodetest.Start(b, usa, node.Options{AuditBatchAge: 50 * time.Millisecond})
	nodetest.Install(b, n, nodetest.Agreement(b, time.Now(), usa, pak))
	lbl := nodetest.Label(b, "USA", "CONFIDENTIAL", "USA", "PAK")
	ctx := context.Background()
	const size = 64
	ms := make([]*message.Message, size)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ms[i] = msg("exercise", message.Routine, lbl, "bench")
		if i++; i < size {
			continue
		}
		i = 0
		for _, r := range n.SubmitBatch(ctx, ms) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
}
