package agreement

import (
	"os"
	"path/filepath"
	"testing"
)

func benchSet(b *testing.B) *Set {
	v1 := load(b, "cis-moa-v1.yaml")
	approveAndSign(b, v1, "2005-10-01")
	v2 := renew(b, v1, "2023-08-20", "2038-08-20")
	approveAndSign(b, v2, "2023-08-01")
	tri := load(b, "trilateral.yaml")
	approveAndSign(b, tri, "2023-12-01")
	s, err := NewSet(v1, v2, tri)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSetMay is the per-message question the node asks.
func BenchmarkSetMay(b *testing.B) {
	s := benchSet(b)
	at := date(b, "2024-06-01")
	b.ReportAllocs()
	for b.Loop() {
		if !s.May("USA", "PAK", "ops-liaison", at).Allowed {
			b.Fatal("refused")
		}
	}
}

// BenchmarkSetGoverns is the guard's per-message question: May without
// the reason.
func BenchmarkSetGoverns(b *testing.B) {
	s := benchSet(b)
	at := date(b, "2024-06-01")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := s.Governs("USA", "PAK", "ops-liaison", at); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkSetInForce(b *testing.B) {
	s := benchSet(b)
	at := date(b, "2024-06-01")
	b.ReportAllocs()
	for b.Loop() {
		if len(s.InForce(at)) != 2 {
			b.Fatal("wrong count")
		}
	}
}

// BenchmarkStatusAt verifies both signatures on every call.
func BenchmarkStatusAt(b *testing.B) {
	d := load(b, "cis-moa-v1.yaml")
	approveAndSign(b, d, "2005-10-01")
	at := date(b, "2010-01-01")
	b.ReportAllocs()
	for b.Loop() {
		if d.StatusAt(at).Phase != InForce {
			b.Fatal("not in force")
		}
	}
}

func BenchmarkParse(b *testing.B) {
	src, err := os.ReadFile(filepath.Join("testdata", "cis-moa-v1.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	d := load(b, "cis-moa-v1.yaml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Digest(); err != nil {
			b.Fatal(err)
		}
	}
}
