package node

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"liaison/internal/audit"
)

// An answer to a records request ends at a leaf's boundary: the records of
// a leaf that groups several entries all go in one answer, and the next
// answer starts from the first leaf left out.
func TestPageRecordsKeepsLeavesWhole(t *testing.T) {
	rec := func(leaf uint64, pos int, peer string) audit.Record {
		return audit.Record{Index: leaf, Pos: pos, Entry: audit.Entry{Kind: audit.KindDelivered, At: time.Unix(1e9, 0).UTC(),
			MessageID: fmt.Sprintf("m-%d-%d", leaf, pos), Peer: peer, Decision: audit.DecisionAccepted}}
	}
	// Leaf 10: one entry; leaf 11: a group of three, one not about XBB;
	// leaf 12: a group of two.
	recs := []audit.Record{rec(10, 0, "XBB"), rec(11, 0, "XBB"), rec(11, 1, "XCC"), rec(11, 2, "XBB"), rec(12, 0, "XBB"), rec(12, 1, "XBB")}
	one, err := json.Marshal(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	size := len(one)
	leafOf := func(out []json.RawMessage) []string {
		var got []string
		for _, b := range out {
			var r audit.Record
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d.%d", r.Index, r.Pos))
		}
		return got
	}
	tests := []struct {
		budget int
		want   string
		next   uint64
	}{
		{100 * size, "[10.0 11.0 11.2 12.0 12.1]", 13}, // all fits
		{size * 5 / 2, "[10.0]", 11},                   // 11.2 would overflow: leaf 11 goes whole to the next answer
		{size * 7 / 2, "[10.0 11.0 11.2]", 12},         // leaf 12 would overflow: it goes next
		{size / 2, "[10.0]", 11},                       // the first leaf goes even over budget
	}
	for _, tt := range tests {
		out, next, err := pageRecords(recs, "XBB", tt.budget, 13)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(leafOf(out)); got != tt.want || next != tt.next {
			t.Errorf("budget %d: %s next %d, want %s next %d", tt.budget, got, next, tt.want, tt.next)
		}
	}
	// The first leaf is a group larger than the budget: it goes whole.
	out, next, err := pageRecords(recs[1:], "XBB", size, 13)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(leafOf(out)); got != "[11.0 11.2]" || next != 12 {
		t.Errorf("a first group over budget: %s next %d, want [11.0 11.2] next 12", got, next)
	}
}
