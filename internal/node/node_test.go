package node_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"liaison/internal/api"
	"liaison/internal/audit"
	"liaison/internal/guard"
	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/node/nodetest"
)

// fixture is a started USA node with the USA–PAK test agreement; PAK's
// node does not run, so releases to PAK stay queued.
type fixture struct {
	usa, pak *nodetest.Home
	n        *node.Node
	rel      []byte // CONFIDENTIAL // REL TO USA, PAK
	store    string
}

// newFixture starts the fixture on store ("" for the home's SQLite).
func newFixture(t *testing.T, store string) *fixture {
	t.Helper()
	f := &fixture{usa: nodetest.NewHome(t, "USA", nodetest.Config{}), pak: nodetest.NewHome(t, "PAK", nodetest.Config{})}
	f.store = store
	f.n = nodetest.Start(t, f.usa, node.Options{StoreURL: store})
	nodetest.Install(t, f.n, nodetest.Agreement(t, time.Now(), f.usa, f.pak))
	f.rel = nodetest.Label(t, "USA", "CONFIDENTIAL", "USA", "PAK")
	return f
}

// fixtureTests run on a fixture node, once on SQLite (TestXxx) and once
// on PostgreSQL (TestPostgresNode).
var fixtureTests = []struct {
	name string
	test func(*testing.T, *fixture)
}{
	{"SubmitEveryPrecedence", testSubmitEveryPrecedence},
	{"SubmitDuplicate", testSubmitDuplicate},
	{"SubmitBatch", testSubmitBatch},
	{"QuarantineTwoPersonRule", testQuarantineTwoPersonRule},
	{"QuarantineDeny", testQuarantineDeny},
	{"SubmitRefusals", testSubmitRefusals},
	{"SubscribeLive", testSubscribeLive},
	{"StatusCatalogMay", testStatusCatalogMay},
	{"CloseDoesNotWaitForIdleClients", testCloseDoesNotWaitForIdleClients},
	{"ConcurrentDuplicates", testConcurrentDuplicates},
	{"RestartKeepsState", testRestartKeepsState},
}

func TestSubmitEveryPrecedence(t *testing.T)   { testSubmitEveryPrecedence(t, newFixture(t, "")) }
func TestSubmitDuplicate(t *testing.T)         { testSubmitDuplicate(t, newFixture(t, "")) }
func TestQuarantineTwoPersonRule(t *testing.T) { testQuarantineTwoPersonRule(t, newFixture(t, "")) }
func TestQuarantineDeny(t *testing.T)          { testQuarantineDeny(t, newFixture(t, "")) }
func TestSubmitRefusals(t *testing.T)          { testSubmitRefusals(t, newFixture(t, "")) }
func TestSubscribeLive(t *testing.T)           { testSubscribeLive(t, newFixture(t, "")) }
func TestStatusCatalogMay(t *testing.T)        { testStatusCatalogMay(t, newFixture(t, "")) }
func TestConcurrentDuplicates(t *testing.T)    { testConcurrentDuplicates(t, newFixture(t, "")) }
func TestRestartKeepsState(t *testing.T)       { testRestartKeepsState(t, newFixture(t, "")) }
func TestCloseDoesNotWaitForIdleClients(t *testing.T) {
	testCloseDoesNotWaitForIdleClients(t, newFixture(t, ""))
}

func TestPostgresNode(t *testing.T) {
	nodetest.PostgresDSN(t) // skips or fails early when PostgreSQL is not configured
	for _, ft := range fixtureTests {
		t.Run(ft.name, func(t *testing.T) { ft.test(t, newFixture(t, nodetest.PostgresDSN(t))) })
	}
}

func msg(channel string, prec message.Precedence, lbl []byte, body string) *message.Message {
	return &message.Message{ID: message.NewID(), Channel: channel, Originator: "officer", Precedence: prec,
		Created: time.Now(), Label: lbl, ContentType: "text/plain; charset=utf-8", Body: []byte(body)}
}

func recipient(rc *api.Receipt, party string) api.Recipient {
	for _, r := range rc.Recipients {
		if r.Party == party {
			return r
		}
	}
	return api.Recipient{State: "absent"}
}

func apiError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want *api.Error %d %s", err, err, status, code)
	}
	if ae.Status != status || ae.Code != code {
		t.Fatalf("error %d %s (%s), want %d %s", ae.Status, ae.Code, ae.Message, status, code)
	}
}

func testSubmitEveryPrecedence(t *testing.T, f *fixture) {
	ctx := context.Background()
	order := []message.Precedence{message.Routine, message.Priority, message.Immediate, message.Flash}
	var ids []message.ID
	for _, p := range order {
		rc, err := f.n.Submit(ctx, msg("exercise", p, f.rel, p.String()+" report"))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if r := recipient(rc, "PAK"); r.State != "queued" {
			t.Fatalf("%s: PAK %+v, want queued", p, r)
		}
		if rc.Duplicate || rc.Seq == 0 {
			t.Fatalf("%s: receipt %+v", p, rc)
		}
		ids = append(ids, rc.ID)
	}
	es, err := f.n.History(ctx, "exercise", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(order) {
		t.Fatalf("history has %d entries, want %d", len(es), len(order))
	}
	for i, e := range es {
		if e.Message.ID != ids[i] || e.Message.Precedence != order[i] {
			t.Errorf("entry %d: %s %s, want %s %s (history is in acceptance order)", i, e.Message.ID, e.Message.Precedence, ids[i], order[i])
		}
		if i > 0 && e.Seq <= es[i-1].Seq {
			t.Errorf("entry %d: seq %d after %d", i, e.Seq, es[i-1].Seq)
		}
		if !strings.Contains(e.Marking, "CONFIDENTIAL") || !strings.Contains(e.Marking, "PAK") {
			t.Errorf("entry %d: marking %q, want CONFIDENTIAL releasable to PAK", i, e.Marking)
		}
		if len(e.Recipients) != 1 || e.Recipients[0].Party != "PAK" || e.Recipients[0].State != "queued" {
			t.Errorf("entry %d: recipients %+v", i, e.Recipients)
		}
	}
	if es, _ := f.n.History(ctx, "exercise", es[1].Seq, 1); len(es) != 1 || es[0].Message.ID != ids[2] {
		t.Errorf("History(after=seq 2, limit 1) = %+v, want the third message", es)
	}
	st, err := f.n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range order {
		if got := st.Queues["PAK"][p.String()]; got != 1 {
			t.Errorf("status: PAK queue %s = %d, want 1 (queues %v)", p, got, st.Queues)
		}
	}
}

func testSubmitDuplicate(t *testing.T, f *fixture) {
	ctx := context.Background()
	m := msg("exercise", message.Priority, f.rel, "once")
	rc1, err := f.n.Submit(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	again := *m
	again.Body = []byte("twice?")
	rc2, err := f.n.Submit(ctx, &again)
	if err != nil {
		t.Fatal(err)
	}
	if !rc2.Duplicate || rc1.Duplicate || rc2.ID != rc1.ID || rc2.Seq != rc1.Seq {
		t.Fatalf("receipts %+v then %+v, want the second a duplicate of the first", rc1, rc2)
	}
	if r := recipient(rc2, "PAK"); r.State != "queued" {
		t.Errorf("duplicate receipt: PAK %+v, want the first acceptance's queued", r)
	}
	es, _ := f.n.History(ctx, "exercise", 0, 100)
	if len(es) != 1 || string(es[0].Message.Body) != "once" {
		t.Fatalf("history %+v, want the message stored once with its first body", es)
	}
	st, _ := f.n.Status(ctx)
	if got := st.Queues["PAK"]["PRIORITY"]; got != 1 {
		t.Errorf("PAK PRIORITY queue %d, want 1", got)
	}
}

func testQuarantineTwoPersonRule(t *testing.T, f *fixture) {
	ctx := context.Background()
	rc, err := f.n.Submit(ctx, msg("exercise", message.Immediate, f.rel, "Move to phase line "+nodetest.DirtyWords[0]+" at 0600"))
	if err != nil {
		t.Fatal(err)
	}
	if r := recipient(rc, "PAK"); r.State != "quarantined" || r.Code != guard.CodeDirtyWord {
		t.Fatalf("PAK %+v, want quarantined %s", r, guard.CodeDirtyWord)
	}
	held, err := f.n.Quarantine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[0].ID != rc.ID || held[0].Recipient != "PAK" || held[0].Needed != 2 {
		t.Fatalf("quarantine %+v, want %s for PAK needing 2", held, rc.ID)
	}
	if _, err := f.n.Review(ctx, rc.ID, "PAK", "officer", true); err == nil {
		t.Fatal("the originator reviewed their own message")
	} else {
		apiError(t, err, http.StatusForbidden, "own-message")
	}
	res, err := f.n.Review(ctx, rc.ID, "PAK", "reviewer-a", true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome == "released" || len(res.Approvals) != 1 {
		t.Fatalf("one approval gave %+v", res)
	}
	if _, err := f.n.Review(ctx, rc.ID, "PAK", "reviewer-a", true); err == nil {
		t.Fatal("the same reviewer approved twice")
	} else {
		apiError(t, err, http.StatusConflict, "already-reviewed")
	}
	if st, _ := f.n.MessageStatus(ctx, rc.ID); st.Recipients[0].State != "quarantined" {
		t.Fatalf("after one approval: %+v, want still quarantined", st.Recipients)
	}
	res, err = f.n.Review(ctx, rc.ID, "PAK", "reviewer-b", true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "released" || len(res.Approvals) != 2 {
		t.Fatalf("second approval gave %+v, want released by two", res)
	}
	st, err := f.n.MessageStatus(ctx, rc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Recipients) != 1 || st.Recipients[0].State != "queued" {
		t.Fatalf("after two approvals: %+v, want queued", st.Recipients)
	}
	if held, _ := f.n.Quarantine(ctx); len(held) != 0 {
		t.Errorf("quarantine still holds %+v", held)
	}
	if _, err := f.n.Review(ctx, rc.ID, "PAK", "reviewer-a", false); err == nil {
		t.Error("a released message was reviewed again")
	}
	waitAudit(t, f.n, rc.ID, audit.KindReviewed, audit.KindReleased)
}

func testQuarantineDeny(t *testing.T, f *fixture) {
	ctx := context.Background()
	rc, err := f.n.Submit(ctx, msg("exercise", message.Routine, f.rel, "nightjar sighted"))
	if err != nil {
		t.Fatal(err)
	}
	if r := recipient(rc, "PAK"); r.State != "quarantined" {
		t.Fatalf("lower-case dirty word: PAK %+v, want quarantined", r)
	}
	if _, err := f.n.Review(ctx, rc.ID, "PAK", "reviewer-a", false); err != nil {
		t.Fatal(err)
	}
	st, _ := f.n.MessageStatus(ctx, rc.ID)
	if st.Recipients[0].State != "denied" {
		t.Fatalf("after a denial: %+v, want denied", st.Recipients)
	}
}

// waitAudit polls the audit log until it holds an entry of each kind for id.
func waitAudit(t *testing.T, n *node.Node, id message.ID, kinds ...string) []api.AuditEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		av, err := n.Audit(context.Background(), id.String(), 100)
		if err != nil {
			t.Fatal(err)
		}
		missing := ""
		for _, k := range kinds {
			found := false
			for _, e := range av.Entries {
				found = found || e.Kind == k
			}
			if !found {
				missing = k
			}
		}
		if missing == "" {
			return av.Entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s audit entry for %s; entries %+v", missing, id, av.Entries)
		}
		time.Sleep(10 * time.Millisecond) // polling the audit log's batching, with a deadline
	}
}

func testSubmitRefusals(t *testing.T, f *fixture) {
	ctx := context.Background()

	// Releasable to USA only: stored, denied for PAK, audited.
	rc, err := f.n.Submit(ctx, msg("exercise", message.Priority, nodetest.Label(t, "USA", "CONFIDENTIAL", "USA"), "US eyes only"))
	if err != nil {
		t.Fatal(err)
	}
	if r := recipient(rc, "PAK"); r.State != "denied" || r.Code != guard.CodeNotReleasable {
		t.Fatalf("REL TO USA: PAK %+v, want denied %s", r, guard.CodeNotReleasable)
	}
	// One entry per recipient at acceptance: the guard's decision, with
	// the sender as actor.
	entries := waitAudit(t, f.n, rc.ID, audit.KindDenied)
	if len(entries) != 1 {
		t.Fatalf("audit entries for a message with one recipient: %+v, want 1", entries)
	}
	if e := entries[0]; e.Peer != "PAK" || e.Actor != "officer" || e.Reason != guard.CodeNotReleasable || e.Decision != "denied" || e.Digest == "" {
		t.Errorf("denial entry %+v, want peer PAK, actor officer, reason %s, decision denied, a digest", e, guard.CodeNotReleasable)
	}

	// NOFORN: also kept home.
	rc, err = f.n.Submit(ctx, msg("exercise", message.Priority, nodetest.Label(t, "USA", "CONFIDENTIAL"), "NOFORN"))
	if err != nil {
		t.Fatal(err)
	}
	if r := recipient(rc, "PAK"); r.State != "denied" {
		t.Fatalf("NOFORN: PAK %+v, want denied", r)
	}

	_, err = f.n.Submit(ctx, msg("no-such-channel", message.Routine, f.rel, "x"))
	apiError(t, err, http.StatusConflict, guard.CodeNoAgreement)

	_, err = f.n.Submit(ctx, msg("exercise", message.Routine, nodetest.Label(t, "USA", "NO-SUCH-CLASS", "USA", "PAK"), "x"))
	apiError(t, err, http.StatusUnprocessableEntity, guard.CodeLabelInvalid)

	_, err = f.n.Submit(ctx, msg("exercise", message.Routine, []byte("<not a label"), "x"))
	apiError(t, err, http.StatusUnprocessableEntity, guard.CodeLabelUnparsable)

	m := msg("exercise", message.Routine, f.rel, "x")
	m.Origin = "PAK"
	_, err = f.n.Submit(ctx, m)
	apiError(t, err, http.StatusBadRequest, "bad-origin")

	m = msg("exercise", message.Precedence(9), f.rel, "x")
	_, err = f.n.Submit(ctx, m)
	apiError(t, err, http.StatusBadRequest, "bad-message")

	es, _ := f.n.History(ctx, "exercise", 0, 100)
	if len(es) != 2 {
		t.Errorf("history holds %d messages, want the 2 denied ones only", len(es))
	}
}

func TestInstallAgreementRefused(t *testing.T) {
	usa, pak := nodetest.NewHome(t, "USA", nodetest.Config{}), nodetest.NewHome(t, "PAK", nodetest.Config{})
	n := nodetest.Start(t, usa, node.Options{})
	ctx := context.Background()

	d := nodetest.Document(t, time.Now(), usa, pak)
	half := nodetest.Sign(t, d, usa) // PAK's signature missing
	_, err := n.InstallAgreement(ctx, half)
	apiError(t, err, http.StatusUnprocessableEntity, "agreement-unsigned")

	d = nodetest.Document(t, time.Now(), usa, pak)
	d.Labels.Policies[1].Digest = "sha256:" + strings.Repeat("ab", 32)
	_, err = n.InstallAgreement(ctx, nodetest.Sign(t, d, usa, pak))
	apiError(t, err, http.StatusUnprocessableEntity, "policy-digest")

	ind := nodetest.NewHome(t, "IND", nodetest.Config{})
	_, err = n.InstallAgreement(ctx, nodetest.Agreement(t, time.Now(), pak, ind))
	apiError(t, err, http.StatusUnprocessableEntity, "agreement-not-ours")

	_, err = n.InstallAgreement(ctx, []byte("id: [unclosed"))
	apiError(t, err, http.StatusUnprocessableEntity, "agreement-invalid")

	if as, _ := n.Agreements(ctx); len(as) != 0 {
		t.Fatalf("refused agreements were installed: %+v", as)
	}
	if err := n.Ready(ctx); err == nil {
		t.Error("node without an agreement says it is ready")
	}
	if _, err := n.Submit(ctx, msg("exercise", message.Routine, nodetest.Label(t, "USA", "CONFIDENTIAL", "USA", "PAK"), "x")); err == nil {
		t.Error("message accepted with no agreement installed")
	}
	a, err := n.InstallAgreement(ctx, nodetest.Agreement(t, time.Now(), usa, pak))
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != "in force" {
		t.Errorf("installed agreement status %q, want in force", a.Status)
	}
	if err := n.Ready(ctx); err != nil {
		t.Errorf("not ready after install: %v", err)
	}
}

func testSubscribeLive(t *testing.T, f *fixture) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := f.n.Submit(ctx, msg("exercise", message.Routine, f.rel, "before"))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := f.n.Subscribe(ctx, "exercise", 0)
	if err != nil {
		t.Fatal(err)
	}
	next := func() api.Entry {
		t.Helper()
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("subscription closed")
			}
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no entry within 10s")
		}
		return api.Entry{}
	}
	if e := next(); e.Message.ID != first.ID {
		t.Fatalf("first entry %s, want the stored %s", e.Message.ID, first.ID)
	}
	live, err := f.n.Submit(ctx, msg("exercise", message.Flash, f.rel, "live"))
	if err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Message.ID != live.ID || e.Seq != live.Seq {
		t.Fatalf("live entry %s seq %d, want %s seq %d", e.Message.ID, e.Seq, live.ID, live.Seq)
	}
	if _, err := f.n.Submit(ctx, msg("sitrep", message.Flash, f.rel, "other channel")); err != nil {
		t.Fatal(err)
	}
	cancel()
	for e := range ch {
		if e.Message.Channel != "exercise" {
			t.Fatalf("subscription to exercise delivered %s's message", e.Message.Channel)
		}
	}
}

func testStatusCatalogMay(t *testing.T, f *fixture) {
	ctx := context.Background()
	st, err := f.n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Party != "USA" || len(st.Agreements) != 1 || st.Agreements[0].Status != "in force" {
		t.Fatalf("status %+v", st)
	}
	if p := f.n.May(ctx, "USA", "PAK", "exercise"); !p.Allowed || p.Agreement == "" {
		t.Errorf("May(USA, PAK, exercise) = %+v, want allowed under the agreement", p)
	}
	if p := f.n.May(ctx, "USA", "IND", "exercise"); p.Allowed {
		t.Errorf("May(USA, IND, exercise) = %+v, want refused", p)
	}
	if p := f.n.May(ctx, "USA", "PAK", "gossip"); p.Allowed {
		t.Errorf("May on an unknown channel = %+v, want refused", p)
	}
	cat, err := f.n.Catalog(ctx, "exercise")
	if err != nil {
		t.Fatal(err)
	}
	var marks []string
	for _, c := range cat {
		marks = append(marks, c.Marking)
		if strings.Contains(c.Marking, "SECRET") && !strings.Contains(c.Marking, "UNCLASSIFIED") {
			t.Errorf("exercise catalogue offers %q above its CONFIDENTIAL ceiling", c.Marking)
		}
	}
	if len(cat) == 0 || !strings.Contains(strings.Join(marks, "|"), "CONFIDENTIAL") {
		t.Fatalf("exercise catalogue %q, want CONFIDENTIAL choices", marks)
	}
	// Every catalogue choice is accepted by Submit.
	for _, c := range cat {
		if _, err := f.n.Submit(ctx, msg("exercise", message.Routine, []byte(c.Label), "from the catalogue")); err != nil {
			t.Errorf("catalogue choice %q refused: %v", c.Marking, err)
		}
	}
	sit, err := f.n.Catalog(ctx, "sitrep")
	if err != nil {
		t.Fatal(err)
	}
	if len(sit) <= len(cat) {
		t.Errorf("sitrep (SECRET ceiling) offers %d labels, exercise (CONFIDENTIAL) %d", len(sit), len(cat))
	}
	_, err = f.n.Catalog(ctx, "gossip")
	apiError(t, err, http.StatusNotFound, "no-channel")
}

// A failure after the store opened closes what was opened and returns the
// error; it once dereferenced the nil *Node it had already returned.
func TestOpenFailsCleanly(t *testing.T) {
	h := nodetest.NewHome(t, "USA", nodetest.Config{})
	ctx := context.Background()
	_, err := node.Open(ctx, h.Dir, node.Options{AuditCheckpointInterval: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "audit") {
		t.Fatalf("Open with an impossible audit interval: %v, want an audit error", err)
	}
	// The store was closed: the home opens again.
	n, err := node.Open(ctx, h.Dir, node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
}

// Close must not wait for API clients that hold a connection without a
// request in flight, nor for live streams: it once waited 5s for them and
// then failed with "context deadline exceeded", so 'liaison up' exited 1
// on SIGTERM.
func testCloseDoesNotWaitForIdleClients(t *testing.T, f *fixture) {
	addr := f.n.APIAddr().String()
	raw, err := net.Dial("tcp", addr) // connected, never sends a request
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	req, _ := http.NewRequest("GET", "https://"+addr+"/v1/channels/exercise/stream", nil)
	req.Header.Set("Authorization", "Bearer "+f.usa.Tokens["auditor"])
	resp, err := f.usa.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %s", resp.Status)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("stream's first line %q, %v", line, err)
	}
	start := time.Now()
	if err := f.n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v with an idle connection and a live stream open", d)
	}
}
