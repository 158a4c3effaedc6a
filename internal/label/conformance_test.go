package label

import (
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedDir locates ../shared beside the repository root (or LIAISON_SHARED).
func sharedDir(t testing.TB, sub string) string {
	t.Helper()
	base := os.Getenv("LIAISON_SHARED")
	if base == "" {
		base = filepath.Join("..", "..", "..", "shared")
	}
	dir := filepath.Join(base, sub)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("LIAISON_REQUIRE_PEERS") == "1" {
			t.Fatalf("shared data %s is required (LIAISON_REQUIRE_PEERS=1): %v", dir, err)
		}
		t.Skipf("shared data %s absent; set LIAISON_SHARED to run this test", dir)
	}
	return dir
}

type confSuite struct {
	Sequences []struct {
		Policies []struct {
			SPIF      string `xml:"spif,attr"`
			Exception string `xml:"exception,attr"`
		} `xml:"policy"`
		Tests []confTest `xml:"test"`
	} `xml:"sequence"`
}

type confTest struct {
	Lang             string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Label            string `xml:"label,attr"`
	Clearance        string `xml:"clearance,attr"`
	Valid            string `xml:"valid,attr"`
	LabelMarking     string `xml:"label-marking,attr"`
	ClearanceMarking string `xml:"clearance-marking,attr"`
	ACDF             string `xml:"acdf-result,attr"`
	Encrypt          string `xml:"encrypt,attr"`
	EncryptMarking   string `xml:"encrypt-marking,attr"`
	Exception        string `xml:"exception,attr"`
}

// readOrEmpty returns the file's bytes, or none when it does not exist
// (spiffing's "No data to parse" case).
func readOrEmpty(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return b
}

// TestSpiffingConformance runs every test of spiffing's tests.xml.
func TestSpiffingConformance(t *testing.T) {
	dir := sharedDir(t, filepath.Join("conformance", "spiffing"))
	raw, err := os.ReadFile(filepath.Join(dir, "tests.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var suite confSuite
	if err := xml.Unmarshal(raw, &suite); err != nil {
		t.Fatal(err)
	}
	n := 0
	for si, seq := range suite.Sequences {
		set, _ := NewPolicySet()
		for _, pol := range seq.Policies {
			p, err := ParsePolicy(readOrEmpty(t, filepath.Join(dir, pol.SPIF)))
			if pol.Exception != "" {
				if err == nil {
					t.Errorf("sequence %d: policy %s loaded, want exception %q", si, pol.SPIF, pol.Exception)
				} else if strings.Contains(pol.Exception, "Duplicate excluded classification") &&
					!strings.Contains(err.Error(), "duplicate excluded classification") {
					t.Errorf("sequence %d: policy %s: error %q does not name the duplicate excluded classification", si, pol.SPIF, err)
				}
				n++
				continue
			}
			if err != nil {
				t.Fatalf("sequence %d: policy %s: %v", si, pol.SPIF, err)
			}
			if err := set.Add(p); err != nil {
				t.Fatal(err)
			}
		}
		for ti, tc := range seq.Tests {
			n++
			name := filepath.Base(tc.Label)
			if tc.Lang != "" {
				name += "@" + tc.Lang
			}
			t.Run(name, func(t *testing.T) {
				runConfTest(t, set, dir, tc, si, ti)
			})
		}
	}
	if n == 0 {
		t.Fatal("tests.xml held no tests")
	}
}

func runConfTest(t *testing.T, set *PolicySet, dir string, tc confTest, si, ti int) {
	t.Helper()
	where := func() string { return tc.Label }
	l, err := ParseLabel(readOrEmpty(t, filepath.Join(dir, tc.Label)))
	if err == nil {
		err = set.Validate(l)
		if errors.Is(err, ErrInvalid) {
			err = nil // validity is checked below
		}
	}
	if tc.Exception != "" {
		switch {
		case err == nil:
			t.Fatalf("%s: no error, want %q", where(), tc.Exception)
		case strings.HasPrefix(tc.Exception, "Unknown policy") && !errors.Is(err, ErrUnknownPolicy):
			t.Fatalf("%s: error %v, want ErrUnknownPolicy", where(), err)
		case strings.HasPrefix(tc.Exception, "No data") && !errors.Is(err, ErrNoData):
			t.Fatalf("%s: error %v, want ErrNoData", where(), err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", where(), err)
	}
	if tc.Valid != "" {
		verr := set.Validate(l)
		if want := tc.Valid == "true"; (verr == nil) != want {
			t.Errorf("%s: valid = %v (%v), want %v", where(), verr == nil, verr, want)
		}
	}
	if tc.LabelMarking != "" {
		m, err := set.Marking(l, tc.Lang)
		if err != nil || m != tc.LabelMarking {
			t.Errorf("%s: marking = %q (%v), want %q", where(), m, err, tc.LabelMarking)
		}
	}
	var c *Clearance
	if tc.Clearance != "" {
		if c, err = ParseClearance(readOrEmpty(t, filepath.Join(dir, tc.Clearance))); err != nil {
			t.Fatalf("%s: %v", tc.Clearance, err)
		}
		if tc.ClearanceMarking != "" {
			m, err := set.ClearanceMarking(c, tc.Lang)
			if err != nil || m != tc.ClearanceMarking {
				t.Errorf("%s: clearance marking = %q (%v), want %q", tc.Clearance, m, err, tc.ClearanceMarking)
			}
		}
	}
	target := l
	if tc.Encrypt != "" {
		if target, err = set.Translate(l, tc.Encrypt, Encrypt); err != nil {
			t.Fatalf("%s: translate to %s: %v", where(), tc.Encrypt, err)
		}
		if tc.EncryptMarking != "" {
			m, err := set.Marking(target, tc.Lang)
			if err != nil || m != tc.EncryptMarking {
				t.Errorf("%s: translated marking = %q (%v), want %q", where(), m, err, tc.EncryptMarking)
			}
		}
	}
	if tc.ACDF != "" {
		d := set.ACDF(target, c)
		if want := tc.ACDF == "1"; d.Grant != want {
			t.Errorf("%s: ACDF = %v (%s), want %v", where(), d.Grant, d.Reason, want)
		}
	}
}
