package fedtest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"liaison/internal/clock"
	"liaison/internal/federation/linksim"
	"liaison/internal/message"
)

var t0 = time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)

// cluster starts parties ids in-process on one simulated clock, exchanges
// their cards, and has the first dial the others (through a link
// simulator per partner when proxied).
type cluster struct {
	clock   *clock.Sim
	parties map[string]*party
	proxies map[string]*linksim.Proxy
}

func newCluster(t *testing.T, proxy linksim.Config, ids ...string) *cluster {
	t.Helper()
	c := &cluster{clock: clock.NewSim(t0), parties: map[string]*party{}, proxies: map[string]*linksim.Proxy{}}
	dir := t.TempDir()
	var ps []*party
	for _, id := range ids {
		p := makeHome(t, dir, id, "", "", nil)
		p.open(t, c.clock, true)
		c.parties[id] = p
		ps = append(ps, p)
	}
	exchangeCards(t, ps...)
	for _, p := range ps[1:] {
		ep := p.n.FederationAddr().String()
		pr, err := linksim.New(ep, proxy)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pr.Close() })
		c.proxies[p.id] = pr
		if err := ps[0].n.AddPeer(p.id, pr.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *cluster) p(id string) *party { return c.parties[id] }

func (c *cluster) all(ids ...string) []*party {
	var ps []*party
	for _, id := range ids {
		ps = append(ps, c.parties[id])
	}
	return ps
}

func ids(ms []*message.Message) []message.ID {
	out := make([]message.ID, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestTwoNodes(t *testing.T) {
	c := newCluster(t, linksim.Config{}, "USA", "PAK")
	usa, pak := c.p("USA"), c.p("PAK")
	deal{id: "us-pak", effective: t0.Add(-time.Hour), expiry: t0.AddDate(1, 0, 0), parties: c.all("USA", "PAK")}.install(t)
	eventually(t, 10*time.Second, "USA–PAK link up", func() bool { return usa.linkState("PAK") == "up" })

	var sent []message.ID
	for i := range 20 {
		from, to, rel := usa, pak, []string{"USA", "PAK"}
		if i%2 == 1 {
			from, to = pak, usa
			rel = []string{"PAK", "USA"}
		}
		m := from.msg(c.clock.Now(), message.Routine, fmt.Sprintf("msg %d", i), rel...)
		rc := from.submit(t, m)
		if st := rc.Recipients[0].State; st != "queued" && st != "released" {
			t.Fatalf("message %d to %s: %+v", i, to.id, rc.Recipients)
		}
		sent = append(sent, m.ID)
	}
	eventually(t, 10*time.Second, "20 messages delivered both ways", func() bool {
		return len(pak.received(t, "USA")) == 10 && len(usa.received(t, "PAK")) == 10
	})
	got := append(ids(pak.received(t, "USA")), ids(usa.received(t, "PAK"))...)
	for _, id := range sent {
		if !slices.Contains(got, id) {
			t.Errorf("message %s not delivered", id)
		}
	}
	eventually(t, 10*time.Second, "delivered/received audited", func() bool {
		return usa.auditHas("delivered", "") && pak.auditHas("received", "")
	})
}

// TestPerRecipientRelease: on a three-party channel a label releasable
// to PAK only reaches PAK; IND is denied and never sees it.
func TestPerRecipientRelease(t *testing.T) {
	c := newCluster(t, linksim.Config{}, "USA", "PAK", "IND")
	usa, pak, ind := c.p("USA"), c.p("PAK"), c.p("IND")
	deal{id: "tri", effective: t0.Add(-time.Hour), expiry: t0.AddDate(1, 0, 0), parties: c.all("USA", "PAK", "IND")}.install(t)
	eventually(t, 10*time.Second, "links up", func() bool { return usa.linkState("PAK") == "up" && usa.linkState("IND") == "up" })

	only := usa.msg(c.clock.Now(), message.Priority, "for PAK only", "USA", "PAK")
	rc := usa.submit(t, only)
	states := map[string]string{}
	for _, r := range rc.Recipients {
		states[r.Party] = r.State
	}
	if states["IND"] != "denied" || states["PAK"] == "denied" || states["PAK"] == "" {
		t.Fatalf("recipients: %+v", rc.Recipients)
	}
	both := usa.msg(c.clock.Now(), message.Routine, "for both", "USA", "PAK", "IND")
	usa.submit(t, both)
	eventually(t, 10*time.Second, "PAK gets both, IND the shared one", func() bool {
		return len(pak.received(t, "USA")) == 2 && len(ind.received(t, "USA")) == 1
	})
	if got := ids(ind.received(t, "USA")); !slices.Equal(got, []message.ID{both.ID}) {
		t.Fatalf("IND received %v, want only %s", got, both.ID)
	}
	eventually(t, 10*time.Second, "the denial to IND audited", func() bool { return usa.auditHas("denied", "") })
}

// TestExpiryAndRenewal: traffic stops when the agreement expires; sent
// messages are held; a renewal resumes the link and the held messages
// arrive.
func TestExpiryAndRenewal(t *testing.T) {
	c := newCluster(t, linksim.Config{}, "USA", "PAK")
	usa, pak := c.p("USA"), c.p("PAK")
	expiry := t0.Add(24 * time.Hour)
	v1 := deal{id: "us-pak", effective: t0.Add(-time.Hour), expiry: expiry, parties: c.all("USA", "PAK")}
	v1digest := v1.install(t)
	eventually(t, 10*time.Second, "link up", func() bool { return usa.linkState("PAK") == "up" })
	for i := range 5 {
		usa.submit(t, usa.msg(c.clock.Now(), message.Routine, fmt.Sprint("before ", i), "USA", "PAK"))
	}
	eventually(t, 10*time.Second, "5 delivered", func() bool { return len(pak.received(t, "USA")) == 5 })

	// Mid-stream: queue more, then the term ends before they are all out.
	for i := range 5 {
		usa.submit(t, usa.msg(c.clock.Now(), message.Routine, fmt.Sprint("during ", i), "USA", "PAK"))
	}
	c.clock.Set(expiry.Add(time.Minute))
	eventually(t, 10*time.Second, "link held after expiry", func() bool { return usa.linkState("PAK") == "held" })
	mid := len(pak.received(t, "USA"))
	var held []message.ID
	for i := range 3 {
		m := usa.msg(c.clock.Now(), message.Flash, fmt.Sprint("after ", i), "USA", "PAK")
		if _, err := usa.n.Submit(t.Context(), m); err == nil {
			held = append(held, m.ID)
		}
	}
	if len(held) == 0 {
		t.Fatal("no message could be queued after expiry")
	}
	if n := len(pak.received(t, "USA")); n != mid {
		t.Fatalf("PAK received %d messages after expiry (had %d)", n, mid)
	}

	renewal := deal{id: "us-pak", version: 2, supersedes: v1digest, effective: c.clock.Now().Add(-time.Minute), expiry: c.clock.Now().AddDate(1, 0, 0), parties: c.all("USA", "PAK")}
	renewal.install(t)
	eventually(t, 10*time.Second, "link up after renewal", func() bool { return usa.linkState("PAK") == "up" })
	eventually(t, 10*time.Second, "every message delivered after renewal", func() bool { return len(pak.received(t, "USA")) == 10+len(held) })
	got := ids(pak.received(t, "USA"))
	for _, id := range held {
		if !slices.Contains(got, id) {
			t.Errorf("held message %s not delivered", id)
		}
	}
}

// TestPartitionHealPrecedence: with the link partitioned, messages of
// every precedence queue; after the heal all arrive, higher first.
func TestPartitionHealPrecedence(t *testing.T) {
	c := newCluster(t, linksim.Config{}, "USA", "PAK")
	usa, pak := c.p("USA"), c.p("PAK")
	deal{id: "us-pak", effective: t0.Add(-time.Hour), expiry: t0.AddDate(1, 0, 0), parties: c.all("USA", "PAK")}.install(t)
	eventually(t, 10*time.Second, "link up", func() bool { return usa.linkState("PAK") == "up" })
	pr := c.proxies["PAK"]
	pr.Partition()
	eventually(t, 10*time.Second, "link down", func() bool { return usa.linkState("PAK") != "up" })

	precs := []message.Precedence{message.Routine, message.Priority, message.Immediate, message.Flash}
	want := map[message.ID]message.Precedence{}
	for i := range 40 {
		p := precs[i%len(precs)]
		m := usa.msg(c.clock.Now(), p, fmt.Sprint("queued ", i), "USA", "PAK")
		usa.submit(t, m)
		want[m.ID] = p
	}
	if n := len(pak.received(t, "USA")); n != 0 {
		t.Fatalf("%d messages crossed a partition", n)
	}
	pr.Heal()
	eventually(t, 15*time.Second, "all 40 delivered after heal", func() bool { return len(pak.received(t, "USA")) == 40 })
	// The sender puts them on the wire most urgent first; the receiver
	// stores with several accepters at once, so neighbours may swap. Every
	// FLASH is stored before every ROUTINE, and each precedence's mean
	// arrival position comes before the next lower one's.
	got := pak.received(t, "USA")
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
