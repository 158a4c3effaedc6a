package agreement

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSignaturesRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		// mutate gets a document approved and signed by both parties.
		mutate func(t *testing.T, d *Document) error
		want   []string
		// intact: the refused operation left the signed document valid.
		intact bool
	}{
		{
			name: "forged signature",
			mutate: func(t *testing.T, d *Document) error {
				msg, _ := d.SigningBytes()
				sig := ed25519.Sign(testKey(t, "IND"), msg) // not PAK's key
				d.Signatures[1].Signature = base64.StdEncoding.EncodeToString(sig)
				return d.VerifySignatures()
			},
			want: []string{"signature by PAK does not verify"},
		},
		{
			name: "missing signature",
			mutate: func(t *testing.T, d *Document) error {
				d.Signatures = d.Signatures[:1]
				return d.VerifySignatures()
			},
			want: []string{"signature by PAK is missing"},
		},
		{
			name: "signature over an older version",
			mutate: func(t *testing.T, d *Document) error {
				d.Channels[0].Ceiling["PAK"] = "TOP SECRET"
				return d.VerifySignatures()
			},
			want: []string{"signature by USA does not verify", "signature by PAK does not verify", "another version"},
		},
		{
			name: "signing key not in the document",
			mutate: func(t *testing.T, d *Document) error {
				return d.Sign("PAK", testKey(t, "IND"))
			},
			want:   []string{"sign as PAK", "not one of the party's listed keys"},
			intact: true,
		},
		{
			name: "signature claims an unlisted key",
			mutate: func(t *testing.T, d *Document) error {
				k := testKey(t, "IND")
				msg, _ := d.SigningBytes()
				d.Signatures[1] = Signature{Party: "PAK", Alg: AlgEd25519,
					Key:       base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey)),
					Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(k, msg))}
				return d.VerifySignatures()
			},
			want: []string{"signature by PAK", "not one of the party's listed keys"},
		},
		{
			name: "signature by a non-party",
			mutate: func(t *testing.T, d *Document) error {
				d.Signatures = append(d.Signatures, Signature{Party: "IND", Alg: AlgEd25519, Key: d.Signatures[0].Key, Signature: d.Signatures[0].Signature})
				return d.VerifySignatures()
			},
			want: []string{`"IND"`, "not a party"},
		},
		{
			name: "approval after signing",
			mutate: func(t *testing.T, d *Document) error {
				return d.Approve(Approval{Party: "PAK", Authority: "x", Method: "y", Date: date(t, "2006-01-01")})
			},
			want:   []string{"already signed"},
			intact: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := load(t, "cis-moa-v1.yaml")
			approveAndSign(t, d, "2005-10-01")
			err := tc.mutate(t, d)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			_, setErr := NewSet(d)
			if (setErr == nil) != tc.intact {
				t.Errorf("Set.Add: %v (document intact: %v)", setErr, tc.intact)
			}
			if st := d.StatusAt(date(t, "2010-01-01")); (st.Phase == InForce) != tc.intact {
				t.Errorf("status %v (document intact: %v)", st, tc.intact)
			}
		})
	}
}

func TestParseRefused(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("testdata", "cis-moa-v1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, old, new string
		want           []string
	}{
		{"dates out of order", "expiry: 2020-10-28", "expiry: 2004-10-28", []string{"term: expiry 2004-10-28 must be after effective 2005-10-28"}},
		{"unknown scope", "scope: [exercise, training, equipment]", "scope: [exercise, training, equipment, espionage]", []string{`scope[3]: unknown scope "espionage"`}},
		{"channel member not a party", "members: [USA, PAK]\n    ceiling:\n      USA: SECRET", "members: [USA, PAK, IND]\n    ceiling:\n      USA: SECRET", []string{`channels[0].members[2]: "IND" is not a party`}},
		{"channel scope not in scope", "    scope: training\n", "    scope: basing\n", []string{`channels[1].scope: "basing" is not in the agreement's scope`}},
		{"ceiling for a non-member", "      PAK: UNCLASSIFIED", "      PAK: UNCLASSIFIED\n      IND: SECRET", []string{`channels[1].ceiling.IND: "IND" is not a member`}},
		{"duplicate channel", "name: training", "name: ops-liaison", []string{`channels[1].name: duplicate channel "ops-liaison"`}},
		{"duplicate party", "- id: PAK", "- id: USA", []string{`parties[1].id: duplicate party "USA"`, `channels[0].members[1]: "PAK" is not a party`}},
		{"missing policy", "    - party: PAK\n      policy_id: 2.25.1001.2", "    - party: USA\n      policy_id: 2.25.1001.2", []string{"labels.policies: no security policy for party PAK"}},
		{"bad key encoding", "public: gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q=", "public: gTl3Dqh9F19Wo1Rmw0x", []string{"parties[1].keys[0]: public key", "not standard base64"}},
		{"short key", "public: gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q=", "public: gTl3Dqh9", []string{"parties[1].keys[0]: ed25519 public key is 6 bytes"}},
		{"unknown key alg", "      - alg: ed25519\n        public: gTl3", "      - alg: rsa\n        public: gTl3", []string{`unknown key algorithm "rsa"`}},
		{"bad party code", "- id: PAK", "- id: pak", []string{`parties[1].id: "pak" must be an ISO 3166`}},
		{"bad fingerprint", "sha256:2222222222222222222222222222222222222222222222222222222222222222", "sha256:22", []string{"parties[1].ca_fingerprint"}},
		{"unknown field", "title:", "titel: x\ntitle:", []string{"field titel not found"}},
		{"unknown term field", "notice: 180d", "notice: 180d\n  renewal: auto", []string{"field renewal not found in term"}},
		{"bad notice period", "notice: 180d", "notice: six months", []string{"term.notice"}},
		{"bad date", "effective: 2005-10-28", "effective: 28/10/2005", []string{"term.effective", "YYYY-MM-DD"}},
		{"bad precedence", "precedences: [ROUTINE]", "precedences: [URGENT]", []string{`unknown precedence "URGENT"`}},
		{"DTD in label", "<originatorConfidentialityLabel xmlns=\"urn:nato:stanag:4774:confidentialitymetadatalabel:1:0\"><ConfidentialityInformation><PolicyIdentifier URI=\"urn:oid:2.25.1001\">USA-PAK</PolicyIdentifier><Classification>UNCLASSIFIED", "<!DOCTYPE x [<!ENTITY a \"b\">]><originatorConfidentialityLabel><ConfidentialityInformation><PolicyIdentifier>USA-PAK</PolicyIdentifier><Classification>UNCLASSIFIED", []string{"channels[1].default_label", "DTD"}},
		{"equivalence to unknown policy", "to: 2.25.1001.2", "to: 2.25.9", []string{`labels.equivalences[0].to: "2.25.9" is not a listed policy`}},
		{"two documents", "version: 1", "version: 1\n---\nid: x\n---", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := string(orig)
			if !strings.Contains(src, tc.old) {
				t.Fatalf("fixture lacks %q", tc.old)
			}
			_, err := Parse([]byte(strings.Replace(src, tc.old, tc.new, 1)))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
	if _, err := Parse(make([]byte, MaxSize+1)); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized input: %v", err)
	}
	if _, err := Parse(nil); err == nil {
		t.Error("empty input accepted")
	}
}

func TestSetRefused(t *testing.T) {
	v1 := load(t, "cis-moa-v1.yaml")
	approveAndSign(t, v1, "2005-10-01")
	set, err := NewSet(v1)
	if err != nil {
		t.Fatal(err)
	}

	wrong := renew(t, v1, "2023-08-20", "2038-08-20")
	wrong.Supersedes = "sha256:" + strings.Repeat("ab", 32)
	approveAndSign(t, wrong, "2023-08-01")
	if err := set.Add(wrong); err == nil || !strings.Contains(err.Error(), "matches no installed earlier version") {
		t.Errorf("renewal with a wrong supersedes digest: %v", err)
	}

	other := load(t, "cis-moa-v1.yaml")
	other.Title = "A different text under the same id and version"
	approveAndSign(t, other, "2005-10-01")
	if err := set.Add(other); err == nil || !strings.Contains(err.Error(), "different document with the same id and version") {
		t.Errorf("conflicting v1: %v", err)
	}

	unsigned := load(t, "trilateral.yaml")
	if err := set.Add(unsigned); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("unsigned document: %v", err)
	}

	// A clone is independent.
	c := set.Clone()
	tri := load(t, "trilateral.yaml")
	approveAndSign(t, tri, "2023-12-01")
	if err := c.Add(tri); err != nil {
		t.Fatal(err)
	}
	if len(c.All()) != 2 || len(set.All()) != 1 {
		t.Errorf("clone shares state: %d and %d documents", len(c.All()), len(set.All()))
	}
	// Re-adding the same version is idempotent.
	if err := set.Add(v1); err != nil || len(set.All()) != 1 {
		t.Errorf("re-adding v1: %v, %d documents", err, len(set.All()))
	}
	var zero Set
	if got := zero.InForce(date(t, "2010-01-01")); len(got) != 0 {
		t.Errorf("zero Set InForce = %v", got)
	}
	if p := zero.May("USA", "PAK", "ops-liaison", date(t, "2010-01-01")); p.Allowed {
		t.Error("zero Set allowed traffic")
	}
}
