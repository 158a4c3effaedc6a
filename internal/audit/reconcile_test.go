package audit

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestReconcileFindsMissingEntry runs two nodes' logs, each recording its
// side of the same crossings, exports both and removes one entry from one
// side's export, as a partner hiding a delivery would.
func TestReconcileFindsMissingEntry(t *testing.T) {
	xaa := openTestLog(t, t.TempDir(), testKey(t, 1))
	xbb := openTestLog(t, t.TempDir(), testKey(t, 2))
	const n = 20
	for i := range n {
		sent := testEntry(i) // delivered XAA -> XBB
		got := sent
		got.Kind, got.Party, got.Peer = KindReceived, "XBB", "XAA"
		if i == 7 { // a refusal, recorded on both sides
			sent.Kind, sent.Decision = KindRefused, DecisionRefused
			got.Kind, got.Decision = KindRejected, DecisionRefused
		}
		xaa.AppendAsync(t.Context(), sent)
		xbb.AppendAsync(t.Context(), got)
		// Noise that did not cross: a local guard decision.
		xbb.AppendAsync(t.Context(), Entry{Kind: KindDenied, MessageID: sent.MessageID, Peer: "XAA", Decision: "deny"})
	}
	closeLog(t, xaa)
	closeLog(t, xbb)
	mine, err := xaa.Entries(t.Context(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := xbb.Entries(t.Context(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if d := Reconcile(mine, theirs, "XAA", "XBB"); !d.Empty() || d.Matched != n {
		t.Fatalf("honest logs: %+v", d)
	}

	// Export, drop one line on their side, change a digest on another.
	var buf bytes.Buffer
	if err := WriteRecords(&buf, theirs); err != nil {
		t.Fatal(err)
	}
	lost := mine[12].Entry.MessageID
	changed := mine[3].Entry.MessageID
	var kept []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(line, lost) && strings.Contains(line, KindReceived) {
			continue
		}
		if strings.Contains(line, changed) && strings.Contains(line, KindReceived) {
			line = strings.Replace(line, fmt.Sprintf("%064x", 3), fmt.Sprintf("%064x", 999), 1)
		}
		kept = append(kept, line)
	}
	theirs2, err := ReadRecords(strings.NewReader(strings.Join(kept, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	d := Reconcile(mine, theirs2, "XAA", "XBB")
	if len(d.OnlyMine) != 1 || d.OnlyMine[0].Entry.MessageID != lost {
		t.Errorf("OnlyMine = %+v, want the entry for %s", d.OnlyMine, lost)
	}
	if len(d.Mismatched) != 1 || d.Mismatched[0].Mine.Entry.MessageID != changed {
		t.Errorf("Mismatched = %+v, want the entry for %s", d.Mismatched, changed)
	}
	if len(d.OnlyTheirs) != 0 || d.Matched != n-2 {
		t.Errorf("OnlyTheirs = %+v, Matched = %d", d.OnlyTheirs, d.Matched)
	}
	// And from the other side.
	d = Reconcile(theirs2, mine, "XBB", "XAA")
	if len(d.OnlyTheirs) != 1 || d.OnlyTheirs[0].Entry.MessageID != lost {
		t.Errorf("reverse OnlyTheirs = %+v", d.OnlyTheirs)
	}
}

func TestReadRecordsRejects(t *testing.T) {
	for _, in := range []string{
		`{"index":1}`,
		`{"index":1,"entry":{"kind":"x","at":"2026-01-01T00:00:00Z"},"extra":1}`,
		`not json`,
		strings.Repeat("x", maxExportLine+1),
	} {
		if _, err := ReadRecords(strings.NewReader(in)); err == nil {
			t.Errorf("ReadRecords(%.40q) succeeded", in)
		}
	}
}

// Entries that share a leaf (a group) are matched one by one, by their
// place in it.
func TestReconcileGroupedEntries(t *testing.T) {
	var mine, theirs []Record
	for i := range 3 {
		sent := testEntry(i)
		got := sent
		got.Kind, got.Party, got.Peer = KindReceived, "XBB", "XAA"
		mine = append(mine, Record{Index: 5, Pos: i, Entry: sent})
		theirs = append(theirs, Record{Index: 9, Pos: i, Entry: got})
	}
	if d := Reconcile(mine, theirs, "XAA", "XBB"); !d.Empty() || d.Matched != 3 {
		t.Fatalf("grouped crossings: %+v, want 3 matched", d)
	}
	if d := Reconcile(mine, theirs[:2], "XAA", "XBB"); d.Matched != 2 || len(d.OnlyMine) != 1 || d.OnlyMine[0].Pos != 2 {
		t.Fatalf("one missing from a group: %+v, want 2 matched and pos 2 only mine", d)
	}
}
