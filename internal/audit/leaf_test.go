package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/tessera/api/layout"
)

// encoded returns the encodings of testEntry(from) .. testEntry(from+n-1).
func encoded(t testing.TB, from, n int) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range n {
		b, err := testEntry(from + i).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// Grouping packs entries in order into leaves of at most MaxGroup, and each
// leaf parses back to exactly its entries; a leaf of one is the entry.
func TestGroupLeavesRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 23, 24, MaxGroup, MaxGroup + 1, 200} {
		recs := encoded(t, 0, n)
		leaves, counts := groupLeaves(recs)
		next := 0
		for i, leaf := range leaves {
			if counts[i] < 1 || counts[i] > MaxGroup {
				t.Fatalf("n=%d: leaf %d groups %d entries", n, i, counts[i])
			}
			if counts[i] == 1 && !bytes.Equal(leaf, recs[next]) {
				t.Fatalf("n=%d: leaf %d of one entry is not that entry's encoding", n, i)
			}
			es, err := ParseLeaf(leaf)
			if err != nil {
				t.Fatalf("n=%d: leaf %d: %v", n, i, err)
			}
			if len(es) != counts[i] {
				t.Fatalf("n=%d: leaf %d parses to %d entries, grouped %d", n, i, len(es), counts[i])
			}
			for _, e := range es {
				if want := testEntry(next).MessageID; e.MessageID != want {
					t.Fatalf("n=%d: entry %d is %s, want %s", n, next, e.MessageID, want)
				}
				next++
			}
		}
		if next != n {
			t.Fatalf("n=%d: leaves hold %d entries", n, next)
		}
		if want := (n + MaxGroup - 1) / MaxGroup; len(leaves) != want {
			t.Errorf("n=%d: %d leaves, want %d", n, len(leaves), want)
		}
	}
}

// Large entries are grouped by size: no leaf exceeds MaxLeafSize.
func TestGroupLeavesBoundedBySize(t *testing.T) {
	var recs [][]byte
	for i := range 20 {
		e := testEntry(i)
		e.Detail = map[string]string{}
		for k := range 12 {
			e.Detail[string(rune('a'+k))] = strings.Repeat("x", 1000)
		}
		b, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, b)
	}
	leaves, counts := groupLeaves(recs)
	total := 0
	for i, leaf := range leaves {
		if len(leaf) > MaxLeafSize {
			t.Errorf("leaf %d is %d bytes, over %d", i, len(leaf), MaxLeafSize)
		}
		if _, err := ParseLeaf(leaf); err != nil {
			t.Errorf("leaf %d: %v", i, err)
		}
		total += counts[i]
	}
	if total != len(recs) || len(leaves) < 2 {
		t.Errorf("%d entries of %d bytes in %d leaves", total, len(recs[0]), len(leaves))
	}
}

func TestParseLeafRejects(t *testing.T) {
	recs := encoded(t, 0, 30)
	cat := func(head []byte, rs [][]byte) []byte { return append(head, bytes.Join(rs, nil)...) }
	head := func(n int) []byte { // the canonical head of an array of n
		if n < 24 {
			return []byte{0x80 | byte(n)}
		}
		return []byte{0x98, byte(n)}
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "malformed"},
		{"group of one", cat([]byte{0x81}, recs[:1]), "group of 1"},
		{"group of none", []byte{0x80}, "group of 0"},
		{"more than MaxGroup", cat(head(MaxGroup+1), recs[:MaxGroup+1]), fmt.Sprintf("group of %d", MaxGroup+1)},
		{"more than MaxGroup, long head", cat(head(30), recs), "group of 30"},
		{"head not shortest", cat([]byte{0x98, 2}, recs[:2]), "not a canonical array"},
		{"head of two bytes", cat([]byte{0x99, 0, 2}, recs[:2]), "not a canonical array"},
		{"indefinite head", cat([]byte{0x9f}, recs[:2]), "not a canonical array"},
		{"fewer entries than said", cat([]byte{0x83}, recs[:2]), "group entry 2"},
		{"trailing byte", append(cat([]byte{0x82}, recs[:2]), 0), "bytes after a group"},
		{"an entry not canonical", cat([]byte{0x82}, [][]byte{recs[0], {0xa0}}), "group entry 1"},
		{"a group inside a group", cat([]byte{0x82}, [][]byte{recs[0], cat([]byte{0x82}, recs[1:3])}), "group entry 1"},
		{"an integer, not an entry", cat([]byte{0x82}, [][]byte{recs[0], {0x01}}), "group entry 1"},
		{"too large", bytes.Repeat([]byte{0x80}, MaxLeafSize+1), "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLeaf(tt.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrMalformedEntry) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want ErrMalformedEntry mentioning %q", err, tt.want)
			}
		})
	}
}

// A log of grouped leaves reads back entry by entry with their places,
// shows a group with a verified proof, verifies, and still finds an entry
// edited inside a group.
func TestGroupedLog(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t, 1)
	l := openTestLog(t, dir, key)
	const n = 300
	if _, wait := l.AppendEncoded(t.Context(), encoded(t, 0, n)); true {
		if failed, err := wait(); failed != 0 || err != nil {
			t.Fatalf("AppendEncoded: %d failed, %v", failed, err)
		}
	}
	if _, err := l.Append(t.Context(), Entry{Kind: KindLinkUp, Peer: "XBB", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	closeLog(t, l)

	r, err := OpenReader(dir, testOrigin, mustVerifier(t, key))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := r.Entries(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	leaves := (n+MaxGroup-1)/MaxGroup + 1
	if len(recs) != n+1 {
		t.Fatalf("%d records, want %d", len(recs), n+1)
	}
	for i, rec := range recs[:n] {
		if rec.Index != uint64(i/MaxGroup) || rec.Pos != i%MaxGroup || rec.Entry.MessageID != testEntry(i).MessageID {
			t.Fatalf("record %d is leaf %d pos %d %s", i, rec.Index, rec.Pos, rec.Entry.MessageID)
		}
	}
	if last := recs[n]; last.Index != uint64(leaves-1) || last.Pos != 0 || last.Entry.Kind != KindLinkUp {
		t.Fatalf("last record %+v, want the lone link-up in leaf %d", last, leaves-1)
	}

	inc, err := r.Show(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(inc.Entries) != MaxGroup || inc.Entries[0].MessageID != testEntry(MaxGroup).MessageID || inc.TreeSize != uint64(leaves) {
		t.Fatalf("Show(1): %d entries from %s, tree %d", len(inc.Entries), inc.Entries[0].MessageID, inc.TreeSize)
	}

	pub := key.Public().(ed25519.PublicKey)
	rep, err := Verify(t.Context(), dir, testOrigin, pub)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != uint64(leaves) || rep.Records != n+1 {
		t.Fatalf("report: %d leaves holding %d entries, want %d and %d", rep.Entries, rep.Records, leaves, n+1)
	}

	// Edit one entry in the middle of the second group: still a valid
	// group of valid entries, but not the leaf the tree committed to.
	p := filepath.Join(dir, filepath.FromSlash(layout.EntriesPath(0, uint8(leaves))))
	b := mustRead(t, p)
	target := []byte(testEntry(MaxGroup + 5).MessageID)
	i := bytes.Index(b, target)
	if i < 0 {
		t.Fatal("entry not found in the bundle")
	}
	b[i+len(target)-1] ^= 1 // ...0069 -> ...0068: a valid id, another entry
	mustWrite(t, p, b)
	rep, err = Verify(t.Context(), dir, testOrigin, pub)
	if !errors.Is(err, ErrTampered) || !strings.Contains(strings.Join(rep.Problems, "\n"), "entry 1 does not match") {
		t.Fatalf("Verify after editing an entry in a group = %v, problems %q", err, rep.Problems)
	}
}

func FuzzParseLeaf(f *testing.F) {
	recs := encoded(f, 0, 3)
	leaves, _ := groupLeaves(recs)
	f.Add(leaves[0])
	f.Add(recs[0])
	f.Add([]byte{0x82, 0xa0, 0xa0})
	f.Add([]byte{0x98, 0x18})
	f.Add(append([]byte{0x82}, recs[0]...))
	f.Fuzz(func(t *testing.T, in []byte) {
		es, err := ParseLeaf(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedEntry) {
				t.Fatalf("error %v does not wrap ErrMalformedEntry", err)
			}
			return
		}
		// One encoding only: the entries, grouped again, are the input.
		var again [][]byte
		for _, e := range es {
			b, err := e.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			again = append(again, b)
		}
		leaves, _ := groupLeaves(again)
		if len(leaves) != 1 || !bytes.Equal(leaves[0], in) {
			t.Fatalf("accepted %x but it groups again to %x", in, leaves)
		}
	})
}
