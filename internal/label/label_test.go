package label

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	xaaID = "2.25.118446744073709551601"
	xbbID = "2.25.118446744073709551602"
)

func loadPolicy(t testing.TB, name string) *Policy {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

func fixtureSet(t testing.TB) *PolicySet {
	t.Helper()
	s, err := NewPolicySet(loadPolicy(t, "xaa-national.xml"), loadPolicy(t, "xbb-national.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mk builds a STANAG 4774 label; cats are "TagName/TYPE/Value".
func mk(t testing.TB, policy, class string, cats ...string) *Label {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `<originatorConfidentialityLabel xmlns="%s" ReviewDateTime="2031-01-01T00:00:00Z"><ConfidentialityInformation><PolicyIdentifier>%s</PolicyIdentifier><Classification>%s</Classification>`, NS4774Label, policy, class)
	for _, c := range cats {
		f := strings.SplitN(c, "/", 3)
		fmt.Fprintf(&b, `<Category TagName="%s" Type="%s"><GenericValue>%s</GenericValue></Category>`, f[0], f[1], f[2])
	}
	b.WriteString(`</ConfidentialityInformation><CreationDateTime>2026-01-15T09:30:00Z</CreationDateTime></originatorConfidentialityLabel>`)
	l, err := ParseLabel([]byte(b.String()))
	if err != nil {
		t.Fatalf("mk: %v", err)
	}
	return l
}

const (
	relXAA  = "Releasable To/PERMISSIVE/XAA"
	relXBB  = "Releasable To/PERMISSIVE/XBB"
	relXCC  = "Releasable To/PERMISSIVE/XCC"
	relCoal = "Releasable To/PERMISSIVE/COALITION"
	ops     = "Caveats/RESTRICTIVE/OPS"
	crypto  = "Caveats/RESTRICTIVE/CRYPTO"
	noforn  = "Caveats/RESTRICTIVE/NOFORN"
	staff   = "Handling/INFORMATIVE/STAFF"
	medical = "Handling/INFORMATIVE/MEDICAL"
)

func TestPolicyBasics(t *testing.T) {
	s := fixtureSet(t)
	for _, k := range []string{xaaID, "urn:oid:" + xaaID, "xaa-national", "XAA-NATIONAL"} {
		if p := s.Policy(k); p == nil || p.ID() != xaaID || p.Name() != "XAA-NATIONAL" {
			t.Errorf("Policy(%q) = %v", k, p)
		}
	}
	if s.Policy("XCC-NATIONAL") != nil {
		t.Error("unknown policy found")
	}
	if err := s.Add(loadPolicy(t, "xaa-national.xml")); err == nil {
		t.Error("duplicate policy added")
	}
	if d := s.Policy(xaaID).Digest(); d == [32]byte{} {
		t.Error("zero digest")
	}
}

func TestValidity(t *testing.T) {
	s := fixtureSet(t)
	tests := []struct {
		name    string
		l       *Label
		wantErr string // "" = valid
	}{
		{"unclassified plain", mk(t, "XAA-NATIONAL", "UNCLASSIFIED"), ""},
		{"secret rel", mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXBB, ops), ""},
		{"secret noforn", mk(t, "XAA-NATIONAL", "SECRET", noforn), ""},
		{"secret without rel or noforn", mk(t, "XAA-NATIONAL", "SECRET", ops), "requiredCategory"},
		{"noforn with rel", mk(t, "XAA-NATIONAL", "SECRET", relXBB, noforn), "excludedCategory"},
		{"crypto at restricted", mk(t, "XAA-NATIONAL", "RESTRICTED", crypto), "excludedClass"},
		{"two handling values", mk(t, "XAA-NATIONAL", "RESTRICTED", staff, medical), "single selection"},
		{"lower-case values", mk(t, "xaa-national", "secret", "releasable to/permissive/xbb"), ""},
		{"obsolete class stored", mk(t, "XAA-NATIONAL", "CONFIDENTIAL-OLD"), ""},
		{"requiredClass", mk(t, "XBB-NATIONAL", "TRES SECRET", "Mentions/RESTRICTIVE/NATIONAL"), "requiredClass"},
		{"maxSelection", mk(t, "XBB-NATIONAL", "SECRET", "Diffusion/PERMISSIVE/XAA", "Traitement/INFORMATIVE/PERSONNEL", "Traitement/INFORMATIVE/MEDICAL", "Traitement/INFORMATIVE/ARCHIVE"), "maxSelection"},
	}
	for _, tc := range tests {
		err := s.Validate(tc.l)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	if err := s.ValidateNew(mk(t, "XAA-NATIONAL", "CONFIDENTIAL-OLD")); err == nil || !strings.Contains(err.Error(), "obsolete") {
		t.Errorf("ValidateNew obsolete: %v", err)
	}
	for _, l := range []*Label{
		mk(t, "XCC-NATIONAL", "SECRET"),
	} {
		if err := s.Validate(l); !errors.Is(err, ErrUnknownPolicy) {
			t.Errorf("unknown policy: %v", err)
		}
	}
	if err := s.Validate(mk(t, "XAA-NATIONAL", "SECRET", "Caveats/RESTRICTIVE/MAGIC")); err == nil {
		t.Error("unknown category accepted")
	}
	if err := s.Validate(mk(t, "XAA-NATIONAL", "SECRET", "Caveats/PERMISSIVE/OPS")); err == nil {
		t.Error("category with the wrong type accepted")
	}
}

func TestMarking(t *testing.T) {
	s := fixtureSet(t)
	tests := []struct {
		l    *Label
		lang string
		want string
	}{
		{mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXBB, ops, medical), "", "XAA SECRET REL TO XAA, XBB OPS - MEDICAL"},
		{mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXBB, relCoal), "fr", "XAA SECRET COMMUNICABLE A XAA, XBB, COALITION ALPHA"},
		{mk(t, "XAA-NATIONAL", "RESTRICTED", medical), "fr-CA", "XAA DIFFUSION RESTREINTE - MEDICAL-CONFIDENTIEL"},
		{mk(t, "XAA-NATIONAL", "UNCLASSIFIED"), "de", "XAA UNCLASSIFIED"},
		{mk(t, "XBB-NATIONAL", "SECRET", "Diffusion/PERMISSIVE/XAA", "Diffusion/PERMISSIVE/XBB", "Mentions/RESTRICTIVE/NATIONAL"), "", "XBB SECRET DIFFUSION XAA XBB SPECIAL XBB"},
		{mk(t, "XBB-NATIONAL", "SECRET", "Diffusion/PERMISSIVE/XAA"), "fr", "XBB/FR SECRET DIFFUSION XAA"},
	}
	for _, tc := range tests {
		got, err := s.Marking(tc.l, tc.lang)
		if err != nil || got != tc.want {
			t.Errorf("Marking(%s, %q) = %q, %v; want %q", tc.l.Class, tc.lang, got, err, tc.want)
		}
	}
	c, err := ParseClearance(mustRead(t, "testdata/xaa-clearance-xbb.xml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ClearanceMarking(c, "")
	if want := "XAA {UNCLASSIFIED|RESTRICTED|CONFIDENTIAL|SECRET} REL TO XBB OPS"; err != nil || got != want {
		// The policy-level replacePolicy phrase does not apply to clearances.
		if want2 := "{UNCLASSIFIED|RESTRICTED|CONFIDENTIAL|SECRET} REL TO XBB OPS"; got != want2 {
			t.Errorf("ClearanceMarking = %q, %v; want %q", got, err, want2)
		}
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestACDF(t *testing.T) {
	s := fixtureSet(t)
	clr, err := ParseClearance(mustRead(t, "testdata/xaa-clearance-xbb.xml"))
	if err != nil {
		t.Fatal(err)
	}
	other := &Clearance{PolicyName: "XBB-NATIONAL", Classes: []ClassRef{{Name: "SECRET"}}}
	unknown := &Clearance{PolicyName: "XCC-NATIONAL", Classes: []ClassRef{{Name: "SECRET"}}}
	tests := []struct {
		name   string
		l      *Label
		c      *Clearance
		grant  bool
		reason string
	}{
		{"rel to holder", mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXBB, ops), clr, true, "grant"},
		{"informative ignored", mk(t, "XAA-NATIONAL", "SECRET", relXBB, medical), clr, true, "grant"},
		{"rel to others", mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXCC), clr, false, "Releasable To"},
		{"caveat not held", mk(t, "XAA-NATIONAL", "CONFIDENTIAL", crypto), clr, false, "CRYPTO"},
		{"class not held", mk(t, "XAA-NATIONAL", "TOP SECRET"), clr, false, "TOP SECRET"},
		{"noforn", mk(t, "XAA-NATIONAL", "SECRET", noforn), clr, false, "NOFORN"},
		{"invalid label", mk(t, "XAA-NATIONAL", "SECRET", relXBB, noforn), clr, false, "excludedCategory"},
		{"no clearance", mk(t, "XAA-NATIONAL", "UNCLASSIFIED"), nil, false, "no clearance"},
		{"other policy", mk(t, "XAA-NATIONAL", "UNCLASSIFIED"), other, false, "differs"},
		{"unknown clearance policy", mk(t, "XAA-NATIONAL", "UNCLASSIFIED"), unknown, false, "unknown policy"},
		{"unknown label policy", mk(t, "XCC-NATIONAL", "UNCLASSIFIED"), clr, false, "unknown policy"},
		{"unmapped category", mk(t, "XAA-NATIONAL", "SECRET", "Caveats/RESTRICTIVE/NOPE"), clr, false, "NOPE"},
	}
	for _, tc := range tests {
		d := s.ACDF(tc.l, tc.c)
		if d.Grant != tc.grant || !strings.Contains(d.Reason, tc.reason) {
			t.Errorf("%s: %+v, want grant=%v reason~%q", tc.name, d, tc.grant, tc.reason)
		}
	}
	if d := s.ACDF(nil, clr); d.Grant {
		t.Error("nil label granted")
	}
}

func TestTranslate(t *testing.T) {
	s := fixtureSet(t)
	tests := []struct {
		name    string
		l       *Label
		to      string
		dir     Direction
		want    string // marking of the result, or the error substring
		wantErr bool
	}{
		{"xaa to xbb encrypt", mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXBB, ops, medical), "XBB-NATIONAL", Encrypt, "XBB SECRET DIFFUSION XAA XBB OPERATIONS MEDICAL", false},
		{"xaa to xbb decrypt", mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXBB, ops, medical), xbbID, Decrypt, "XBB SECRET DIFFUSION XAA XBB OPERATIONS MEDICAL", false},
		{"staff discarded on encrypt", mk(t, "XAA-NATIONAL", "RESTRICTED", staff), "XBB-NATIONAL", Encrypt, "XBB DIFFUSION LIMITEE", false},
		{"staff mapped on decrypt", mk(t, "XAA-NATIONAL", "RESTRICTED", staff), "XBB-NATIONAL", Decrypt, "XBB DIFFUSION LIMITEE PERSONNEL", false},
		{"obsolete class decrypt", mk(t, "XAA-NATIONAL", "CONFIDENTIAL-OLD"), "XBB-NATIONAL", Decrypt, "XBB CONFIDENTIEL", false},
		{"obsolete class encrypt", mk(t, "XAA-NATIONAL", "CONFIDENTIAL-OLD"), "XBB-NATIONAL", Encrypt, "no encrypt equivalent", true},
		{"xbb to xaa encrypt", mk(t, "XBB-NATIONAL", "SECRET", "Diffusion/PERMISSIVE/COALITION", "Mentions/RESTRICTIVE/OPERATIONS"), "XAA-NATIONAL", Encrypt, "XAA SECRET REL TO COALITION OPS", false},
		{"xbb to xaa decrypt", mk(t, "XBB-NATIONAL", "SECRET", "Diffusion/PERMISSIVE/COALITION", "Mentions/RESTRICTIVE/OPERATIONS"), "XAA-NATIONAL", Decrypt, "XAA SECRET REL TO COALITION OPS", false},
		{"archive discarded", mk(t, "XBB-NATIONAL", "SECRET", "Diffusion/PERMISSIVE/XAA", "Traitement/INFORMATIVE/ARCHIVE"), "XAA-NATIONAL", Encrypt, "XAA SECRET REL TO XAA", false},
		{"unmapped category", mk(t, "XAA-NATIONAL", "SECRET", relXBB, crypto), "XBB-NATIONAL", Encrypt, "CRYPTO", true},
		{"unmapped on decrypt", mk(t, "XAA-NATIONAL", "SECRET", relXBB, crypto), "XBB-NATIONAL", Decrypt, "CRYPTO", true},
		{"result invalid", mk(t, "XAA-NATIONAL", "TOP SECRET", noforn), "XBB-NATIONAL", Encrypt, "requiredClass", true},
		{"unknown target", mk(t, "XAA-NATIONAL", "SECRET", relXBB), "XCC-NATIONAL", Encrypt, "unknown policy", true},
	}
	for _, tc := range tests {
		orig, _ := tc.l.MarshalXML4774(Originator)
		out, err := s.Translate(tc.l, tc.to, tc.dir)
		if after, _ := tc.l.MarshalXML4774(Originator); string(after) != string(orig) {
			t.Errorf("%s: originator label changed", tc.name)
		}
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if out.Kind != Alternative || !out.Created.Equal(tc.l.Created) {
			t.Errorf("%s: kind %v created %v", tc.name, out.Kind, out.Created)
		}
		got, err := s.Marking(out, "")
		if err != nil || got != tc.want {
			t.Errorf("%s: marking %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestReleasableTo(t *testing.T) {
	s := fixtureSet(t)
	tests := []struct {
		name   string
		l      *Label
		party  string
		groups []string
		grant  bool
	}{
		{"named party", mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXBB), "XBB", nil, true},
		{"case-insensitive party", mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXBB), "xbb", nil, true},
		{"not named", mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXBB), "XCC", nil, false},
		{"via group", mk(t, "XAA-NATIONAL", "SECRET", relCoal), "XCC", []string{"COALITION"}, true},
		{"group not held", mk(t, "XAA-NATIONAL", "SECRET", relCoal), "XCC", nil, false},
		{"noforn", mk(t, "XAA-NATIONAL", "SECRET", noforn), "XBB", []string{"COALITION"}, false},
		{"caveat", mk(t, "XAA-NATIONAL", "SECRET", relXBB, ops), "XBB", nil, false},
		{"unknown policy", mk(t, "XCC-NATIONAL", "SECRET"), "XBB", nil, false},
	}
	for _, tc := range tests {
		if d := s.ReleasableTo(tc.l, tc.party, tc.groups...); d.Grant != tc.grant {
			t.Errorf("%s: %+v, want %v", tc.name, d, tc.grant)
		}
	}
	c, err := s.PartyClearance("XAA-NATIONAL", "XBB", "CONFIDENTIAL", "COALITION")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Classes) != 4 || len(c.Categories) != 2 { // CONFIDENTIAL-OLD shares CONFIDENTIAL's hierarchy
		t.Errorf("PartyClearance = %+v", c)
	}
	if d := s.ACDF(mk(t, "XAA-NATIONAL", "SECRET", relXBB), c); d.Grant {
		t.Error("party cleared above its ceiling")
	}
	if _, err := s.PartyClearance("XAA-NATIONAL", "XBB", "COSMIC"); err == nil {
		t.Error("unknown ceiling accepted")
	}
}

func TestCompareAndDominant(t *testing.T) {
	s := fixtureSet(t)
	l := mk(t, "XAA-NATIONAL", "CONFIDENTIAL")
	for cls, want := range map[string]int{"SECRET": -1, "confidential": 0, "RESTRICTED": 1} {
		if got, err := s.Compare(l, cls); err != nil || got != want {
			t.Errorf("Compare(%s) = %d, %v", cls, got, err)
		}
	}
	if _, err := s.Compare(l, "NOPE"); err == nil {
		t.Error("unknown classification compared")
	}
	d, err := s.Dominant(
		mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXBB, relXCC, ops),
		mk(t, "XAA-NATIONAL", "CONFIDENTIAL", relXBB, relXCC, medical),
		mk(t, "XAA-NATIONAL", "RESTRICTED", crypto),
	)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Marking(d, ""); m != "XAA SECRET REL TO XBB, XCC OPS CRYPTO - MEDICAL" {
		t.Errorf("dominant marking %q", m)
	}
	if _, err := s.Dominant(mk(t, "XAA-NATIONAL", "SECRET", relXAA), mk(t, "XAA-NATIONAL", "SECRET", relXBB)); err == nil {
		t.Error("disjoint releasability combined")
	}
	if _, err := s.Dominant(mk(t, "XAA-NATIONAL", "SECRET", relXAA), mk(t, "XBB-NATIONAL", "SECRET", "Diffusion/PERMISSIVE/XAA")); !errors.Is(err, ErrPolicyMismatch) {
		t.Errorf("mixed policies: %v", err)
	}
	if _, err := s.Dominant(mk(t, "XAA-NATIONAL", "SECRET", relXAA), mk(t, "XAA-NATIONAL", "SECRET", noforn)); err == nil {
		t.Error("invalid dominant label accepted")
	}
}

func TestRoundTrips(t *testing.T) {
	s := fixtureSet(t)
	l, err := ParseLabel(mustRead(t, "testdata/xaa-secret-rel.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckSchema(); err != nil {
		t.Fatal(err)
	}
	if l.ID != "L1" || l.OriginatorID != "officer@xaa.example" || !l.Review.Equal(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("fields lost: %+v", l)
	}
	x, err := l.MarshalXML4774(Originator)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := ParseLabel(x)
	if err != nil {
		t.Fatal(err)
	}
	x2, _ := l2.MarshalXML4774(Originator)
	if string(x) != string(x2) {
		t.Errorf("4774 not canonical:\n%s\n%s", x, x2)
	}
	der, err := s.MarshalESS(l)
	if err != nil {
		t.Fatal(err)
	}
	l3, err := ParseLabel(der)
	if err != nil {
		t.Fatal(err)
	}
	m1, _ := s.Marking(l, "")
	m3, err := s.Marking(l3, "")
	if err != nil || m1 != m3 {
		t.Errorf("ESS round trip marking %q vs %q (%v)", m1, m3, err)
	}
	der3, _ := s.MarshalESS(l3)
	if string(der) != string(der3) {
		t.Error("DER not canonical")
	}
	wrapped := fmt.Sprintf("<esssecuritylabel xmlns='%s'>%s</esssecuritylabel>", NSESS, b64(der))
	if l4, err := ParseLabel([]byte(wrapped)); err != nil || s.Validate(l4) != nil {
		t.Errorf("XEP-0258 form: %v", err)
	}
	raw := base64.RawStdEncoding.EncodeToString(der)
	if l5, err := ParseLabel([]byte(raw[:10] + "\n " + raw[10:])); err != nil || s.Validate(l5) != nil {
		t.Errorf("unpadded base64 with whitespace: %v", err)
	}
}

func TestESSWorkedValues(t *testing.T) {
	tests := []struct {
		in     string
		policy string
		class  uint64
		has    bool
		mark   string
	}{
		{"MQYCAQIGASk=", "1.1", 2, true, ""},
		{"MQYCAQQGASk=", "1.1", 4, true, ""},
		{"MQMGASk=", "1.1", 0, false, ""},
		{"MRUCAgD9DA9BcXVhIChvYnNvbGV0ZSk=", "", 253, true, "Aqua (obsolete)"},
	}
	for _, tc := range tests {
		l, err := ParseLabel([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if l.PolicyOID != tc.policy || l.ClassLACV != tc.class || l.HasClassLACV != tc.has || l.PrivacyMark != tc.mark {
			t.Errorf("%s: %+v", tc.in, l)
		}
	}
	for _, bad := range []string{"MQYCAQIGASkGASk=", "MQA", "MQMGAQ=="} {
		if _, err := ParseLabel([]byte(bad)); err == nil && bad != "MQA" {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestHostileInput(t *testing.T) {
	for _, in := range []string{
		`<!DOCTYPE x [<!ENTITY a "b">]><SPIF/>`,
		`<?xml version="1.0"?><!DOCTYPE SPIF SYSTEM "http://example/x.dtd"><SPIF/>`,
		strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100),
		"",
		"<SPIF xmlns='" + SPIFNamespace + "' schemaVersion='3.0'/>",
	} {
		if _, err := ParsePolicy([]byte(in)); err == nil {
			t.Errorf("ParsePolicy(%.40q) accepted", in)
		}
		if _, err := ParseLabel([]byte(in)); err == nil {
			t.Errorf("ParseLabel(%.40q) accepted", in)
		}
	}
	if _, err := ParseLabel(make([]byte, MaxLabelSize+1)); err == nil {
		t.Error("oversized label accepted")
	}
}

func TestClearanceDER(t *testing.T) {
	s := fixtureSet(t)
	// SEQUENCE { OID xaa, BIT STRING {1,2,3,4}, SET { SecurityCategory
	// enumerated permissive {tagName Releasable To, {2}} } }
	oid, _ := oidBody(xaaID)
	set, _ := oidBody(xaaID + ".1")
	syn, _ := oidBody(oidEnumeratedPermissive)
	inner := appendTLV(nil, 0x30, append(appendTLV(nil, 0x06, set), appendTLV(nil, 0x31, appendTLV(nil, 0x02, []byte{2}))...))
	sc := appendTLV(nil, 0x30, append(appendTLV(nil, 0x80, syn), appendTLV(nil, 0xa1, inner)...))
	body := appendTLV(nil, 0x06, oid)
	body = append(body, appendTLV(nil, 0x03, []byte{0x02, 0x78})...) // bits 1-4
	body = append(body, appendTLV(nil, 0x31, sc)...)
	der := appendTLV(nil, 0x30, body)
	for _, in := range [][]byte{der, []byte(b64(der))} {
		c, err := ParseClearance(in)
		if err != nil {
			t.Fatal(err)
		}
		if d := s.ACDF(mk(t, "XAA-NATIONAL", "SECRET", relXAA, relXBB), c); !d.Grant {
			t.Errorf("DER clearance: %+v", d)
		}
		if d := s.ACDF(mk(t, "XAA-NATIONAL", "TOP SECRET", relXBB), c); d.Grant {
			t.Error("DER clearance above its classes granted")
		}
	}
	if _, err := ParseClearance(der[:len(der)-1]); err == nil {
		t.Error("truncated DER clearance accepted")
	}
}

func TestXEP0258Wrapper(t *testing.T) {
	s := fixtureSet(t)
	inner := mustRead(t, "testdata/xaa-secret-rel.xml")
	doc := `<securitylabel xmlns="urn:xmpp:sec-label:0"><displaymarking>XAA SECRET</displaymarking><label>` + string(inner) + `</label></securitylabel>`
	l, err := ParseLabel([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(l); err != nil || l.ID != "L1" {
		t.Errorf("wrapped 4774 label: %v %q", err, l.ID)
	}
}

func TestConcurrentDecisions(t *testing.T) {
	s, _ := NewPolicySet(loadPolicy(t, "xaa-national.xml"))
	l := mk(t, "XAA-NATIONAL", "SECRET", relXBB)
	c, _ := s.PartyClearance(xaaID, "XBB", "")
	done := make(chan bool)
	for range 4 {
		go func() {
			ok := true
			for range 200 {
				ok = ok && s.ACDF(l, c).Grant
			}
			done <- ok
		}()
	}
	if err := s.Add(loadPolicy(t, "xbb-national.xml")); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if !<-done {
			t.Error("decision changed while a policy was added")
		}
	}
}
