package agreement

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testKey derives a party's test key from a fixed seed; the fixtures list
// the matching public keys. No private key is stored in the repository.
func testKey(t testing.TB, party string) ed25519.PrivateKey {
	t.Helper()
	seed := map[string]byte{"USA": 1, "PAK": 2, "IND": 3, "XXX": 9}[party]
	if seed == 0 {
		t.Fatalf("no test key for %q", party)
	}
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func date(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := ParseTime(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func load(t testing.TB, name string) *Document {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// approveAndSign records an approval and a signature for every party.
func approveAndSign(t testing.TB, d *Document, on string) {
	t.Helper()
	for _, p := range d.Parties {
		if err := d.Approve(Approval{Party: p.ID, Authority: p.SigningAuthority, Method: "minister's approval", Date: date(t, on), Reference: "REF-" + p.ID}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range d.Parties {
		if err := d.Sign(p.ID, testKey(t, p.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.VerifySignatures(); err != nil {
		t.Fatal(err)
	}
}

// renew returns the next version of d as the CLI's renew does.
func renew(t testing.TB, d *Document, effective, expiry string) *Document {
	t.Helper()
	n, err := d.Renew()
	if err != nil {
		t.Fatal(err)
	}
	n.Term.Effective, n.Term.Expiry = date(t, effective), date(t, expiry)
	return n
}

func TestParseFixtures(t *testing.T) {
	for _, name := range []string{"cis-moa-v1.yaml", "trilateral.yaml"} {
		t.Run(name, func(t *testing.T) {
			d := load(t, name)
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
				t.Fatalf("re-reading marshalled YAML: %v\n%s", err, out)
			}
			dg2, _ := again.Digest()
			if dg != dg2 {
				t.Errorf("digest changed across Marshal/Parse: %s then %s", dg, dg2)
			}
			back, err := ParseDigest(dg.String())
			if err != nil || back != dg {
				t.Errorf("ParseDigest(%s) = %v, %v", dg, back, err)
			}
		})
	}
}

func TestLifecycleCISMOA(t *testing.T) {
	v1 := load(t, "cis-moa-v1.yaml")
	check := func(d *Document, at string, want Phase) {
		t.Helper()
		if got := d.StatusAt(date(t, at)); got.Phase != want {
			t.Errorf("%s at %s: %v, want %v", d.Key(), at, got, want)
		}
	}
	check(v1, "2005-10-01", Draft)
	if err := v1.Approve(Approval{Party: "USA", Authority: "Secretary of Defense", Method: "departmental approval", Date: date(t, "2005-10-20")}); err != nil {
		t.Fatal(err)
	}
	check(v1, "2005-10-21", Draft)
	if err := v1.Approve(Approval{Party: "PAK", Authority: "Ministry of Defence", Method: "ministerial approval", Date: date(t, "2005-10-22")}); err != nil {
		t.Fatal(err)
	}
	check(v1, "2005-10-23", Approved)
	if err := v1.Sign("USA", testKey(t, "USA")); err != nil {
		t.Fatal(err)
	}
	if st := v1.StatusAt(date(t, "2005-10-27")); st.Phase != Approved || !strings.Contains(st.Reason, "PAK") {
		t.Errorf("after one signature: %v, want approved awaiting PAK", st)
	}
	if err := v1.Sign("PAK", testKey(t, "PAK")); err != nil {
		t.Fatal(err)
	}
	if err := v1.VerifySignatures(); err != nil {
		t.Fatal(err)
	}
	check(v1, "2005-10-27", NotYetEffective)
	check(v1, "2005-10-28", InForce)
	check(v1, "2010-06-01", InForce)
	check(v1, "2020-10-27T23:59:59Z", InForce)
	check(v1, "2020-10-28", Expired)
	check(v1, "2021-03-01", Expired)

	dg1, _ := v1.Digest()
	v2 := renew(t, v1, "2023-08-20", "2038-08-20")
	if v2.Version != 2 || v2.Supersedes != dg1.String() || len(v2.Signatures) != 0 || len(v2.Approvals) != 0 {
		t.Fatalf("renewal: version %d supersedes %s, %d signatures, %d approvals", v2.Version, v2.Supersedes, len(v2.Signatures), len(v2.Approvals))
	}
	check(v2, "2023-08-01", Draft)
	if err := v2.Approve(Approval{Party: "PAK", Authority: "Federal Cabinet", Method: "federal cabinet, by circulation summary", Date: date(t, "2023-08-02"), Reference: "CIRC-2023-TEST"}); err != nil {
		t.Fatal(err)
	}
	if err := v2.Approve(Approval{Party: "USA", Authority: "Department of Defense", Method: "departmental approval", Date: date(t, "2023-08-10")}); err != nil {
		t.Fatal(err)
	}
	check(v2, "2023-08-11", Approved)
	for _, p := range []string{"USA", "PAK"} {
		if err := v2.Sign(p, testKey(t, p)); err != nil {
			t.Fatal(err)
		}
	}
	check(v2, "2023-08-19", NotYetEffective)
	check(v2, "2024-01-01", InForce)

	set, err := NewSet(v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at      string
		want    string // key of the governing version, "" for none
		allowed bool
	}{
		{"2005-10-01", "", false},
		{"2010-06-01", "usa-pak-cis-moa v1", true},
		{"2021-03-01", "", false},
		{"2023-08-19", "", false},
		{"2024-01-01", "usa-pak-cis-moa v2", true},
		{"2038-08-20", "", false},
	} {
		at := date(t, tc.at)
		got := set.InForce(at)
		var key string
		if len(got) == 1 {
			key = got[0].Key()
		} else if len(got) > 1 {
			t.Errorf("%s: %d versions in force", tc.at, len(got))
		}
		if key != tc.want {
			t.Errorf("InForce(%s) = %q, want %q", tc.at, key, tc.want)
		}
		p := set.May("USA", "PAK", "ops-liaison", at)
		if p.Allowed != tc.allowed {
			t.Errorf("May(USA, PAK, ops-liaison, %s) = %v (%s), want %v", tc.at, p.Allowed, p.Reason, tc.allowed)
		}
		if p.Allowed && (p.Agreement.Key() != tc.want || p.Channel.Name != "ops-liaison") {
			t.Errorf("May at %s: permit names %s channel %s", tc.at, p.Agreement.Key(), p.Channel.Name)
		}
	}
	if p := set.May("USA", "USA", "ops-liaison", date(t, "2024-01-01")); p.Allowed {
		t.Error("May allowed a party to send to itself")
	}
	if p := set.May("USA", "PAK", "no-such", date(t, "2024-01-01")); p.Allowed || !strings.Contains(p.Reason, "no-such") {
		t.Errorf("May on unknown channel: %+v", p)
	}
	if got := set.Partners("PAK", date(t, "2024-01-01")); len(got) != 1 || got[0] != "USA" {
		t.Errorf("Partners(PAK) = %v", got)
	}
	if all := set.All(); len(all) != 2 || all[0].Version != 1 || all[1].Version != 2 {
		t.Errorf("All() = %v", all)
	}
}

func TestOverlappingRenewalGoverns(t *testing.T) {
	v1 := load(t, "cis-moa-v1.yaml")
	approveAndSign(t, v1, "2005-10-01")
	v2 := renew(t, v1, "2019-01-01", "2034-01-01")
	approveAndSign(t, v2, "2018-12-01")
	set, err := NewSet(v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	for at, want := range map[string]int{"2018-06-01": 1, "2019-01-01": 2, "2020-01-01": 2} {
		got := set.InForce(date(t, at))
		if len(got) != 1 || got[0].Version != want {
			t.Errorf("InForce(%s) = %v, want only v%d", at, got, want)
		}
	}
}

func TestTrilateral(t *testing.T) {
	d := load(t, "trilateral.yaml")
	approveAndSign(t, d, "2023-12-01")
	set, err := NewSet(d)
	if err != nil {
		t.Fatal(err)
	}
	at := date(t, "2024-06-01")
	for _, tc := range []struct {
		from, to, channel string
		want              bool
	}{
		{"USA", "IND", "usa-ind", true},
		{"IND", "USA", "usa-ind", true},
		{"PAK", "IND", "usa-ind", false},
		{"PAK", "IND", "all-three", true},
		{"USA", "XXX", "all-three", false},
	} {
		if p := set.May(tc.from, tc.to, tc.channel, at); p.Allowed != tc.want {
			t.Errorf("May(%s, %s, %s) = %v (%s), want %v", tc.from, tc.to, tc.channel, p.Allowed, p.Reason, tc.want)
		}
	}
	if got := strings.Join(set.Partners("PAK", at), ","); got != "IND,USA" {
		t.Errorf("Partners(PAK) = %s", got)
	}
	if got := set.Partners("PAK", date(t, "2025-01-01")); len(got) != 0 {
		t.Errorf("Partners after expiry = %v", got)
	}
	s := d.Summary(at)
	for _, want := range []string{"trilateral-exercise v1", "in force", "IND", "verified", "usa-ind"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

func TestTemplate(t *testing.T) {
	if _, err := Parse([]byte(Template)); err == nil || !strings.Contains(err.Error(), "parties[0].keys[0]") {
		t.Fatalf("template with placeholders: %v", err)
	}
	pub := func(p string) string {
		return base64.StdEncoding.EncodeToString(testKey(t, p).Public().(ed25519.PublicKey))
	}
	s := strings.NewReplacer(
		"REPLACE-WITH-XAA-PUBLIC-KEY", pub("USA"), "REPLACE-WITH-XBB-PUBLIC-KEY", pub("PAK"),
		"REPLACE-WITH-XAA-CA-FINGERPRINT", strings.Repeat("a", 64), "REPLACE-WITH-XBB-CA-FINGERPRINT", strings.Repeat("b", 64),
	).Replace(Template)
	if _, err := Parse([]byte(s)); err != nil {
		t.Fatalf("filled-in template: %v", err)
	}
}

// A renewal effective at the old version's expiry succeeds it with no gap
// and no overlap.
func TestRenewalWithoutGap(t *testing.T) {
	v1 := load(t, "cis-moa-v1.yaml")
	approveAndSign(t, v1, "2005-10-01")
	v2 := renew(t, v1, "2020-10-28", "2035-10-28")
	approveAndSign(t, v2, "2020-09-01")
	set, err := NewSet(v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	for at, want := range map[string]int{"2020-10-27T23:59:59Z": 1, "2020-10-28": 2} {
		p := set.May("PAK", "USA", "training", date(t, at))
		if !p.Allowed || p.Agreement.Version != want {
			t.Errorf("at %s: %+v, want v%d", at, p, want)
		}
	}
}

func TestSetConcurrentReads(t *testing.T) {
	d := signedV1(t)
	set, err := NewSet(d)
	if err != nil {
		t.Fatal(err)
	}
	at := date(t, "2010-01-01")
	done := make(chan bool)
	for range 4 {
		go func() {
			ok := true
			for range 200 {
				ok = ok && set.May("USA", "PAK", "ops-liaison", at).Allowed && len(set.InForce(at)) == 1
			}
			done <- ok
		}()
	}
	tri := load(t, "trilateral.yaml")
	approveAndSign(t, tri, "2023-12-01")
	if err := set.Add(tri); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if !<-done {
			t.Error("a concurrent read saw the wrong answer")
		}
	}
}
