package fedtest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
	"time"

	"liaison/internal/federation/linksim"
	"liaison/internal/message"
)

func ids(ms []*message.Message) []message.ID {
	out := make([]message.ID, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestTwoNodes(t *testing.T) {
	c := NewCluster(t, linksim.Config{}, "USA", "PAK")
	usa, pak := c.P("USA"), c.P("PAK")
	Deal{ID: "us-pak", Effective: T0.Add(-time.Hour), Expiry: T0.AddDate(1, 0, 0), Parties: c.All("USA", "PAK")}.Install(t)
	Eventually(t, 10*time.Second, "USA–PAK link up", func() bool { return usa.LinkState("PAK") == "up" })

	var sent []message.ID
	for i := range 20 {
		from, to, rel := usa, pak, []string{"USA", "PAK"}
		if i%2 == 1 {
			from, to = pak, usa
			rel = []string{"PAK", "USA"}
		}
		m := from.Msg(c.Clock.Now(), message.Routine, fmt.Sprintf("msg %d", i), rel...)
		rc := from.Submit(t, m)
		if st := rc.Recipients[0].State; st != "queued" && st != "released" {
			t.Fatalf("message %d to %s: %+v", i, to.ID, rc.Recipients)
		}
		sent = append(sent, m.ID)
	}
	Eventually(t, 10*time.Second, "20 messages delivered both ways", func() bool {
		return len(pak.Received(t, "USA")) == 10 && len(usa.Received(t, "PAK")) == 10
	})
	got := append(ids(pak.Received(t, "USA")), ids(usa.Received(t, "PAK"))...)
	for _, id := range sent {
		if !slices.Contains(got, id) {
			t.Errorf("message %s not delivered", id)
		}
	}
	Eventually(t, 10*time.Second, "delivered/received audited", func() bool {
		return usa.AuditHas("delivered", "") && pak.AuditHas("received", "")
	})
}

// TestPerRecipientRelease: on a three-Party channel a label releasable
// to PAK only reaches PAK; IND is denied and never sees it.
func TestPerRecipientRelease(t *testing.T) {
	c := NewCluster(t, linksim.Config{}, "USA", "PAK", "IND")
	usa, pak, ind := c.P("USA"), c.P("PAK"), c.P("IND")
	Deal{ID: "tri", Effective: T0.Add(-time.Hour), Expiry: T0.AddDate(1, 0, 0), Parties: c.All("USA", "PAK", "IND")}.Install(t)
	Eventually(t, 10*time.Second, "links up", func() bool { return usa.LinkState("PAK") == "up" && usa.LinkState("IND") == "up" })

	only := usa.Msg(c.Clock.Now(), message.Priority, "for PAK only", "USA", "PAK")
	rc := usa.Submit(t, only)
	states := map[string]string{}
	for _, r := range rc.Recipients {
		states[r.Party] = r.State
	}
	if states["IND"] != "denied" || states["PAK"] == "denied" || states["PAK"] == "" {
		t.Fatalf("recipients: %+v", rc.Recipients)
	}
	both := usa.Msg(c.Clock.Now(), message.Routine, "for both", "USA", "PAK", "IND")
	usa.Submit(t, both)
	Eventually(t, 10*time.Second, "PAK gets both, IND the shared one", func() bool {
		return len(pak.Received(t, "USA")) == 2 && len(ind.Received(t, "USA")) == 1
	})
	if got := ids(ind.Received(t, "USA")); !slices.Equal(got, []message.ID{both.ID}) {
		t.Fatalf("IND received %v, want only %s", got, both.ID)
	}
	Eventually(t, 10*time.Second, "the denial to IND audited", func() bool { return usa.AuditHas("denied", "") })
}

// TestExpiryAndRenewal: the agreement expires while a stream of messages
// crosses a slow link: traffic stops, what is left and what is sent after
// is held, and a renewal resumes the link and delivers all of it.
func TestExpiryAndRenewal(t *testing.T) {
	c := NewCluster(t, linksim.Config{Rate: 4_000_000}, "USA", "PAK")
	usa, pak := c.P("USA"), c.P("PAK")
	expiry := T0.Add(24 * time.Hour)
	v1 := Deal{ID: "us-pak", Effective: T0.Add(-time.Hour), Expiry: expiry, Parties: c.All("USA", "PAK")}
	v1digest := v1.Install(t)
	Eventually(t, 10*time.Second, "link up", func() bool { return usa.LinkState("PAK") == "up" })
	const stream = 40 // of 32 KiB that do not compress: about 2.6 s on the link
	for i := range stream {
		pad := make([]byte, 24<<10)
		rand.Read(pad)
		usa.Submit(t, usa.Msg(c.Clock.Now(), message.Routine, fmt.Sprint(i, base64.StdEncoding.EncodeToString(pad)), "USA", "PAK"))
	}
	Eventually(t, 10*time.Second, "the stream under way", func() bool { return len(pak.Received(t, "USA")) >= 3 })
	c.Clock.Set(expiry.Add(time.Minute))
	Eventually(t, 10*time.Second, "link held on both sides after expiry", func() bool {
		return usa.LinkState("PAK") == "held" && pak.LinkState("USA") == "held"
	})
	mid := len(pak.Received(t, "USA"))
	if mid >= stream {
		t.Fatalf("the whole stream crossed before the expiry took effect (%d)", mid)
	}
	var held []message.ID
	for i := range 3 {
		m := usa.Msg(c.Clock.Now(), message.Flash, fmt.Sprint("after ", i), "USA", "PAK")
		if _, err := usa.N.Submit(t.Context(), m); err == nil {
			held = append(held, m.ID)
		}
	}
	if len(held) == 0 {
		t.Fatal("no message could be queued after expiry")
	}
	if n := len(pak.Received(t, "USA")); n != mid {
		t.Fatalf("PAK received %d messages after the link was held (had %d)", n, mid)
	}
	t.Logf("%d of %d crossed before the expiry", mid, stream)

	renewal := Deal{ID: "us-pak", Version: 2, Supersedes: v1digest, Effective: c.Clock.Now().Add(-time.Minute), Expiry: c.Clock.Now().AddDate(1, 0, 0), Parties: c.All("USA", "PAK")}
	renewal.Install(t)
	Eventually(t, 10*time.Second, "link up after renewal", func() bool { return usa.LinkState("PAK") == "up" })
	Eventually(t, 20*time.Second, "every message delivered after renewal", func() bool { return len(pak.Received(t, "USA")) == stream+len(held) })
	got := ids(pak.Received(t, "USA"))
	for _, id := range held {
		if !slices.Contains(got, id) {
			t.Errorf("held message %s not delivered", id)
		}
	}
}

// TestPartitionHealPrecedence: with the link partitioned, messages of
// every precedence queue; after the heal all arrive, higher first.
func TestPartitionHealPrecedence(t *testing.T) {
	c := NewCluster(t, linksim.Config{}, "USA", "PAK")
	usa, pak := c.P("USA"), c.P("PAK")
	Deal{ID: "us-pak", Effective: T0.Add(-time.Hour), Expiry: T0.AddDate(1, 0, 0), Parties: c.All("USA", "PAK")}.Install(t)
	Eventually(t, 10*time.Second, "link up", func() bool { return usa.LinkState("PAK") == "up" })
	pr := c.Proxies["PAK"]
	pr.Partition()
	Eventually(t, 10*time.Second, "link down", func() bool { return usa.LinkState("PAK") != "up" })

	precs := []message.Precedence{message.Routine, message.Priority, message.Immediate, message.Flash}
	want := map[message.ID]message.Precedence{}
	for i := range 40 {
		p := precs[i%len(precs)]
		m := usa.Msg(c.Clock.Now(), p, fmt.Sprint("queued ", i), "USA", "PAK")
		usa.Submit(t, m)
		want[m.ID] = p
	}
	if n := len(pak.Received(t, "USA")); n != 0 {
		t.Fatalf("%d messages crossed a partition", n)
	}
	pr.Heal()
	Eventually(t, 15*time.Second, "all 40 delivered after heal", func() bool { return len(pak.Received(t, "USA")) == 40 })
	// The sender puts them on the wire most urgent first; the receiver
	// stores with several accepters at once, so neighbours may swap. Every
	// FLASH is stored before every ROUTINE, and each precedence's mean
	// arrival position comes before the next lower one's.
	got := pak.Received(t, "USA")
	lastFlash, firstRoutine := -1, len(got)
	sum := map[message.Precedence]float64{}
	cnt := map[message.Precedence]float64{}
	for i, m := range got {
		if m.Precedence == message.Flash {
			lastFlash = i
		}
		if m.Precedence == message.Routine && i < firstRoutine {
			firstRoutine = i
		}
		sum[m.Precedence] += float64(i)
		cnt[m.Precedence]++
	}
	if lastFlash > firstRoutine {
		t.Fatalf("a FLASH arrived after a ROUTINE: %v", precList(got))
	}
	for i := 1; i < len(message.Precedences); i++ {
		a, b := message.Precedences[i-1], message.Precedences[i]
		if sum[a]/cnt[a] >= sum[b]/cnt[b] {
			t.Fatalf("%s did not arrive ahead of %s: %v", a, b, precList(got))
		}
	}
	for _, m := range got {
		if want[m.ID] != m.Precedence {
			t.Fatalf("unexpected message %s", m.ID)
		}
		delete(want, m.ID)
	}
}

func precList(ms []*message.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Precedence.String())
	}
	return out
}
