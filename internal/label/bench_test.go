package label

import (
	"os"
	"testing"
)

func BenchmarkACDF(b *testing.B) {
	s := fixtureSet(b)
	l := mk(b, "XAA-NATIONAL", "SECRET", relXAA, relXBB, relXCC, ops, medical)
	c, err := ParseClearance(mustRead(b, "testdata/xaa-clearance-xbb.xml"))
	if err != nil {
		b.Fatal(err)
	}
	if d := s.ACDF(l, c); !d.Grant {
		b.Fatal(d.Reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.ACDF(l, c)
	}
}

func BenchmarkACDFDeny(b *testing.B) {
	s := fixtureSet(b)
	l := mk(b, "XAA-NATIONAL", "SECRET", relXAA, relXCC, ops)
	c, _ := ParseClearance(mustRead(b, "testdata/xaa-clearance-xbb.xml"))
	b.ReportAllocs()
	for b.Loop() {
		s.ACDF(l, c)
	}
}

func BenchmarkValidate(b *testing.B) {
	s := fixtureSet(b)
	l := mk(b, "XAA-NATIONAL", "SECRET", relXAA, relXBB, relXCC, ops, medical)
	r, err := s.resolve(l)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if validate(r, true) != nil {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkParse4774(b *testing.B) {
	data := mustRead(b, "testdata/xaa-secret-rel.xml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseLabel(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePolicyLargest loads the largest SPIF of the spiffing
// conformance data (skipped when ../shared is absent).
func BenchmarkParsePolicyLargest(b *testing.B) {
	dir := sharedDir(b, "conformance/spiffing")
	data, err := os.ReadFile(dir + "/nato-4774-policy.xml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePolicy(data); err != nil {
			b.Fatal(err)
		}
	}
}
