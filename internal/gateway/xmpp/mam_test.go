package xmpp

import (
	"strings"
	"testing"
	"time"
)

// TestArchiveFilteredByClearance replays the 1:1 archive: alice (SECRET)
// sees all three messages she sent, bob (RESTRICTED) only the two he is
// cleared for.
func TestArchiveFilteredByClearance(t *testing.T) {
	n := startNode(t)
	alice, bob := n.login(t, "alice"), n.login(t, "bob")
	for _, c := range []string{"UNCLASSIFIED", "SECRET", "RESTRICTED"} {
		alice.send(labelledChat("bob@c.test", c, "msg "+c))
	}
	for _, want := range []string{"msg UNCLASSIFIED", "msg RESTRICTED"} {
		e, _, err := bob.next("message", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Child("", "body").Text; got != want {
			t.Fatalf("bob got %q, want %q", got, want)
		}
	}
	query := func(c *testClient) []string {
		c.send("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='f1'/></iq>")
		var bodies []string
		for {
			e, raw, err := c.next("", 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if e.Name.Local == "iq" {
				if e.AttrValue("type") != "result" {
					t.Fatalf("mam: %s", raw)
				}
				return bodies
			}
			r := e.Child("urn:xmpp:mam:2", "result")
			if r == nil {
				continue
			}
			if r.AttrValue("queryid") != "f1" || !strings.Contains(string(raw), "<securitylabel") {
				t.Fatalf("archived message %s", raw)
			}
			fw := r.Child("urn:xmpp:forward:0", "forwarded")
			bodies = append(bodies, fw.Child("jabber:client", "message").Child("", "body").Text)
		}
	}
	if got := query(bob); strings.Join(got, ",") != "msg UNCLASSIFIED,msg RESTRICTED" {
		t.Errorf("bob's archive = %q", got)
	}
	if got := query(alice); len(got) != 3 {
		t.Errorf("alice's archive = %q", got)
	}
}
