package guard

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/label"
	"liaison/internal/message"
)

// The fixtures are the demo's three fictitious national policies (US, PK
// and IN, with equivalences between them) and two signed agreements:
// USA–PAK with channels "exercise" (CONFIDENTIAL, dirty words, FLASH and
// ROUTINE only) and "sitrep" (SECRET), and USA–IND with "sitrep".
const (
	usOID = "2.25.311001"
	pkOID = "2.25.311002"
	inOID = "2.25.311003"
)

var (
	t2010 = time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
	t2021 = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
)

type fixture struct {
	rules Rules
	pols  map[string][]byte
}

func loadPolicy(t testing.TB, file string) ([]byte, *label.Policy) {
	t.Helper()
	data, err := os.ReadFile("../demo/policies/" + file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := label.ParsePolicy(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return data, p
}

func key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func party(id string, seed byte) agreement.Party {
	return agreement.Party{ID: id, Name: id + " (fictitious)", SigningAuthority: "ministry",
		Keys:          []agreement.Key{{Alg: "ed25519", Public: base64.StdEncoding.EncodeToString(key(seed).Public().(ed25519.PublicKey))}},
		CAFingerprint: fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(id)))}
}

func ref(partyID, oid, name string, data []byte) agreement.PolicyRef {
	return agreement.PolicyRef{Party: partyID, PolicyID: oid, Name: name, Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(data))}
}

func sign(t testing.TB, d *agreement.Document, seeds map[string]byte) *agreement.Document {
	t.Helper()
	for _, p := range d.Parties {
		if err := d.Approve(agreement.Approval{Party: p.ID, Authority: "cabinet", Method: "decision", Date: d.Term.Effective.AddDate(0, 0, -7), Reference: "ref-" + p.ID}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range d.Parties {
		if err := d.Sign(p.ID, key(seeds[p.ID])); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	usData, us := loadPolicy(t, "usa.xml")
	pkData, pk := loadPolicy(t, "pak.xml")
	inData, in := loadPolicy(t, "ind.xml")
	ps, err := label.NewPolicySet(us, pk, in)
	if err != nil {
		t.Fatal(err)
	}
	seeds := map[string]byte{"USA": 1, "PAK": 2, "IND": 3}
	home := string(usLabel("CONFIDENTIAL", noforn))
	eff := time.Date(2005, 10, 3, 0, 0, 0, 0, time.UTC)
	cis := sign(t, &agreement.Document{
		ID: "cis", Version: 1, Title: "CIS-MOA (test)",
		Parties: []agreement.Party{party("USA", 1), party("PAK", 2)},
		Scope:   []string{"exercise", "operation"},
		Channels: []agreement.Channel{
			{Name: "exercise", Scope: "exercise", Members: []string{"USA", "PAK"},
				Ceiling: map[string]string{"USA": "CONFIDENTIAL", "PAK": "CONFIDENTIAL"}, DefaultLabel: home,
				Precedences: []message.Precedence{message.Flash, message.Routine},
				Content:     agreement.ContentRules{MaxSize: 64, Types: []string{"text/plain", "application/json", "application/cot+xml"}, DirtyWords: "words"}},
			{Name: "sitrep", Scope: "operation", Members: []string{"USA", "PAK"},
				Ceiling: map[string]string{"USA": "SECRET", "PAK": "SECRET"}, DefaultLabel: home},
			{Name: "bulk", Scope: "exercise", Members: []string{"USA", "PAK"},
				Ceiling: map[string]string{"USA": "CONFIDENTIAL", "PAK": "CONFIDENTIAL"}, DefaultLabel: home,
				Content: agreement.ContentRules{MaxSize: 8 << 20, Types: []string{"text/plain"}, DirtyWords: "bench"}},
			{Name: "nolist", Scope: "operation", Members: []string{"USA", "PAK"},
				Ceiling: map[string]string{"USA": "SECRET", "PAK": "SECRET"}, DefaultLabel: home, Content: agreement.ContentRules{DirtyWords: "missing"}},
		},
		Labels: agreement.Labels{
			Policies:     []agreement.PolicyRef{ref("USA", usOID, "US-CIS-DEMO", usData), ref("PAK", pkOID, "PK-CIS-DEMO", pkData)},
			Equivalences: []agreement.Equivalence{{From: usOID, To: pkOID}, {From: pkOID, To: usOID}},
		},
		Term: agreement.Term{Effective: eff, Expiry: eff.AddDate(15, 0, 0)},
	}, seeds)
	ind := sign(t, &agreement.Document{
		ID: "us-ind", Version: 1, Title: "USA-IND (test, no equivalence accepted)",
		Parties: []agreement.Party{party("USA", 1), party("IND", 3)},
		Scope:   []string{"operation"},
		Channels: []agreement.Channel{{Name: "sitrep", Scope: "operation", Members: []string{"USA", "IND"},
			Ceiling: map[string]string{"USA": "SECRET", "IND": "SECRET"}, DefaultLabel: home}},
		Labels: agreement.Labels{Policies: []agreement.PolicyRef{ref("USA", usOID, "US-CIS-DEMO", usData), ref("IND", inOID, "IN-CIS-DEMO", inData)}},
		Term:   agreement.Term{Effective: eff, Expiry: eff.AddDate(30, 0, 0)},
	}, seeds)
	set, err := agreement.NewSet(cis, ind)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{rules: Rules{Agreements: set, Policies: ps, DirtyWords: map[string][]string{"words": {"Kestrel", "night jar"}, "bench": {"KESTREL", "NIGHTJAR"}}},
		pols: map[string][]byte{"USA": usData, "PAK": pkData}}
}

// lbl writes a STANAG 4774 originator label.
func lbl(policyName, oid, cls string, cats ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0" ReviewDateTime="2040-01-01T00:00:00Z"><ConfidentialityInformation><PolicyIdentifier URI="urn:oid:%s">%s</PolicyIdentifier><Classification>%s</Classification>`, oid, policyName, cls)
	b.WriteString(strings.Join(cats, ""))
	b.WriteString(`</ConfidentialityInformation><CreationDateTime>2009-01-01T00:00:00Z</CreationDateTime></originatorConfidentialityLabel>`)
	return []byte(b.String())
}

func relTo(vals ...string) string {
	s := `<Category TagName="Releasable To" Type="PERMISSIVE">`
	for _, v := range vals {
		s += "<GenericValue>" + v + "</GenericValue>"
	}
	return s + "</Category>"
}

const noforn = `<Category TagName="Handling" Type="RESTRICTIVE"><GenericValue>NOFORN</GenericValue></Category>`

func msg(channel, origin string, prec message.Precedence, label []byte, ct, body string) *message.Message {
	return &message.Message{ID: message.NewID(), Channel: channel, Origin: origin, Precedence: prec,
		Created: t2010, Label: label, ContentType: ct, Body: []byte(body)}
}

func usLabel(cls string, cats ...string) []byte { return lbl("US-CIS-DEMO", usOID, cls, cats...) }
func pkLabel(cls string, cats ...string) []byte { return lbl("PK-CIS-DEMO", pkOID, cls, cats...) }

func TestDecide(t *testing.T) {
	f := newFixture(t)
	conf := usLabel("CONFIDENTIAL", relTo("USA", "PAK"))
	tests := []struct {
		name    string
		m       *message.Message
		to      string
		at      time.Time
		verdict Verdict
		code    string
	}{
		{"released and translated", msg("exercise", "USA", message.Flash, conf, "text/plain", "hello"), "PAK", t2010, Release, CodeReleased},
		{"released back the other way", msg("exercise", "PAK", message.Routine, pkLabel("CONFIDENTIAL", relTo("PAK", "USA")), "text/plain", "hi"), "USA", t2010, Release, CodeReleased},
		{"pakistani RESTRICTED maps to US CONFIDENTIAL", msg("exercise", "PAK", message.Routine, pkLabel("RESTRICTED", relTo("PAK", "USA")), "text/plain", "hi"), "USA", t2010, Release, CodeReleased},
		{"unclassified needs no REL TO", msg("exercise", "USA", message.Flash, usLabel("UNCLASSIFIED"), "text/plain", "x"), "PAK", t2010, Release, CodeReleased},
		{"nil message", nil, "PAK", t2010, Deny, CodeMalformed},
		{"malformed message", &message.Message{}, "PAK", t2010, Deny, CodeMalformed},
		{"before the agreement", msg("exercise", "USA", message.Flash, conf, "text/plain", "x"), "PAK", time.Date(2004, 1, 1, 0, 0, 0, 0, time.UTC), Deny, CodeNoAgreement},
		{"after expiry", msg("exercise", "USA", message.Flash, conf, "text/plain", "x"), "PAK", t2021, Deny, CodeNoAgreement},
		{"channel outside the agreement", msg("chat", "USA", message.Flash, conf, "text/plain", "x"), "PAK", t2010, Deny, CodeNoAgreement},
		{"recipient not on the channel", msg("exercise", "USA", message.Flash, conf, "text/plain", "x"), "IND", t2010, Deny, CodeNoAgreement},
		{"precedence not carried", msg("exercise", "USA", message.Priority, conf, "text/plain", "x"), "PAK", t2010, Deny, CodePrecedence},
		{"unparsable label", msg("exercise", "USA", message.Flash, []byte("<nope"), "text/plain", "x"), "PAK", t2010, Deny, CodeLabelUnparsable},
		{"DTD in label", msg("exercise", "USA", message.Flash, []byte(`<!DOCTYPE x [<!ENTITY a "b">]><x/>`), "text/plain", "x"), "PAK", t2010, Deny, CodeLabelUnparsable},
		{"unknown policy", msg("exercise", "USA", message.Flash, lbl("XX", "2.25.9", "CONFIDENTIAL"), "text/plain", "x"), "PAK", t2010, Deny, CodeLabelInvalid},
		{"label under the partner's policy", msg("exercise", "USA", message.Flash, pkLabel("CONFIDENTIAL", relTo("PAK", "USA")), "text/plain", "x"), "PAK", t2010, Deny, CodePolicyMismatch},
		{"invalid: CONFIDENTIAL without REL TO or NOFORN", msg("exercise", "USA", message.Flash, usLabel("CONFIDENTIAL"), "text/plain", "x"), "PAK", t2010, Deny, CodeLabelInvalid},
		{"invalid: unknown classification", msg("exercise", "USA", message.Flash, usLabel("COSMIC", relTo("USA")), "text/plain", "x"), "PAK", t2010, Deny, CodeLabelInvalid},
		{"invalid: REL TO with NOFORN", msg("exercise", "USA", message.Flash, usLabel("CONFIDENTIAL", relTo("USA", "PAK"), noforn), "text/plain", "x"), "PAK", t2010, Deny, CodeLabelInvalid},
		{"above the ceiling", msg("exercise", "USA", message.Flash, usLabel("SECRET", relTo("USA", "PAK")), "text/plain", "x"), "PAK", t2010, Deny, CodeAboveCeiling},
		{"SECRET fits the sitrep ceiling", msg("sitrep", "USA", message.Flash, usLabel("SECRET", relTo("USA", "PAK")), "text/plain", "x"), "PAK", t2010, Release, CodeReleased},
		{"REL TO USA only", msg("exercise", "USA", message.Flash, usLabel("CONFIDENTIAL", relTo("USA")), "text/plain", "x"), "PAK", t2010, Deny, CodeNotReleasable},
		{"NOFORN", msg("exercise", "USA", message.Flash, usLabel("CONFIDENTIAL", noforn), "text/plain", "x"), "PAK", t2010, Deny, CodeNotReleasable},
		{"REL TO another partner", msg("sitrep", "USA", message.Flash, usLabel("SECRET", relTo("USA", "IND")), "text/plain", "x"), "PAK", t2010, Deny, CodeNotReleasable},
		{"no accepted equivalence to IND", msg("sitrep", "USA", message.Flash, usLabel("SECRET", relTo("USA", "IND")), "text/plain", "x"), "IND", t2010, Deny, CodeUnmapped},
		{"too large", msg("exercise", "USA", message.Flash, conf, "text/plain", strings.Repeat("x", 65)), "PAK", t2010, Deny, CodeTooLarge},
		{"content type not allowed", msg("exercise", "USA", message.Flash, conf, "application/octet-stream", "x"), "PAK", t2010, Deny, CodeContentType},
		{"content type with parameters", msg("exercise", "USA", message.Flash, conf, "text/plain; charset=utf-8", "x"), "PAK", t2010, Release, CodeReleased},
		{"JSON well formed", msg("exercise", "USA", message.Flash, conf, "application/json", `{"a":1}`), "PAK", t2010, Release, CodeReleased},
		{"JSON broken", msg("exercise", "USA", message.Flash, conf, "application/json", `{"a":`), "PAK", t2010, Deny, CodeSchema},
		{"JSON trailing data", msg("exercise", "USA", message.Flash, conf, "application/json", `{} {}`), "PAK", t2010, Deny, CodeSchema},
		{"CoT XML well formed", msg("exercise", "USA", message.Flash, conf, "application/cot+xml", `<event uid="a"/>`), "PAK", t2010, Release, CodeReleased},
		{"CoT XML with a DTD", msg("exercise", "USA", message.Flash, conf, "application/cot+xml", `<!DOCTYPE e><e/>`), "PAK", t2010, Deny, CodeSchema},
		{"CoT XML two roots", msg("exercise", "USA", message.Flash, conf, "application/cot+xml", `<a/><b/>`), "PAK", t2010, Deny, CodeSchema},
		{"text not UTF-8", msg("exercise", "USA", message.Flash, conf, "text/plain", "\xff\xfe"), "PAK", t2010, Deny, CodeSchema},
		{"dirty word", msg("exercise", "USA", message.Flash, conf, "text/plain", "at kestrel now"), "PAK", t2010, Quarantine, CodeDirtyWord},
		{"dirty word in full width and other case", msg("exercise", "USA", message.Flash, conf, "text/plain", "at ＫＥＳＴＲＥＬ"), "PAK", t2010, Quarantine, CodeDirtyWord},
		{"dirty phrase", msg("exercise", "USA", message.Flash, conf, "text/plain", "the Night Jar."), "PAK", t2010, Quarantine, CodeDirtyWord},
		{"a word containing a dirty word is not one", msg("exercise", "USA", message.Flash, conf, "text/plain", "kestrels"), "PAK", t2010, Release, CodeReleased},
		{"dirty-word list missing on this node", msg("nolist", "USA", message.Flash, conf, "text/plain", "x"), "PAK", t2010, Deny, CodeDirtyWord},
	}
	// Every case runs without a cache, then twice (cold, then warm) with
	// a cache of its own and with one sharing parsed labels the way a
	// node does; every path must give the same decision, word for word.
	shared := NewCache(sharedParser())
	paths := []struct {
		name  string
		cache *Cache
	}{{"plain", nil}, {"cache", &Cache{}}, {"cache-warm", nil}, {"parsed", shared}, {"parsed-warm", shared}}
	paths[2].cache = paths[1].cache
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var first Decision
			for i, p := range paths {
				r := f.rules
				r.Cache = p.cache
				d := Decide(tt.m, tt.to, tt.at, r)
				if d.Verdict != tt.verdict || d.Code != tt.code {
					t.Fatalf("%s: Decide = %s %s (%s), want %s %s", p.name, d.Verdict, d.Code, d.Reason, tt.verdict, tt.code)
				}
				if d.Reason == "" {
					t.Errorf("%s: decision %s has no reason", p.name, d.Code)
				}
				if i == 0 {
					first = d
				} else if d.Reason != first.Reason || d.Agreement != first.Agreement || !bytes.Equal(d.Alternative, first.Alternative) {
					t.Errorf("%s: Decide = %+v, without a cache %+v", p.name, d, first)
				}
			}
		})
	}
}

// sharedParser parses labels once and hands every caller the same
// *label.Label, as the node's label cache does.
func sharedParser() func([]byte) (*label.Label, error) {
	var mu sync.Mutex
	seen := map[string]*label.Label{}
	return func(b []byte) (*label.Label, error) {
		mu.Lock()
		defer mu.Unlock()
		if l, ok := seen[string(b)]; ok {
			return l, nil
		}
		l, err := label.ParseLabel(b)
		if err == nil {
			seen[string(b)] = l
		}
		return l, err
	}
}

// A translation cached under one generation of the policy set is not
// used once a policy is added: the recipient's policy, missing at first,
// is found after it is loaded.
func TestCacheFollowsPolicySet(t *testing.T) {
	f := newFixture(t)
	_, us := loadPolicy(t, "usa.xml")
	ps, err := label.NewPolicySet(us)
	if err != nil {
		t.Fatal(err)
	}
	r := f.rules
	r.Policies, r.Cache = ps, &Cache{}
	m := msg("exercise", "USA", message.Flash, usLabel("CONFIDENTIAL", relTo("USA", "PAK")), "text/plain", "x")
	if d := Decide(m, "PAK", t2010, r); d.Code != CodeUnmapped {
		t.Fatalf("without PAK's policy: Decide = %s %s (%s), want %s", d.Verdict, d.Code, d.Reason, CodeUnmapped)
	}
	_, pk := loadPolicy(t, "pak.xml")
	if err := ps.Add(pk); err != nil {
		t.Fatal(err)
	}
	if d := Decide(m, "PAK", t2010, r); d.Verdict != Release {
		t.Fatalf("after adding PAK's policy: Decide = %s %s (%s), want release", d.Verdict, d.Code, d.Reason)
	}
}

func TestReleaseCarriesTranslatedLabel(t *testing.T) {
	f := newFixture(t)
	d := Decide(msg("exercise", "USA", message.Flash, usLabel("CONFIDENTIAL", relTo("USA", "PAK")), "text/plain", "x"), "PAK", t2010, f.rules)
	if d.Verdict != Release || d.Agreement != "cis v1" {
		t.Fatalf("Decide = %+v", d)
	}
	alt, err := label.ParseLabel(d.Alternative)
	if err != nil {
		t.Fatalf("alternative label: %v", err)
	}
	if alt.PolicyID() != pkOID {
		t.Errorf("alternative is under %s, want PAK's %s", alt.PolicyID(), pkOID)
	}
	mk, err := f.rules.Policies.Marking(alt, "en")
	if err != nil || mk != "CONFIDENTIAL // REL TO PAK, USA" {
		t.Errorf("alternative marking %q (%v)", mk, err)
	}
	if !bytes.Contains(d.Alternative, []byte("alternativeConfidentialityLabel")) {
		t.Errorf("alternative is not an alternativeConfidentialityLabel: %s", d.Alternative)
	}
}

// The guard runs at the receiving end too: PAK checks a USA message
// addressed to itself with its own rules.
func TestReceiverRecheck(t *testing.T) {
	f := newFixture(t)
	m := msg("exercise", "USA", message.Flash, usLabel("CONFIDENTIAL", relTo("USA", "PAK")), "text/plain", "x")
	if d := Decide(m, "PAK", t2010, f.rules); d.Verdict != Release {
		t.Fatalf("receiver refuses a good message: %+v", d)
	}
	if d := Decide(m, "PAK", t2021, f.rules); d.Code != CodeNoAgreement {
		t.Fatalf("receiver accepts after expiry: %+v", d)
	}
}

func TestFailClosedWithoutRules(t *testing.T) {
	m := msg("exercise", "USA", message.Flash, usLabel("CONFIDENTIAL", relTo("USA", "PAK")), "text/plain", "x")
	if d := Decide(m, "PAK", t2010, Rules{}); d.Verdict != Deny || d.Code != CodeNoAgreement {
		t.Fatalf("Decide with no rules = %+v, want deny", d)
	}
}

func FuzzDecide(f *testing.F) {
	fx := newFixture(f)
	f.Add(usLabel("CONFIDENTIAL", relTo("USA", "PAK")), []byte("hello"), "text/plain")
	f.Add([]byte("<x/>"), []byte(`{"a":1}`), "application/json")
	f.Add(usLabel("SECRET", noforn), []byte("<e/>"), "application/cot+xml")
	f.Add(usLabel("CONFIDENTIAL", relTo("USA", "PAK")), []byte("Night  JAR ＫＥＳＴＲＥＬ"), "text/plain")
	cache := NewCache(sharedParser())
	f.Fuzz(func(t *testing.T, label, body []byte, ct string) {
		m := msg("exercise", "USA", message.Flash, label, ct, string(body))
		d := Decide(m, "PAK", t2010, fx.rules)
		if d.Reason == "" || d.Code == "" {
			t.Fatalf("decision without code or reason: %+v", d)
		}
		if d.Verdict == Release && len(body) > 64 {
			t.Fatalf("released a body over the channel's size limit")
		}
		cached := fx.rules
		cached.Cache = cache
		if c := Decide(m, "PAK", t2010, cached); c.Verdict != d.Verdict || c.Code != d.Code || c.Reason != d.Reason || !bytes.Equal(c.Alternative, d.Alternative) {
			t.Fatalf("with a cache: %+v, without: %+v", c, d)
		}
	})
}

func BenchmarkDecide(b *testing.B) {
	f := newFixture(b)
	m := msg("exercise", "USA", message.Flash, usLabel("CONFIDENTIAL", relTo("USA", "PAK")), "text/plain", "hello")
	b.ReportAllocs()
	for b.Loop() {
		if d := Decide(m, "PAK", t2010, f.rules); d.Verdict != Release {
			b.Fatal(d.Reason)
		}
	}
}

// Release decisions are remembered per party and per group list: one
// label, one cache, answers that differ by recipient and by group.
func TestCacheKeepsReleasePerPartyAndGroups(t *testing.T) {
	f := newFixture(t)
	ps := f.rules.Policies
	raw := usLabel("SECRET", relTo("USA", "PAK"))
	l, err := label.ParseLabel(raw)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cache{}
	gen := ps.Generation()
	for range 2 { // cold, then warm
		for _, tt := range []struct {
			party  string
			groups []string
			grant  bool
		}{
			{"PAK", nil, true},
			{"IND", nil, false},
			{"XAA", nil, false},
			{"XAA", []string{"PAK"}, true},
			{"XAA", []string{"IND"}, false},
		} {
			if got := (labelRef{c, c.derivedFrom(raw), ps, gen, l, raw, ""}).releasableTo(tt.party, tt.groups); got.Grant != tt.grant {
				t.Errorf("releasable to %s in %q: %v, want %v", tt.party, tt.groups, got.Grant, tt.grant)
			}
		}
	}

	r := f.rules
	r.Cache = c
	m := msg("sitrep", "USA", message.Flash, raw, "text/plain", "x")
	for range 2 {
		if d := Decide(m, "PAK", t2010, r); d.Verdict != Release {
			t.Errorf("to PAK: %s %s (%s), want release", d.Verdict, d.Code, d.Reason)
		}
		if d := Decide(m, "IND", t2010, r); d.Code != CodeNotReleasable {
			t.Errorf("to IND: %s %s (%s), want %s", d.Verdict, d.Code, d.Reason, CodeNotReleasable)
		}
	}
}
