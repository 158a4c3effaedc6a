package xmpp

import (
	"crypto/tls"
	"testing"
	"time"
)

// TestStreamResumption drops alice's connection with one message
// unacknowledged and one more arriving while she is away; resuming on a
// new connection retransmits both.
func TestStreamResumption(t *testing.T) {
	n := startNode(t)
	tc := &tls.Config{ServerName: "c.test", RootCAs: n.pki.pool}
	o := clientOpts{addr: n.addr, domain: "c.test", user: "alice", password: "alicepw", tls: tc}
	alice, err := dialClient(o)
	if err != nil {
		t.Fatal(err)
	}
	alice.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	en, _, err := alice.next("enabled", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	id := en.AttrValue("id")
	if id == "" || en.AttrValue("resume") != "true" {
		t.Fatalf("enabled = %+v", en)
	}
	bob := n.login(t, "bob")
	bodies := func(c *testClient, k int) []string {
		var out []string
		for len(out) < k {
			e, _, err := c.next("message", 5*time.Second)
			if err != nil {
				t.Fatalf("after %v: %v", out, err)
			}
			out = append(out, e.Child("", "body").Text)
		}
		return out
	}
	bob.send(labelledChat("alice@c.test", "UNCLASSIFIED", "one"))
	bob.send(labelledChat("alice@c.test", "UNCLASSIFIED", "two"))
	if got := bodies(alice, 2); got[0] != "one" || got[1] != "two" {
		t.Fatalf("alice got %q", got)
	}
	// Ack h: ask and check the server's count of our stanzas (presence).
	alice.send("<r xmlns='urn:xmpp:sm:3'/>")
	if _, _, err := alice.next("a", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	alice.conn.Close() // link lost: "one" acknowledged below, "two" not
	bob.send(labelledChat("alice@c.test", "UNCLASSIFIED", "three"))
	// Wait until "three" is queued for the detached session.
	deadline := time.Now().Add(5 * time.Second)
	for n.core.count("xmpp-direct") < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling the fake core, with a deadline
	}
	again, err := dialResume(o, id, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer again.close()
	if got := bodies(again, 2); got[0] != "two" || got[1] != "three" {
		t.Fatalf("after resume alice got %q, want two, three", got)
	}
	// A second resume of the same id fails.
	if _, err := dialResume(o, id, 0); err == nil {
		t.Fatal("resumed twice")
	}
}
