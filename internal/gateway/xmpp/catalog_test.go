package xmpp

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

// TestCatalogContexts checks the catalog per context: the room's ceiling,
// a partner's peer clearance, the user's clearance, and the old namespace.
func TestCatalogContexts(t *testing.T) {
	pki := newTestPKI(t)
	n := startNodeWith(t, pki, []Partner{{Domain: "b.test", Addr: "127.0.0.1:1", Roots: x509.NewCertPool(),
		Channel: "xcc-xbb-chat", Clearance: []byte("UNCLASSIFIED")}})
	alice := n.login(t, "alice")
	cases := []struct {
		ns, to string
		want   []string
	}{
		{"urn:xmpp:sec-label:catalog:2", "bob@c.test", []string{"UNCLASSIFIED", "RESTRICTED", "SECRET"}},
		{"urn:xmpp:sec-label:catalog:2", "ops@conference.c.test", []string{"UNCLASSIFIED", "RESTRICTED"}},
		{"urn:xmpp:sec-label:catalog:2", "carol@b.test", []string{"UNCLASSIFIED"}},
		{"urn:xmpp:sec-label:catalog:0", "ops@conference.c.test", []string{"UNCLASSIFIED", "RESTRICTED"}},
	}
	for _, c := range cases {
		alice.send("<iq type='get' id='c' to='c.test'><catalog xmlns='" + c.ns + "' to='" + c.to + "'/></iq>")
		e, raw, err := alice.next("iq", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		cat := e.Child(c.ns, "catalog")
		if cat == nil || cat.AttrValue("restrict") != "true" {
			t.Fatalf("%s %s: %s", c.ns, c.to, raw)
		}
		var got []string
		for _, sl := range strings.Split(string(raw), "<Classification>")[1:] {
			got = append(got, sl[:strings.Index(sl, "<")])
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s %s: classifications %q, want %q", c.ns, c.to, got, c.want)
		}
	}
}
