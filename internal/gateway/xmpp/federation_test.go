package xmpp

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

// TestLiaisonToLiaisonS2S federates two gateways (c.test and b.test) over
// S2S with SASL EXTERNAL, and checks that a server whose certificate does
// not chain to the pinned partner CA is refused.
func TestLiaisonToLiaisonS2S(t *testing.T) {
	pki := newTestPKI(t)
	lnC, _ := net.Listen("tcp", "127.0.0.1:0")
	lnB, _ := net.Listen("tcp", "127.0.0.1:0")
	nC := startNodeDomain(t, pki, "c.test", "XCC", []Partner{{Domain: "b.test", Party: "XBB", Addr: lnB.Addr().String(),
		Roots: pki.pool, Channel: "xcc-xbb-chat", Clearance: []byte("RESTRICTED")}})
	nB := startNodeDomain(t, pki, "b.test", "XBB", []Partner{{Domain: "c.test", Party: "XCC", Addr: lnC.Addr().String(),
		Roots: pki.pool, Channel: "xcc-xbb-chat", Clearance: []byte("RESTRICTED")}})
	go nC.srv.ServeS2S(lnC)
	go nB.srv.ServeS2S(lnB)
	alice, err := dialClient(clientOpts{addr: nC.addr, domain: "c.test", user: "alice", password: "alicepw",
		tls: &tls.Config{ServerName: "c.test", RootCAs: pki.pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.close()
	bobB, err := dialClient(clientOpts{addr: nB.addr, domain: "b.test", user: "bob", password: "bobpw",
		tls: &tls.Config{ServerName: "b.test", RootCAs: pki.pool}})
	if err != nil {
		t.Fatal(err)
	}
	defer bobB.close()
	alice.send(labelledChat("bob@b.test", "RESTRICTED", "across"))
	e, raw, err := bobB.next("message", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if e.AttrValue("from") != "alice@c.test" || !strings.Contains(string(raw), "<Classification>RESTRICTED</Classification>") {
		t.Fatalf("bob@b.test got %s", raw)
	}
	bobB.send(labelledChat("alice@c.test", "UNCLASSIFIED", "back"))
	if e, raw, err = alice.next("message", 10*time.Second); err != nil || e.Child("", "body").Text != "back" {
		t.Fatalf("alice got %s, %v", raw, err)
	}

	// A rogue b.test with a certificate from another CA is refused by c.test.
	rogue := newTestPKI(t)
	nR := startNodeDomain(t, rogue, "b.test", "XBB", []Partner{{Domain: "c.test", Addr: lnC.Addr().String(),
		Roots: pki.pool, Channel: "xcc-xbb-chat", Clearance: []byte("RESTRICTED")}})
	if err := nR.srv.sendPartner(nR.srv.partnerFor("c.test"), "b.test", []byte("<message/>")); err == nil {
		t.Fatal("a server with an unpinned certificate authenticated")
	}
}
