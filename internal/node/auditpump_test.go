package node

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liaison/internal/audit"
	"liaison/internal/message"
	"liaison/internal/store"
)

// The pump moves every pending record that parses into the log, in
// acceptance order and across several chunks, grouped several to a leaf,
// removes them from the store by ranges, and leaves a record that does not
// parse where it is.
func TestAuditPumpRanges(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := store.OpenSQLite(ctx, filepath.Join(dir, "store.db"), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const origin = "liaison.xaa.example/audit"
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	l, err := audit.Open(ctx, filepath.Join(dir, "audit"), audit.Config{
		Origin: origin, Signer: key, BatchMaxAge: 5 * time.Millisecond, CheckpointInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{store: s, audit: l, log: slog.New(slog.DiscardHandler), party: "XAA"}
	n.metrics = newMetrics(n)

	// 2,500 messages with two records each, more than one chunk; the
	// second record of message 700 is corrupt.
	const msgs, bad = 2500, 700
	if 2*msgs <= auditChunk {
		t.Fatalf("%d records fit in one chunk of %d", 2*msgs, auditChunk)
	}
	var want []string
	for i := range msgs {
		m := &message.Message{ID: message.NewID(), Channel: "c", Origin: "XAA", Created: time.Now(), ContentType: "text/plain"}
		es := []audit.Entry{{Kind: audit.KindAccepted, MessageID: fmt.Sprintf("m%d", i)}, {Kind: audit.KindReleased, MessageID: fmt.Sprintf("m%d", i), Peer: "XBB"}}
		recs, err := n.auditRecords(es, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, "m"+fmt.Sprint(i)+"/accepted")
		if i == bad {
			recs[1] = []byte("not an audit entry")
		} else {
			want = append(want, "m"+fmt.Sprint(i)+"/released")
		}
		if _, _, err := s.Accept(ctx, m, nil, recs...); err != nil {
			t.Fatal(err)
		}
	}
	after := n.drainAudit(ctx, 0)
	left, err := s.PendingAudit(ctx, 0, 10)
	if err != nil || len(left) != 1 || string(left[0].Record) != "not an audit entry" {
		t.Fatalf("pending after the pump = %d records (%v), want only the corrupt one", len(left), err)
	}
	if after < left[0].ID {
		t.Fatalf("pump cursor %d is before the last record read %d", after, left[0].ID)
	}
	if again := n.drainAudit(ctx, after); again != after {
		t.Fatalf("idle drain moved the cursor from %d to %d", after, again)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(n.metrics.auditErrors)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gathering the audit error counter: %d families, %v", len(mfs), err)
	}
	if got := mfs[0].GetMetric()[0].GetCounter().GetValue(); got != 1 {
		t.Errorf("audit errors = %v, want 1 (the corrupt record, reported once)", got)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := audit.NoteVerifier(origin, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	r, err := audit.OpenReader(filepath.Join(dir, "audit"), origin, v)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := r.Entries(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(want) {
		t.Fatalf("log has %d entries, want %d", len(recs), len(want))
	}
	cp, _, err := r.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if most := uint64(len(want) / 4); cp.Size > most { // 16 to a leaf gives about 1/16
		t.Errorf("%d entries in %d leaves, want them grouped (at most %d leaves)", len(want), cp.Size, most)
	}
	for i, rec := range recs {
		if got := rec.Entry.MessageID + "/" + rec.Entry.Kind; got != want[i] {
			t.Fatalf("log entry %d = %s, want %s", i, got, want[i])
		}
	}
}
