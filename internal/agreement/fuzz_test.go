package agreement

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	for _, name := range []string{"cis-moa-v1.yaml", "trilateral.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("id: x\nversion: 1\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("term: {effective: 2005-10-28, expiry: 2005-10-27, notice: 99999d}\n"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			return
		}
		// Whatever parses must marshal, re-parse to the same digest and
		// survive the canonical encoding.
		dg, err := d.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		if dg2, _ := again.Digest(); dg2 != dg {
			t.Fatalf("digest changed across YAML round trip\n%s", out)
		}
		cb, err := d.EncodeCanonical()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeCanonical(cb); err != nil {
			t.Fatalf("canonical form refused: %v", err)
		}
		_ = d.StatusAt(time.Unix(1e9, 0))
		_ = d.Summary(time.Unix(1e9, 0))
	})
}

func FuzzDecodeCanonical(f *testing.F) {
	d := load(f, "cis-moa-v1.yaml")
	approveAndSign(f, d, "2005-10-01")
	good, err := d.EncodeCanonical()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{0xa0})
	f.Add([]byte{0xbf, 0xff})
	f.Add(good[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeCanonical(b)
		if err != nil {
			return
		}
		again, err := d.EncodeCanonical()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("accepted bytes that are not the canonical encoding")
		}
		_ = d.VerifySignatures()
		_ = d.StatusAt(time.Unix(1e9, 0))
	})
}
