package fedtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/api"
	"liaison/internal/clock"
	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/pki"
)

// policyIDs are the demo policies' OIDs by party.
var policyIDs = map[string]string{"USA": "2.25.311001", "PAK": "2.25.311002", "IND": "2.25.311003"}

var policyFiles = map[string]string{"USA": "usa.xml", "PAK": "pak.xml", "IND": "ind.xml"}

// party is one node under test and what its operators hold.
type party struct {
	id, home string
	n        *node.Node
	sign     ed25519.PrivateKey // agreement-signing key
	token    string             // operator+sender token
	apiAddr  string             // fixed API address (process nodes)
	fedAddr  string             // fixed federation address (process nodes)
}

// makeHome writes a node home for id under dir: identity, policies and a
// liaison.yaml with one token holding every role. Addresses "" mean
// 127.0.0.1:0.
func makeHome(t testing.TB, dir, id, fedAddr, apiAddr string, peers map[string]string) *party {
	t.Helper()
	if fedAddr == "" {
		fedAddr = "127.0.0.1:0"
	}
	if apiAddr == "" {
		apiAddr = "127.0.0.1:0"
	}
	home := filepath.Join(dir, strings.ToLower(id))
	if _, err := pki.Init(home, pki.InitOptions{Party: id, Addr: fedAddr, APIAddr: apiAddr, Now: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range []string{"usa.xml", "pak.xml", "ind.xml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "demo", "policies", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "policies", f), data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, "policies/"+f)
	}
	b := make([]byte, 18)
	rand.Read(b)
	token := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	var ps strings.Builder
	if len(peers) > 0 {
		ps.WriteString("peers:\n")
		for p, ep := range peers {
			fmt.Fprintf(&ps, "  - {party: %s, endpoint: %q}\n", p, ep)
		}
	}
	cfg := fmt.Sprintf(`party: %s
federation:
  listen: %s
api:
  listen: %s
  tokens:
    - {name: op, sha256: %q, roles: [operator, sender, auditor]}
store: "sqlite:store.db"
audit:
  dir: audit
policies: [%s]
%s`, id, fedAddr, apiAddr, hex.EncodeToString(sum[:]), strings.Join(files, ", "), ps.String())
	if err := os.WriteFile(filepath.Join(home, node.ConfigFile), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "operator.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, sk, _ := ed25519.GenerateKey(rand.Reader)
	return &party{id: id, home: home, sign: sk, token: token, apiAddr: apiAddr, fedAddr: fedAddr}
}

// testOptions are fast federation settings for in-process nodes.
func testOptions(t testing.TB, clk clock.Clock, home string) node.Options {
	f, err := os.Create(filepath.Join(home, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return node.Options{
		Clock: clk, Logger: slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Federation:    node.FederationTuning{Heartbeat: time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Poll: 100 * time.Millisecond},
		AuditBatchAge: 5 * time.Millisecond, AuditCheckpointInterval: 100 * time.Millisecond, WitnessInterval: time.Hour,
	}
}

// open opens (and with start, starts) p's node; Close runs at cleanup.
func (p *party) open(t testing.TB, clk clock.Clock, start bool) {
	t.Helper()
	n, err := node.Open(t.Context(), p.home, testOptions(t, clk, p.home))
	if err != nil {
		t.Fatal(err)
	}
	p.n = n
	t.Cleanup(func() { n.Close() })
	if start {
		if err := n.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// exchangeCards pins every party's card at every other party.
func exchangeCards(t testing.TB, ps ...*party) {
	t.Helper()
	for _, a := range ps {
		card, err := a.n.Card()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range ps {
			if a != b {
				if err := b.n.ImportCard(context.Background(), card); err != nil {
					t.Fatalf("%s imports %s's card: %v", b.id, a.id, err)
				}
			}
		}
	}
}

// deal describes an agreement among parties with one channel "ops"
// whose members are all of them.
type deal struct {
	id                string
	version           int
	supersedes        string
	effective, expiry time.Time
	maxSize           int64
	parties           []*party
}

func policyRef(id string) agreement.PolicyRef {
	data, err := os.ReadFile(filepath.Join("..", "..", "demo", "policies", policyFiles[id]))
	if err != nil {
		panic(err)
	}
	return agreement.PolicyRef{Party: id, PolicyID: policyIDs[id], Name: id, Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(data))}
}

// signed builds, approves and signs the agreement and returns its bytes.
func (d deal) signed(t testing.TB) ([]byte, string) {
	t.Helper()
	if d.version == 0 {
		d.version = 1
	}
	if d.maxSize == 0 {
		d.maxSize = 1 << 20
	}
	doc := &agreement.Document{ID: d.id, Version: d.version, Supersedes: d.supersedes, Title: "Test agreement " + d.id, Scope: []string{"operation"},
		Term: agreement.Term{Effective: d.effective, Expiry: d.expiry, Notice: agreement.Duration(24 * time.Hour)}}
	ceiling := map[string]string{}
	var members []string
	for _, p := range d.parties {
		doc.Parties = append(doc.Parties, agreement.Party{ID: p.id, Name: "Party " + p.id, SigningAuthority: "Minister",
			Keys:          []agreement.Key{{Alg: "ed25519", Public: base64.StdEncoding.EncodeToString(p.sign.Public().(ed25519.PublicKey))}},
			CAFingerprint: pki.Fingerprint(p.n.Identity().CACert.Raw)})
		ceiling[p.id] = "SECRET"
		members = append(members, p.id)
		doc.Labels.Policies = append(doc.Labels.Policies, policyRef(p.id))
		for _, q := range d.parties {
			if p != q {
				doc.Labels.Equivalences = append(doc.Labels.Equivalences, agreement.Equivalence{From: policyIDs[p.id], To: policyIDs[q.id]})
			}
		}
	}
	first := d.parties[0]
	doc.Channels = []agreement.Channel{{Name: "ops", Scope: "operation", Members: members, Ceiling: ceiling,
		DefaultLabel: string(node.BuildLabel(first.n.Policy(policyIDs[first.id]), "CONFIDENTIAL", nil, d.effective)),
		Content:      agreement.ContentRules{MaxSize: d.maxSize, Types: []string{"text/plain", "application/octet-stream"}}}}
	for _, p := range d.parties {
		if err := doc.Approve(agreement.Approval{Party: p.id, Authority: "Cabinet", Method: "decision", Date: d.effective.Add(-24 * time.Hour), Reference: "T-1"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range d.parties {
		if err := doc.Sign(p.id, p.sign); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := doc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dg, err := doc.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return raw, dg.String()
}

// install installs the agreement on each of its parties and returns its
// digest.
func (d deal) install(t testing.TB) string {
	t.Helper()
	raw, dg := d.signed(t)
	for _, p := range d.parties {
		if _, err := p.n.InstallAgreement(context.Background(), raw); err != nil {
			t.Fatalf("install %s on %s: %v", d.id, p.id, err)
		}
	}
	return dg
}

// msg builds a text message from p on channel ops releasable to relTo.
func (p *party) msg(now time.Time, prec message.Precedence, body string, relTo ...string) *message.Message {
	return &message.Message{ID: message.NewID(), Channel: "ops", Origin: p.id, Originator: "op", Precedence: prec, Created: now,
		Label: node.BuildLabel(p.n.Policy(policyIDs[p.id]), "CONFIDENTIAL", relTo, now), ContentType: "text/plain", Body: []byte(body)}
}

func (p *party) submit(t testing.TB, m *message.Message) *api.Receipt {
	t.Helper()
	rc, err := p.n.Submit(context.Background(), m)
	if err != nil {
		t.Fatalf("%s submit: %v", p.id, err)
	}
	return rc
}

// received returns the messages p's channel ops holds from origin, in
// arrival order.
func (p *party) received(t testing.TB, origin string) []*message.Message {
	t.Helper()
	var out []*message.Message
	var after uint64
	for {
		es, err := p.n.History(context.Background(), "ops", after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Message.Origin == origin {
				out = append(out, e.Message)
			}
			after = e.Seq
		}
		if len(es) < 1000 {
			return out
		}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond) // polling, not waiting for an effect
	}
}

// linkState is p's view of its link to peer.
func (p *party) linkState(peer string) string {
	st, err := p.n.Status(context.Background())
	if err != nil {
		return "unknown"
	}
	for _, l := range st.Links {
		if l.Party == peer {
			return l.State
		}
	}
	return "none"
}

// auditHas reports whether p's audit log holds an entry of kind with reason.
func (p *party) auditHas(kind, reason string) bool {
	av, err := p.n.Audit(context.Background(), "", 10000)
	if err != nil {
		return false
	}
	for _, e := range av.Entries {
		if e.Kind == kind && (reason == "" || e.Reason == reason) {
			return true
		}
	}
	return false
}
