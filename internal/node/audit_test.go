package node_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"liaison/internal/api"
	"liaison/internal/audit"
	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/node/nodetest"
)

// get serves one API request on p's node handler with its operator token.
func get(t *testing.T, p *nodetest.Party, path string, out any) int {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), "GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+p.Token)
	w := httptest.NewRecorder()
	p.Node.Handler().ServeHTTP(w, req)
	if out != nil && w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return w.Code
}

// crossings reads p's log from disk and keeps the crossings with peer.
func crossings(t *testing.T, p *nodetest.Party, peer string) []audit.Record {
	t.Helper()
	cfg, err := node.LoadConfig(p.Home)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.NoteVerifier(node.AuditOrigin(p.ID), p.Node.Identity().SigningKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	r, err := audit.OpenReader(cfg.Path(cfg.Audit.Dir), node.AuditOrigin(p.ID), v)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := r.Entries(t.Context(), 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(recs, func(r audit.Record) bool { return !audit.Crossed(r.Entry, peer) })
}

// TestAuditReconcileOverLink reconciles two running nodes' logs over
// their link, with requests small enough to need many rounds and split
// answers, then shows a crossing removed from one side is found.
func TestAuditReconcileOverLink(t *testing.T) {
	pr := nodetest.NewPair(t)
	usa, pak := pr.USA, pr.PAK
	restore := node.SetReconcileChunks(3, 700)
	defer restore()

	var ids []message.ID
	for i := range 3 {
		ids = append(ids, usa.Send(t, "usa to pak "+strconv.Itoa(i)))
	}
	for i := range 2 {
		ids = append(ids, pak.Send(t, "pak to usa "+strconv.Itoa(i)))
	}
	nodetest.Eventually(t, 15*time.Second, "every message is delivered", func() bool {
		for i, id := range ids {
			if from := []*nodetest.Party{usa, pak}[min(i/3, 1)]; !from.Delivered(id) {
				return false
			}
		}
		return true
	})
	var d audit.Diff
	nodetest.Eventually(t, 15*time.Second, "both checkpoints cover the 5 crossings", func() bool {
		var err error
		d, err = usa.Node.Reconcile(t.Context(), "PAK")
		if err != nil {
			t.Fatal(err)
		}
		return d.Matched == len(ids) && d.Empty()
	})
	// And from the other side.
	if d, err := pak.Node.Reconcile(t.Context(), "USA"); err != nil || d.Matched != len(ids) || !d.Empty() {
		t.Fatalf("PAK reconciles with USA: %+v, %v", d, err)
	}

	var ad api.AuditDiff
	if code := get(t, usa, "/v1/audit/reconcile?peer=PAK", &ad); code != http.StatusOK || ad.Matched != len(ids) || !ad.Empty() || ad.Peer != "PAK" {
		t.Fatalf("GET /v1/audit/reconcile = %d %+v", code, ad)
	}
	for path, want := range map[string]int{
		"/v1/audit/reconcile":          http.StatusBadRequest,
		"/v1/audit/reconcile?peer=XZZ": http.StatusNotFound,
	} {
		if code := get(t, usa, path, nil); code != want {
			t.Errorf("GET %s = %d, want %d", path, code, want)
		}
	}

	// With the link down, the route says so.
	defer func() {
		pak.Stop(t)
		nodetest.Eventually(t, 10*time.Second, "reconcile answers 409 with the link down", func() bool {
			return get(t, usa, "/v1/audit/reconcile?peer=PAK", nil) == http.StatusConflict
		})
	}()

	// A partner that hid one delivery: its list lacks one crossing.
	mine, theirs := crossings(t, usa, "PAK"), crossings(t, pak, "USA")
	if len(mine) != len(ids) || len(theirs) != len(ids) {
		t.Fatalf("logs hold %d and %d crossings, want %d", len(mine), len(theirs), len(ids))
	}
	hidden := theirs[1]
	d = audit.Reconcile(mine, slices.Delete(slices.Clone(theirs), 1, 2), "USA", "PAK")
	if len(d.OnlyMine) != 1 || d.OnlyMine[0].Entry.MessageID != hidden.Entry.MessageID || d.Matched != len(ids)-1 {
		t.Fatalf("one crossing removed from PAK's list: %+v", d)
	}
}

// TestAuditForkAlarm rewrites PAK's log after USA witnessed it: USA's
// witness sees a fork when PAK next offers its checkpoint, raises an
// alarm, counts it, keeps the evidence and reports it in its status. A
// plain restart before that keeps PAK's log consistent and raises nothing.
func TestAuditForkAlarm(t *testing.T) {
	pr := nodetest.NewPair(t)
	usa, pak := pr.USA, pr.PAK
	id := usa.Send(t, "before the rewrite")
	nodetest.Eventually(t, 15*time.Second, "the message is delivered", func() bool { return usa.Delivered(id) })

	witnessed := func() (size uint64, at time.Time) {
		st, err := usa.Node.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range st.Audit.Partners {
			if p.Party == "PAK" {
				return p.TheirSize, p.LastWitnessed
			}
		}
		return 0, time.Time{}
	}
	nodetest.Eventually(t, 10*time.Second, "PAK's checkpoint covers the delivery", func() bool {
		st, err := pak.Node.Status(t.Context())
		return err == nil && st.Audit.Size > 0
	})
	pak.Node.Witness(t.Context())
	nodetest.Eventually(t, 15*time.Second, "USA witnesses PAK's log", func() bool { s, _ := witnessed(); return s > 0 })

	// A plain restart: the log verifies, and extends what USA witnessed.
	size, before := witnessed()
	pak.Stop(t)
	rep, err := node.VerifyAudit(t.Context(), pak.Home)
	if err != nil || !rep.OK() || rep.TreeSize < size {
		t.Fatalf("PAK's log after close: %+v, %v (USA witnessed %d)", rep, err, size)
	}
	pak.Start(t)
	pr.WaitLinked(t) // the link coming up offers PAK's checkpoint
	nodetest.Eventually(t, 15*time.Second, "USA witnesses PAK's log after the restart", nodetest.Offering(pak, func() bool {
		_, at := witnessed()
		return at.After(before)
	}))
	st, err := usa.Node.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Audit.Forks) > 0 || len(st.Alarms) > 0 {
		t.Fatalf("a plain restart raised alarms: %q %q", st.Audit.Forks, st.Alarms)
	}

	// The rewrite: same origin, same key, a different history.
	size, _ = witnessed()
	pak.RewriteAudit(t, int(size)+5)
	pr.WaitLinked(t)
	var alarm string
	nodetest.Eventually(t, 15*time.Second, "USA raises a fork alarm", nodetest.Offering(pak, func() bool {
		st, err := usa.Node.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range st.Alarms {
			if strings.Contains(a, "audit fork detected in "+node.AuditOrigin("PAK")) {
				alarm = a
			}
		}
		return alarm != "" && len(st.Audit.Forks) > 0
	}))

	// The evidence: both signed checkpoints, kept on disk.
	_, dir, ok := strings.Cut(alarm, "evidence kept in ")
	if !ok {
		t.Fatalf("alarm names no evidence: %q", alarm)
	}
	oldCP, err1 := os.ReadFile(filepath.Join(dir, "old"))
	newCP, err2 := os.ReadFile(filepath.Join(dir, "new"))
	if err1 != nil || err2 != nil || len(oldCP) == 0 || string(oldCP) == string(newCP) {
		t.Fatalf("evidence in %s: %v %v", dir, err1, err2)
	}
	if !strings.HasPrefix(string(oldCP), node.AuditOrigin("PAK")+"\n") {
		t.Errorf("evidence old checkpoint is not PAK's: %q", oldCP)
	}

	// The metric.
	if n := forksMetric(t, usa); n < 1 {
		t.Errorf("liaison_audit_forks_total = %v, want > 0", n)
	}

	// The status API.
	var ns api.NodeStatus
	if code := get(t, usa, "/v1/status", &ns); code != http.StatusOK || ns.Audit == nil || len(ns.Audit.Forks) == 0 || !slices.Contains(ns.Alarms, alarm) {
		t.Fatalf("GET /v1/status = %d, forks %v, alarms %q", code, ns.Audit, ns.Alarms)
	}
	// USA's own log records the fork (entanglement).
	nodetest.Eventually(t, 10*time.Second, "USA's log records the fork", func() bool {
		av, err := usa.Node.Audit(context.Background(), "", 50)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(av.Entries, func(e api.AuditEntry) bool { return e.Kind == audit.KindWitnessFork })
	})
}

// forksMetric sums liaison_audit_forks_total on p's /metrics.
func forksMetric(t *testing.T, p *nodetest.Party) float64 {
	t.Helper()
	return metricSum(t, p.Node, "liaison_audit_forks_total{")
}
