package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"liaison/internal/message"
)

// A label of the size the nodes write: one policy, a classification, a
// releasability category of several nations (fictitious ones here).
const wideLabel = `<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0" ReviewDateTime="2036-05-01T10:00:00Z">` +
	`<ConfidentialityInformation><PolicyIdentifier URI="urn:oid:2.25.77001">XAA-POLICY</PolicyIdentifier><Classification>CONFIDENTIAL</Classification>` +
	`<Category TagName="Releasable To" Type="PERMISSIVE"><GenericValue>XAA</GenericValue><GenericValue>XBB</GenericValue></Category>` +
	`</ConfidentialityInformation><CreationDateTime>2026-05-01T10:00:00Z</CreationDateTime></originatorConfidentialityLabel>`

// TestLabelPackRoundTrip: every value comes back as it went in; labels
// are stored much smaller, a value that does not compress is stored as it
// is, and one that starts with the pack tag is always packed.
func TestLabelPackRoundTrip(t *testing.T) {
	p := labels()
	random := make([]byte, 600)
	rand.Read(random)
	random[0] = 'r' // not packTag: such a value is always packed
	tagged := append([]byte{packTag}, "short"...)
	for _, tc := range []struct {
		name   string
		raw    []byte
		packed bool
	}{
		{"empty", []byte{}, false},
		{"nil", nil, false},
		{"wide label", []byte(wideLabel), true},
		{"suite label", []byte(testLabel), true},
		{"alternatives", encodeAlts([][]byte{[]byte(wideLabel), []byte(strings.ReplaceAll(wideLabel, "XAA", "XCC"))}), true},
		{"incompressible", random, false},
		{"starts with the tag", tagged, true},
	} {
		stored := p.pack(tc.raw)
		if got := len(stored) > 0 && stored[0] == packTag; got != tc.packed {
			t.Errorf("%s: packed %v, want %v", tc.name, got, tc.packed)
		}
		if !tc.packed && !bytes.Equal(stored, tc.raw) {
			t.Errorf("%s: stored %x, want it as it is", tc.name, stored)
		}
		back, err := p.unpack(stored)
		if err != nil || !bytes.Equal(back, tc.raw) {
			t.Errorf("%s: unpacked %q, %v; want %q", tc.name, back, err, tc.raw)
		}
		if tc.packed && len(back) > 0 {
			back[0] ^= 0xff // the caller's own copy: the memo is unharmed
			if again, _ := p.unpack(stored); !bytes.Equal(again, tc.raw) {
				t.Errorf("%s: changing an unpacked value changed the next one", tc.name)
			}
		}
	}
	// The memo keeps its own copy of a value stored as it is: a caller
	// may reuse the buffer it passed.
	fresh := make([]byte, 600)
	rand.Read(fresh)
	fresh[0] = 'f'
	reused := append([]byte(nil), fresh...)
	p.pack(reused)
	reused[0] = packTag
	if got := p.pack(fresh); !bytes.Equal(got, fresh) {
		t.Errorf("a reused buffer changed what the memo gives for its old value: %x…", got[:4])
	}
	// Large values are packed but not remembered: the memo stays small
	// whatever labels come.
	large := []byte(strings.Repeat(wideLabel, 20))
	p.mu.Lock()
	clear(p.packed)
	clear(p.unpacked)
	p.mu.Unlock()
	if back, err := p.unpack(p.pack(large)); err != nil || !bytes.Equal(back, large) {
		t.Errorf("a %d-byte value: %v", len(large), err)
	}
	p.mu.Lock()
	if len(p.packed)+len(p.unpacked) != 0 {
		t.Errorf("a %d-byte value was remembered", len(large))
	}
	p.mu.Unlock()
	if n := len(p.pack([]byte(wideLabel))); n*4 > len(wideLabel) {
		t.Errorf("a %d-byte label packs to %d bytes, want under a quarter", len(wideLabel), n)
	}
}

// TestLabelDictFrozen: values on disk depend on every byte of the
// dictionary, and a value packed when this was written still unpacks.
func TestLabelDictFrozen(t *testing.T) {
	if h := sha256.Sum256(labelDictV1); hex.EncodeToString(h[:]) != "cceb4ad81e09bebbff9a4f8bde0d90b6cb7fd2f3ed6c7b6d36e7f5a1ea980f2e" {
		t.Fatal("labelDictV1 changed: stored labels would no longer unpack; add packZstdV2 instead")
	}
	golden, _ := hex.DecodeString("000128b52ffd610117000501003831223e5841413307006c0407aa750371e19d6ce982ccd265972581c2316520")
	got, err := labels().unpack(golden)
	if err != nil || string(got) != testLabel {
		t.Fatalf("golden value unpacked to %q, %v", got, err)
	}
}

// TestLabelUnpackCorrupt: a damaged or foreign packed value is an error,
// not a panic, and cannot make a reader allocate beyond maxUnpacked.
func TestLabelUnpackCorrupt(t *testing.T) {
	p := labels()
	good := p.pack([]byte(wideLabel))
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderDictRaw(packZstdV1, labelDictV1), zstd.WithSingleSegment(true))
	if err != nil {
		t.Fatal(err)
	}
	bomb := enc.EncodeAll(make([]byte, maxUnpacked+1), []byte{packTag, packZstdV1})
	for name, v := range map[string][]byte{
		"tag alone":       {packTag},
		"unknown packing": {packTag, 0x7f, 1, 2, 3},
		"truncated":       good[:len(good)/2],
		"flipped":         append(append([]byte(nil), good[:10]...), 0xde, 0xad, 0xbe, 0xef),
		"too large":       bomb,
	} {
		if got, err := p.unpack(v); err == nil {
			t.Errorf("%s: unpacked to %d bytes, want an error", name, len(got))
		}
	}
}

// TestLabelPackOldRows: rows written before labels were packed (stored as
// they are) read back unchanged beside packed ones.
func TestLabelPackOldRows(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	old := newMsg("chat", message.Routine)
	raw := &packedMsg{label: []byte(old.Label), alts: encodeAlts(old.Alternatives)}
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		_, err := q.exec(ctx, `INSERT INTO messages (`+msgCols+`, accepted) VALUES (`+placeholders(13)+`)`, appendMsgArgs(nil, 1<<40, old, raw, 1)...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	fresh := newMsg("chat", message.Routine)
	accept(t, s, fresh, queued("XBB"))
	for _, want := range []*message.Message{old, fresh} {
		got, _, err := s.Get(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameMsg(t, got, want)
	}
}

// TestLabelPackPages: a 1 KiB message with a wide label and one
// alternative, as USA stores it for PAK, takes a third of a page: stored
// as they were, such rows took a page each.
func TestLabelPackPages(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	pages := func() int {
		var n int
		if err := s.wdb.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := pages()
	const n = 300
	body := bytes.Repeat([]byte("0123456789abcdef"), 64)
	for i := range n / 30 {
		items := make([]AcceptItem, 30)
		for j := range items {
			m := newMsg("chat", message.Routine)
			m.Label = []byte(strings.ReplaceAll(wideLabel, "10:00:00Z", "10:00:"+string(rune('0'+i%6))+string(rune('0'+j%10))+"Z"))
			m.Alternatives = [][]byte{[]byte(strings.ReplaceAll(wideLabel, "XAA-POLICY", "XBB-POLICY"))}
			m.Body = body
			items[j] = AcceptItem{Msg: m, Routes: queued("XBB")}
		}
		if _, err := s.AcceptBatch(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	if grew := pages() - before; grew > n/2 {
		t.Errorf("%d messages took %d pages, want at most %d", n, grew, n/2)
	}
}

// FuzzLabelUnpack: any stored value either unpacks or is an error, and
// whatever unpacks packs and unpacks to the same bytes again.
func FuzzLabelUnpack(f *testing.F) {
	p := labels()
	f.Add([]byte{})
	f.Add([]byte(testLabel))
	f.Add(p.pack([]byte(wideLabel)))
	f.Add([]byte{packTag, packZstdV1, 0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := p.unpack(b)
		if err != nil {
			return
		}
		if len(raw) > maxUnpacked {
			t.Fatalf("unpacked %d bytes, more than %d", len(raw), maxUnpacked)
		}
		again, err := p.unpack(p.pack(raw))
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("round trip of %x: %x, %v", raw, again, err)
		}
	})
}

// TestNewerSchemaRefused: a store written by a later program (here, one
// version ahead) is refused with a clear error, not misread: that is how
// a program from before packing stops at a store with packed labels.
func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLiteT(t, path, nil)
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		_, err := q.exec(ctx, `INSERT INTO schema_version (version) VALUES (?)`, schemaVersion+1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenSQLite(ctx, path, Config{}); err == nil {
		s.Close()
		t.Fatal("a store of a newer schema opened")
	} else if want := fmt.Sprintf("schema version %d is newer than this program's %d", schemaVersion+1, schemaVersion); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q, want it to say %q", err, want)
	}
}
