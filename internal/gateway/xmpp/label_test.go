package xmpp

import (
	"bytes"
	"strings"
	"testing"
)

const n4774 = `<originatorConfidentialityLabel xmlns='urn:nato:stanag:4774:confidentialitymetadatalabel:1:0'><ConfidentialityInformation><Classification>SECRET</Classification></ConfidentialityInformation></originatorConfidentialityLabel>`

func TestParseSecurityLabel(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // "" with ok: default label
		ok       bool
	}{
		{"4774", `<securitylabel xmlns='urn:xmpp:sec-label:0'><displaymarking>S</displaymarking><label>` + n4774 + `</label></securitylabel>`, n4774, true},
		{"no marking", `<securitylabel xmlns='urn:xmpp:sec-label:0'><label>` + n4774 + `</label></securitylabel>`, n4774, true},
		{"ess", `<securitylabel xmlns='urn:xmpp:sec-label:0'><label><esssecuritylabel xmlns='urn:xmpp:sec-label:ess:0'>MQYCAQQGASk=</esssecuritylabel></label></securitylabel>`,
			`<esssecuritylabel xmlns='urn:xmpp:sec-label:ess:0'>MQYCAQQGASk=</esssecuritylabel>`, true},
		{"empty label is default", `<securitylabel xmlns='urn:xmpp:sec-label:0'><label/></securitylabel>`, "", true},
		{"text in label", `<securitylabel xmlns='urn:xmpp:sec-label:0'><label>SECRET</label></securitylabel>`, "", false},
		{"two children", `<securitylabel xmlns='urn:xmpp:sec-label:0'><label>` + n4774 + n4774 + `</label></securitylabel>`, "", false},
		{"no label", `<securitylabel xmlns='urn:xmpp:sec-label:0'><displaymarking>S</displaymarking></securitylabel>`, "", false},
		{"two labels", `<securitylabel xmlns='urn:xmpp:sec-label:0'><label/><label/></securitylabel>`, "", false},
		{"wrong ns", `<securitylabel xmlns='urn:other'><label/></securitylabel>`, "", false},
		{"entity", `<!DOCTYPE x [<!ENTITY e "x">]><securitylabel xmlns='urn:xmpp:sec-label:0'><label>&e;</label></securitylabel>`, "", false},
		{"undeclared entity", `<securitylabel xmlns='urn:xmpp:sec-label:0'><label>&e;</label></securitylabel>`, "", false},
		{"huge", `<securitylabel xmlns='urn:xmpp:sec-label:0'><label><x>` + strings.Repeat("a", 300<<10) + `</x></label></securitylabel>`, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseSecurityLabel([]byte(c.in))
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if c.ok && string(got) != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func FuzzParseSecurityLabel(f *testing.F) {
	f.Add([]byte(`<securitylabel xmlns='urn:xmpp:sec-label:0'><displaymarking>S</displaymarking><label>` + n4774 + `</label></securitylabel>`))
	f.Add([]byte(`<securitylabel xmlns='urn:xmpp:sec-label:0'><label/><equivalentlabel><a xmlns='b'/></equivalentlabel></securitylabel>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY e "x">]><securitylabel xmlns='urn:xmpp:sec-label:0'><label>&e;</label></securitylabel>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := ParseSecurityLabel(in)
		if err != nil {
			return
		}
		if len(got) > 0 && (!bytes.HasPrefix(got, []byte("<")) || !bytes.HasSuffix(got, []byte(">"))) {
			t.Fatalf("label bytes %q are not an element", got)
		}
		if !bytes.Contains(in, got) {
			t.Fatalf("label bytes %q are not a slice of the input", got)
		}
	})
}

func TestSCRAMAndPlain(t *testing.T) {
	u, err := NewUser("Alice", "pencil", nil)
	if err != nil {
		t.Fatal(err)
	}
	users := &UserMap{}
	users.Add(u)
	if _, err := plainAuth(users, []byte("\x00alice\x00pencil")); err != nil {
		t.Fatalf("plain: %v", err)
	}
	if _, err := plainAuth(users, []byte("\x00alice\x00wrong")); err == nil {
		t.Fatal("plain accepted a wrong password")
	}
	if _, err := plainAuth(users, []byte("mallory@c.test\x00alice\x00pencil")); err == nil {
		t.Fatal("plain accepted a foreign authzid")
	}
	for _, pw := range []string{"pencil", "wrong"} {
		sc := &scram{users: users}
		cf := "n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL"
		sf, err := sc.first([]byte(cf))
		if err != nil {
			t.Fatal(err)
		}
		final := scramClientFinal(t, pw, cf[3:], string(sf))
		v, _, err := sc.final([]byte(final))
		if (err == nil) != (pw == "pencil") {
			t.Fatalf("password %q: err = %v", pw, err)
		}
		if err == nil && !strings.HasPrefix(string(v), "v=") {
			t.Fatalf("server final %q", v)
		}
	}
}
