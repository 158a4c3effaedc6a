package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"liaison/internal/api"
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

// TestPostBatchOverHTTP posts a batch to a real node's API: each message
// gets what POST /v1/messages would have answered, the accepted ones are
// stored in order and audited, and the refused one is audited as a denial
// and not stored.
func TestPostBatchOverHTTP(t *testing.T) {
	f := newFixture(t, "")
	post := func(lbl []byte, body string, id message.ID) string {
		b, err := json.Marshal(api.PostMessage{ID: id.String(), Channel: "exercise", Precedence: "ROUTINE", Label: string(lbl), Body: &body})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	first, refused, denied := message.NewID(), message.NewID(), message.NewID()
	body := `{"messages":[` + strings.Join([]string{
		post(f.rel, "first", first),
		post([]byte("<not a label"), "refused", refused),
		post(nodetest.Label(t, "USA", "CONFIDENTIAL", "USA"), "not for PAK", denied),
		post(f.rel, "first", first),
	}, ",") + `]}`
	req := httptest.NewRequest("POST", "/v1/messages/batch", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.usa.Tokens["officer"])
	w := httptest.NewRecorder()
	f.n.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("batch: %d %s", w.Code, w.Body)
	}
	var ans api.BatchAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	if len(ans.Results) != 4 || ans.Accepted != 3 || ans.Refused != 1 {
		t.Fatalf("answer %s: want 4 results, 3 accepted, 1 refused", w.Body)
	}
	r := ans.Results
	if r[0].Status != http.StatusCreated || r[0].Receipt.ID != first || recipient(r[0].Receipt, "PAK").State != "queued" {
		t.Errorf("first: %+v, want 201 queued for PAK", r[0])
	}
	if r[1].Status != http.StatusUnprocessableEntity || r[1].Error == nil || r[1].Error.Code != guard.CodeLabelUnparsable {
		t.Errorf("bad label: %+v, want 422 %s", r[1], guard.CodeLabelUnparsable)
	}
	if r[2].Status != http.StatusCreated || recipient(r[2].Receipt, "PAK").State != "denied" {
		t.Errorf("not releasable to PAK: %+v, want 201 denied for PAK", r[2])
	}
	if r[3].Status != http.StatusOK || !r[3].Receipt.Duplicate || r[3].Receipt.Seq != r[0].Receipt.Seq {
		t.Errorf("repeat of the first: %+v, want 200 duplicate of seq %d", r[3], r[0].Receipt.Seq)
	}
	es, err := f.n.History(context.Background(), "exercise", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []message.ID
	for _, e := range es {
		ids = append(ids, e.Message.ID)
		if e.Message.Originator != "officer" {
			t.Errorf("%s stored with originator %q, want officer", e.Message.ID, e.Message.Originator)
		}
	}
	if want := []message.ID{first, denied}; !slices.Equal(ids, want) {
		t.Errorf("history %v, want %v", ids, want)
	}
	waitAudit(t, f.n, first, audit.KindReleased)
	waitAudit(t, f.n, denied, audit.KindDenied)
	waitAudit(t, f.n, refused, audit.KindDenied)
}
