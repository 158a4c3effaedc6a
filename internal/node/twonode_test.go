package node_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/node/nodetest"
)

// pair starts USA and PAK nodes that pin each other's cards, with USA
// dialling PAK, and installs the test agreement on both.
func pair(t *testing.T) (usa, pak *node.Node) {
	t.Helper()
	usa, pak = pairNoLink(t)
	if err := usa.AddPeer("PAK", pak.FederationAddr().String()); err != nil {
		t.Fatal(err)
	}
	return usa, pak
}

// pairNoLink is pair without the link: USA does not dial PAK yet.
func pairNoLink(t *testing.T) (usa, pak *node.Node) {
	t.Helper()
	ctx := context.Background()
	hu, hp := nodetest.NewHome(t, "USA", nodetest.Config{}), nodetest.NewHome(t, "PAK", nodetest.Config{})
	tune := node.Options{Federation: node.FederationTuning{Heartbeat: time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Poll: 50 * time.Millisecond}}
	usa, pak = nodetest.Start(t, hu, tune), nodetest.Start(t, hp, tune)
	for _, p := range [][2]*node.Node{{usa, pak}, {pak, usa}} {
		card, err := p[0].Card()
		if err != nil {
			t.Fatal(err)
		}
		if err := p[1].ImportCard(ctx, card); err != nil {
			t.Fatal(err)
		}
	}
	doc := nodetest.Agreement(t, time.Now(), hu, hp)
	nodetest.Install(t, usa, doc)
	nodetest.Install(t, pak, doc)
	return usa, pak
}

// poll calls cond until it is true or the deadline passes.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func TestTwoNodesDeliverOnce(t *testing.T) {
	usa, pak := pair(t)
	ctx := context.Background()
	rel := nodetest.Label(t, "USA", "CONFIDENTIAL", "USA", "PAK")
	var ids []message.ID
	for _, p := range message.Precedences {
		rc, err := usa.Submit(ctx, msg("exercise", p, rel, p.String()+" across"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.ID)
	}
	noforn, err := usa.Submit(ctx, msg("exercise", message.Flash, nodetest.Label(t, "USA", "CONFIDENTIAL"), "stays home"))
	if err != nil {
		t.Fatal(err)
	}
	// Resubmitting an accepted id must not send it twice.
	again := msg("exercise", message.Routine, rel, "again")
	again.ID = ids[0]
	if rc, err := usa.Submit(ctx, again); err != nil || !rc.Duplicate {
		t.Fatalf("resubmit: %+v, %v; want a duplicate receipt", rc, err)
	}

	poll(t, 15*time.Second, "USA never saw PAK take custody of every message", func() bool { return delivered(usa, ids...) })
	es, err := pak.History(ctx, "exercise", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[message.ID]int{}
	for _, e := range es {
		seen[e.Message.ID]++
		if e.Message.ID == noforn.ID {
			t.Errorf("PAK received the NOFORN message %s", noforn.ID)
		}
		if e.Marking != "CONFIDENTIAL // REL TO PAK, USA" {
			t.Errorf("PAK marks %s %q, want its own policy's CONFIDENTIAL // REL TO PAK, USA", e.Message.ID, e.Marking)
		}
		if l := pak.LocalLabel(e.Message); l == nil || l.PolicyID() != nodetest.Policy(t, "PAK").ID() {
			t.Errorf("PAK's label for %s is not under PAK's policy", e.Message.ID)
		}
		if e.Message.Origin != "USA" {
			t.Errorf("origin %q", e.Message.Origin)
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("PAK holds %s %d times, want exactly once", id, seen[id])
		}
	}
	if len(es) != len(ids) {
		t.Errorf("PAK history has %d entries, want %d", len(es), len(ids))
	}
	if st, _ := usa.Status(ctx); len(st.Links) == 0 || st.Links[0].State != "up" {
		t.Errorf("USA links %+v, want PAK up", st.Links)
	}
	// USA's accepts committed durably; its link's leases and the acks of
	// PAK's custody, relaxed.
	durable := metricSum(t, usa, `liaison_store_commits_total{sync="durable"}`)
	relaxed := metricSum(t, usa, `liaison_store_commits_total{sync="relaxed"}`)
	writes := metricSum(t, usa, `liaison_store_commit_writes_total`)
	if durable < 1 || relaxed < 1 || writes < durable+relaxed {
		t.Errorf("USA's store: %v durable and %v relaxed commits of %v writes, want some of each, each with a write at least", durable, relaxed, writes)
	}
}

// A FLASH accepted while the link to PAK is up is stored leased and handed
// to the link at once (no lease of the link's own), and delivered once.
func TestFlashHandedToLink(t *testing.T) {
	usa, pak := pair(t)
	ctx := context.Background()
	rel := nodetest.Label(t, "USA", "CONFIDENTIAL", "USA", "PAK")
	waitLinkUp(t, usa)
	rc, err := usa.Submit(ctx, msg("exercise", message.Flash, rel, "handed"))
	if err != nil {
		t.Fatal(err)
	}
	poll(t, 15*time.Second, "the FLASH delivered", func() bool { return delivered(usa, rc.ID) })
	if got := metricSum(t, usa, `liaison_flash_handovers_total{outcome="handed",peer="PAK"}`); got != 1 {
		t.Errorf("handovers = %v, want 1", got)
	}
	// SubmitBatch hands its FLASH messages over too.
	res := usa.SubmitBatch(ctx, []*message.Message{msg("exercise", message.Routine, rel, "leased"), msg("exercise", message.Flash, rel, "handed in a batch")})
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	poll(t, 15*time.Second, "the batch delivered", func() bool { return delivered(usa, res[0].Receipt.ID, res[1].Receipt.ID) })
	if got := metricSum(t, usa, `liaison_flash_handovers_total{outcome="handed",peer="PAK"}`); got != 2 {
		t.Errorf("handovers = %v, want 2 (the ROUTINE goes by lease)", got)
	}
	es, err := pak.History(ctx, "exercise", 0, 100)
	if err != nil || len(es) != 3 {
		t.Fatalf("PAK history has %d entries (%v), want 3, each once", len(es), err)
	}
	seen := map[message.ID]bool{}
	for _, e := range es {
		if seen[e.Message.ID] {
			t.Errorf("%s twice in PAK's history", e.Message.ID)
		}
		seen[e.Message.ID] = true
	}
	if !seen[rc.ID] || !seen[res[1].Receipt.ID] {
		t.Errorf("PAK history %v lacks a FLASH", seen)
	}
}

// A FLASH stored leased for a link that is down by the time it is handed
// over is released at once: it goes with the link's own leases as soon as
// the link is up, not after the lease (10 s) runs out.
func TestFlashHandOverReleasedWhenLinkDown(t *testing.T) {
	ctx := context.Background()
	usa, pak := pairNoLink(t)
	// No link yet: the hand-over finds no session.
	m := msg("exercise", message.Flash, nodetest.Label(t, "USA", "CONFIDENTIAL", "USA", "PAK"), "released")
	if err := node.SubmitLeasedFlash(ctx, usa, m); err != nil {
		t.Fatal(err)
	}
	if got := metricSum(t, usa, `liaison_flash_handovers_total{outcome="released",peer="PAK"}`); got != 1 {
		t.Fatalf("released hand-overs = %v, want 1", got)
	}
	start := time.Now()
	if err := usa.AddPeer("PAK", pak.FederationAddr().String()); err != nil {
		t.Fatal(err)
	}
	poll(t, 8*time.Second, "the released FLASH delivered before its lease would have run out", func() bool { return delivered(usa, m.ID) })
	t.Logf("delivered %s after the link was added", time.Since(start).Round(time.Millisecond))
}

// waitLinkUp waits until n's only link is up.
func waitLinkUp(t *testing.T, n *node.Node) {
	t.Helper()
	poll(t, 15*time.Second, "link up", func() bool {
		st, _ := n.Status(context.Background())
		return len(st.Links) == 1 && st.Links[0].State == "up"
	})
}

// delivered reports whether n's only recipient of each of ids has taken
// custody of it.
func delivered(n *node.Node, ids ...message.ID) bool {
	for _, id := range ids {
		st, err := n.MessageStatus(context.Background(), id)
		if err != nil || len(st.Recipients) != 1 || st.Recipients[0].State != "delivered" {
			return false
		}
	}
	return true
}

// metricsText is n's /metrics page.
func metricsText(t *testing.T, n *node.Node) string {
	t.Helper()
	w := httptest.NewRecorder()
	n.Handler().ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), "GET", "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", w.Code)
	}
	return w.Body.String()
}

// metricSum sums the samples of n's /metrics whose name and labels start
// with prefix.
func metricSum(t *testing.T, n *node.Node, prefix string) float64 {
	t.Helper()
	var sum float64
	for line := range strings.Lines(metricsText(t, n)) {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// TestDocsListEveryMetric keeps docs/API.md true: every liaison_ metric
// that two nodes serve once they have exchanged messages is in its table.
func TestDocsListEveryMetric(t *testing.T) {
	usa, pak := pair(t)
	ctx := context.Background()
	rel := nodetest.Label(t, "USA", "CONFIDENTIAL", "USA", "PAK")
	waitLinkUp(t, usa)
	var ids []message.ID
	for _, p := range []message.Precedence{message.Flash, message.Routine} {
		rc, err := usa.Submit(ctx, msg("exercise", p, rel, "counted"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.ID)
	}
	poll(t, 15*time.Second, "both delivered", func() bool { return delivered(usa, ids...) })
	doc, err := os.ReadFile("../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, n := range []*node.Node{usa, pak} {
		for line := range strings.Lines(metricsText(t, n)) {
			if name, ok := strings.CutPrefix(line, "# HELP liaison_"); ok {
				served["liaison_"+strings.Fields(name)[0]] = true
			}
		}
	}
	if len(served) < 10 {
		t.Fatalf("the nodes serve %d liaison_ metrics: %v; want the store's, the guard's, the links'...", len(served), served)
	}
	for name := range served {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/API.md does not list the metric %s", name)
		}
	}
}
