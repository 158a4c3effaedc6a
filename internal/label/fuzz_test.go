package label

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
)

func seedFiles(f *testing.F, pattern string) {
	paths, _ := filepath.Glob(filepath.Join("testdata", pattern))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	seedFiles(f, "x*-national.xml")
	f.Add([]byte(`<SPIF><securityPolicyId name="A" id="1.2"/><securityClassifications><securityClassification name="U" lacv="1" hierarchy="1"/></securityClassifications></SPIF>`))
	f.Add([]byte(`<!DOCTYPE a><SPIF/>`))
	set, _ := NewPolicySet()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			return
		}
		if p.ID() == "" || p.Name() == "" {
			t.Fatal("policy without id or name")
		}
		s, _ := NewPolicySet(p)
		l := &Label{PolicyOID: p.ID(), Class: p.classes[0].name}
		_, _ = s.Marking(l, "fr")
		_ = s.Validate(l)
		_ = set
	})
}

func Fuzz4774(f *testing.F) {
	seedFiles(f, "xaa-*.xml")
	f.Add([]byte(`<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"><ConfidentialityInformation><PolicyIdentifier>XAA-NATIONAL</PolicyIdentifier><Classification>secret</Classification><Category TagName="Releasable To" Type="permissive"><GenericValue>XBB</GenericValue></Category></ConfidentialityInformation></originatorConfidentialityLabel>`))
	f.Add([]byte(`<label xmlns='http://surevine.com/xmlns/spiffy'><policy id='2.25.118446744073709551601'/><classification lacv='4'/><tag type='enumeratedPermissive' id='2.25.118446744073709551601.1' lacv='2'/></label>`))
	f.Add([]byte("MCcGCyoDBAUGBwgJCgsMAwICeDETMBGAAQGhDDAKBgMqAwQxAwIBAg=="))
	set := fixtureSet(f)
	clr, _ := set.PartyClearance(xaaID, "XBB", "")
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLabel(data)
		if err == nil {
			_ = set.Validate(l)
			_, _ = set.Marking(l, "")
			d := set.ACDF(l, clr)
			if d.Grant && set.Validate(l) != nil {
				t.Fatal("invalid label granted")
			}
			_, _ = set.Translate(l, xbbID, Encrypt)
			if r, err := set.Resolve(l); err == nil {
				r.Created = l.Created
				_, _ = r.MarshalXML4774(Originator)
			}
		}
		if c, err := ParseClearance(data); err == nil {
			_, _ = set.ClearanceMarking(c, "")
		}
	})
}

func FuzzESS(f *testing.F) {
	for _, s := range []string{"MQYCAQIGASk=", "MQYCAQQGASk=", "MQMGASk=", "MRUCAgD9DA9BcXVhIChvYnNvbGV0ZSk="} {
		b, _ := base64.StdEncoding.DecodeString(s)
		f.Add(b)
	}
	set := fixtureSet(f)
	l := mk(f, "XAA-NATIONAL", "SECRET", relXAA, relXBB, ops, medical)
	if der, err := set.MarshalESS(l); err == nil {
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := parseESS(data)
		if err != nil {
			return
		}
		if set.Validate(l) == nil {
			der, err := set.MarshalESS(l)
			if err != nil {
				t.Fatalf("valid label does not marshal: %v", err)
			}
			l2, err := parseESS(der)
			if err != nil || set.Validate(l2) != nil {
				t.Fatalf("re-encoded label does not parse: %v", err)
			}
		}
	})
}
