package agreement

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestCanonicalRoundTrip(t *testing.T) {
	d := signedV1(t)
	if err := d.AddNotice(NoticeSuspend, "PAK", date(t, "2011-11-27"), testKey(t, "PAK")); err != nil {
		t.Fatal(err)
	}
	b, err := d.EncodeCanonical()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeCanonical(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.VerifySignatures(); err != nil {
		t.Fatalf("signatures after canonical round trip: %v", err)
	}
	dg1, _ := d.Digest()
	dg2, _ := back.Digest()
	if dg1 != dg2 {
		t.Errorf("digest %s became %s", dg1, dg2)
	}
	if st := back.StatusAt(date(t, "2012-01-01")); st.Phase != Suspended {
		t.Errorf("status after round trip: %v", st)
	}
	sb, _ := d.SigningBytes()
	if !bytes.HasPrefix(sb, []byte("liaison-agreement-v1\x00")) {
		t.Errorf("signing bytes start %q", sb[:24])
	}
}

// The digest depends on content only: not on YAML layout, key order,
// comments or flow style.
func TestDigestIgnoresYAMLLayout(t *testing.T) {
	a := load(t, "cis-moa-v1.yaml")
	b, _ := os.ReadFile(filepath.Join("testdata", "cis-moa-v1.yaml"))
	src := strings.Replace(string(b), "id: usa-pak-cis-moa\nversion: 1\n", "# a comment\nversion: 1\nid: usa-pak-cis-moa\n", 1)
	src = strings.Replace(src, "    ceiling:\n      USA: SECRET\n      PAK: SECRET\n", "    ceiling: {PAK: SECRET, USA: SECRET}\n", 1)
	c, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	dc, _ := c.Digest()
	if da != dc {
		t.Errorf("layout changed the digest: %s vs %s", da, dc)
	}
	c.Title += "."
	dc, _ = c.Digest()
	if da == dc {
		t.Error("a changed title kept the digest")
	}
}

func TestDecodeCanonicalRefuses(t *testing.T) {
	d := signedV1(t)
	good, err := d.EncodeCanonical()
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := cbor.Unmarshal(good, &generic); err != nil {
		t.Fatal(err)
	}
	// Same content, keys in Go's length-first-but-not-bytewise order and
	// with indefinite-length or non-minimal encodings, must be refused.
	loose, err := cbor.EncOptions{Sort: cbor.SortNone}.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	var nonCanonical []byte
	for range 20 { // map iteration order is random; find an unsorted encoding
		b, _ := loose.Marshal(generic)
		if !bytes.Equal(b, good) {
			nonCanonical = b
			break
		}
	}
	dup := append([]byte{}, good...)
	// Turn the document map header (0xad = map of 13 pairs, or less) into
	// one with an extra pair duplicating "id".
	withDup := func() []byte {
		hdr := dup[0]
		if hdr < 0xa1 || hdr > 0xb6 {
			t.Skip("unexpected header")
		}
		out := []byte{hdr + 1}
		out = append(out, dup[1:]...)
		return append(out, 0x62, 'i', 'd', 0x61, 'x')
	}()
	cases := map[string][]byte{
		"empty":          nil,
		"not a map":      {0x01},
		"truncated":      good[:len(good)/2],
		"trailing bytes": append(append([]byte{}, good...), 0x00),
		"indefinite map": append([]byte{0xbf}, append(append([]byte{}, good[1:]...), 0xff)...),
		"duplicate key":  withDup,
		"tagged":         append([]byte{0xc0}, good...),
		"oversized":      make([]byte, MaxSize+1),
		"unknown field": func() []byte {
			g := map[string]any{}
			cbor.Unmarshal(good, &g)
			g["zzz"] = 1
			b, _ := encMode.Marshal(g)
			return b
		}(),
		"non-minimal length": append([]byte{0xb8, good[0] - 0xa0}, good[1:]...),
	}
	if nonCanonical != nil {
		cases["unsorted keys"] = nonCanonical
	}
	for name, b := range cases {
		if _, err := DecodeCanonical(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := DecodeCanonical(good); err != nil {
		t.Errorf("canonical form refused: %v", err)
	}
}
