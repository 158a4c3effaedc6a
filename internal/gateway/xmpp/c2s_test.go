package xmpp

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

func labelledChat(to, class, body string) string {
	return "<message type='chat' to='" + to + "' id='x'><body>" + body + "</body><securitylabel xmlns='urn:xmpp:sec-label:0'><label>" +
		string(fakeLabel(class)) + "</label></securitylabel></message>"
}

// TestDirectTLSAndExternal logs in over direct TLS with SASL EXTERNAL
// (client certificate naming alice@c.test) and chats with a STARTTLS+PLAIN
// session.
func TestDirectTLSAndExternal(t *testing.T) {
	n := startNode(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go n.srv.ServeC2STLS(ln)
	aliceCert := n.pki.leaf(t, "alice@c.test", nil, nil)
	alice, err := dialClient(clientOpts{addr: ln.Addr().String(), domain: "c.test", direct: true, external: true,
		tls: &tls.Config{ServerName: "c.test", RootCAs: n.pki.pool, Certificates: []tls.Certificate{aliceCert}}})
	if err != nil {
		t.Fatalf("alice (direct TLS, EXTERNAL): %v", err)
	}
	defer alice.close()
	if !strings.HasPrefix(alice.jid, "alice@c.test/") {
		t.Fatalf("alice bound as %q", alice.jid)
	}
	bob, err := dialClient(clientOpts{addr: n.addr, domain: "c.test", user: "bob", password: "bobpw",
		tls: &tls.Config{ServerName: "c.test", RootCAs: n.pki.pool}})
	if err != nil {
		t.Fatalf("bob: %v", err)
	}
	defer bob.close()
	if err := alice.send(labelledChat("bob@c.test", "RESTRICTED", "over direct tls")); err != nil {
		t.Fatal(err)
	}
	e, raw, err := bob.next("message", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b := e.Child("", "body"); b == nil || b.Text != "over direct tls" || !strings.Contains(string(raw), "<Classification>RESTRICTED</Classification>") {
		t.Fatalf("bob got %s", raw)
	}
	// Wrong password: refused.
	if _, err := dialClient(clientOpts{addr: n.addr, domain: "c.test", user: "bob", password: "nope",
		tls: &tls.Config{ServerName: "c.test", RootCAs: n.pki.pool}}); err == nil {
		t.Fatal("wrong password accepted")
	}
	// No client certificate: EXTERNAL is not offered.
	if _, err := dialClient(clientOpts{addr: ln.Addr().String(), domain: "c.test", direct: true, external: true,
		tls: &tls.Config{ServerName: "c.test", RootCAs: n.pki.pool}}); err == nil {
		t.Fatal("EXTERNAL without a certificate accepted")
	}
}

// TestPresenceLabelRefusedAndLimits checks protocol violations: a label on
// presence is refused, and an oversized stanza closes the stream.
func TestPresenceLabelRefusedAndLimits(t *testing.T) {
	n := startNode(t)
	c, err := dialClient(clientOpts{addr: n.addr, domain: "c.test", user: "bob", password: "bobpw",
		tls: &tls.Config{ServerName: "c.test", RootCAs: n.pki.pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	c.send("<presence to='ops@conference.c.test/bob'><securitylabel xmlns='urn:xmpp:sec-label:0'><label/></securitylabel></presence>")
	e, _, err := c.next("presence", 5*time.Second)
	if err != nil || e.AttrValue("type") != "error" {
		t.Fatalf("presence with label: %v %v", e, err)
	}
	c.send(labelledChat("nobody@c.test", "UNCLASSIFIED", "hello?"))
	if e, raw, err := c.next("message", 5*time.Second); err != nil || e.AttrValue("type") != "error" ||
		!strings.Contains(string(raw), "service-unavailable") {
		t.Fatalf("message to an unknown user: %s %v", raw, err)
	}
	c.send("<message to='alice@c.test' type='chat'><body>" + strings.Repeat("x", 300<<10) + "</body></message>")
	if _, _, err := c.next("message", 5*time.Second); err == nil {
		t.Fatal("oversized stanza did not end the stream")
	}
	if got := n.core.count("xmpp-direct"); got != 0 {
		t.Fatalf("%d messages reached the core", got)
	}
}

// TestEquivalentLabel accepts a message whose primary label is under an
// unknown policy when an equivalent label is readable.
func TestEquivalentLabel(t *testing.T) {
	n := startNode(t)
	alice, bob := n.login(t, "alice"), n.login(t, "bob")
	alice.send("<message type='chat' to='bob@c.test'><body>eq</body><securitylabel xmlns='urn:xmpp:sec-label:0'>" +
		"<label><other xmlns='urn:example:policy'>TOP</other></label><equivalentlabel>" + string(fakeLabel("RESTRICTED")) +
		"</equivalentlabel></securitylabel></message>")
	e, raw, err := bob.next("message", 5*time.Second)
	if err != nil || e.Child("", "body").Text != "eq" || !strings.Contains(string(raw), "<Classification>RESTRICTED<") {
		t.Fatalf("bob got %s, %v", raw, err)
	}
}
