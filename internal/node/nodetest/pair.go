// Pair: two real nodes (USA and PAK) with a signed agreement and a live
// link, for audit and federation tests.

package nodetest

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
	"runtime"
	"strings"
	"testing"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/audit"
	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/pki"
)

// Party is one node of a test federation.
type Party struct {
	ID    string
	Home  string
	Token string // the operator's API bearer token
	Node  *node.Node

	policy string // the party's policy id
	dials  string // party this node dials, if any
	peer   *Party
}

// Pair is two linked nodes: PAK dials USA.
type Pair struct {
	USA, PAK *Party
}

// Options are the node options tests use: fast batching and
// checkpointing, witnessing only when a test asks.
func Options() node.Options {
	return node.Options{
		Federation:    node.FederationTuning{Heartbeat: time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Poll: 50 * time.Millisecond},
		AuditBatchAge: 5 * time.Millisecond, AuditCheckpointInterval: 100 * time.Millisecond, WitnessInterval: time.Hour,
	}
}

// policiesDir is the demo's policy directory, found from this file.
func policiesDir(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("nodetest: cannot locate its source")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "demo", "policies")
}

// NewPair starts USA and PAK under dir, signs and installs an agreement
// with an "exercise" channel between them and waits until the link is up
// on both sides. The nodes close when the test ends.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	usa := newParty(t, dir, "USA", "2.25.311001")
	pak := newParty(t, dir, "PAK", "2.25.311002")
	usa.peer, pak.peer = pak, usa
	for _, p := range []*Party{usa, pak} {
		p.Start(t)
	}
	for _, a := range []*Party{usa, pak} {
		card, err := a.Node.Card()
		if err != nil {
			t.Fatal(err)
		}
		if err := a.peer.Node.ImportCard(ctx, card); err != nil {
			t.Fatal(err)
		}
	}
	installAgreement(t, usa, pak)
	pak.dials = "USA"
	if err := pak.Node.AddPeer("USA", usa.Node.FederationAddr().String()); err != nil {
		t.Fatal(err)
	}
	pr := &Pair{USA: usa, PAK: pak}
	pr.WaitLinked(t)
	return pr
}

func newParty(t testing.TB, dir, id, policy string) *Party {
	home := filepath.Join(dir, strings.ToLower(id))
	if _, err := pki.Init(home, pki.InitOptions{Party: id, Addr: "127.0.0.1:0", APIAddr: "127.0.0.1:0", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range []string{"usa.xml", "pak.xml"} {
		data, err := os.ReadFile(filepath.Join(policiesDir(t), f))
		if err != nil {
			t.Fatalf("nodetest: demo policy: %v", err)
		}
		if err := os.MkdirAll(filepath.Join(home, "policies"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "policies", f), data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, "policies/"+f)
	}
	tok := make([]byte, 18)
	rand.Read(tok)
	token := base64.RawURLEncoding.EncodeToString(tok)
	sum := sha256.Sum256([]byte(token))
	cfg := fmt.Sprintf(`party: %s
federation:
  listen: 127.0.0.1:0
api:
  listen: 127.0.0.1:0
  tokens:
    - {name: operator, sha256: %q, roles: [operator]}
store: "sqlite:store.db"
audit:
  dir: audit
policies: [%s]
`, id, hex.EncodeToString(sum[:]), strings.Join(files, ", "))
	if err := os.WriteFile(filepath.Join(home, node.ConfigFile), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "operator.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &Party{ID: id, Home: home, Token: token, policy: policy}
}

// Start opens and starts the party's node (again, after Stop), dialling
// its partner if it did before. The node closes when the test ends.
func (p *Party) Start(t testing.TB) {
	t.Helper()
	opts := Options()
	if os.Getenv("NODETEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err := node.Open(t.Context(), p.Home, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err != nil {
		n.Close()
		t.Fatal(err)
	}
	p.Node = n
	t.Cleanup(func() { n.Close() })
	if p.dials != "" {
		if err := n.AddPeer(p.dials, p.peer.Node.FederationAddr().String()); err != nil {
			t.Fatal(err)
		}
	}
}

// Stop closes the party's node.
func (p *Party) Stop(t testing.TB) {
	t.Helper()
	if err := p.Node.Close(); err != nil {
		t.Fatal(err)
	}
}

// LinkUp reports whether p's node sees its link to party up.
func (p *Party) LinkUp(party string) bool {
	st, err := p.Node.Status(context.Background())
	if err != nil {
		return false
	}
	for _, l := range st.Links {
		if l.Party == party {
			return l.State == "up"
		}
	}
	return false
}

// WaitLinked waits until both nodes see the link up.
func (pr *Pair) WaitLinked(t testing.TB) {
	t.Helper()
	Eventually(t, 15*time.Second, "the USA–PAK link is up on both sides", func() bool {
		return pr.USA.LinkUp("PAK") && pr.PAK.LinkUp("USA")
	})
}

// Eventually polls cond until it holds or d passes, then fails the test.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Send submits a text message from p to its partner on the exercise
// channel, labelled CONFIDENTIAL releasable to both, and returns its id.
func (p *Party) Send(t testing.TB, body string) message.ID {
	t.Helper()
	now := time.Now()
	m := &message.Message{
		ID: message.NewID(), Channel: "exercise", Origin: p.ID, Originator: "officer", Created: now.UTC(),
		Precedence: message.Routine, ContentType: "text/plain; charset=utf-8", Body: []byte(body),
		Label: node.BuildLabel(p.Node.Policy(p.policy), "CONFIDENTIAL", []string{"USA", "PAK"}, now),
	}
	rc, err := p.Node.Submit(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rc.Recipients {
		if r.State != "queued" {
			t.Fatalf("message to %s is %s: %s %s", r.Party, r.State, r.Code, r.Reason)
		}
	}
	return m.ID
}

// Delivered reports whether p's message id is delivered to its partner.
func (p *Party) Delivered(id message.ID) bool {
	st, err := p.Node.MessageStatus(context.Background(), id)
	if err != nil {
		return false
	}
	for _, r := range st.Recipients {
		if r.Party == p.peer.ID {
			return r.State == "delivered"
		}
	}
	return false
}

func installAgreement(t testing.TB, parties ...*Party) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	d := &agreement.Document{
		ID: "us-pak-test", Version: 1, Title: "Test agreement between the United States and Pakistan",
		Scope: []string{"exercise"},
		Term:  agreement.Term{Effective: now.AddDate(0, 0, -1), Expiry: now.AddDate(2, 0, 0), Notice: agreement.Duration(30 * 24 * time.Hour)},
		Channels: []agreement.Channel{{
			Name: "exercise", Scope: "exercise", Members: []string{"USA", "PAK"},
			Ceiling:      map[string]string{"USA": "CONFIDENTIAL", "PAK": "CONFIDENTIAL"},
			DefaultLabel: string(node.BuildLabel(parties[0].Node.Policy(parties[0].policy), "CONFIDENTIAL", nil, now)),
			Content:      agreement.ContentRules{MaxSize: 1 << 20, Types: []string{"text/plain"}},
		}},
		Labels: agreement.Labels{
			Policies: []agreement.PolicyRef{
				policyRef(t, "USA", "usa.xml", "2.25.311001", "US-CIS-DEMO"),
				policyRef(t, "PAK", "pak.xml", "2.25.311002", "PK-CIS-DEMO"),
			},
			Equivalences: []agreement.Equivalence{{From: "2.25.311001", To: "2.25.311002"}, {From: "2.25.311002", To: "2.25.311001"}},
		},
	}
	keys := map[string]ed25519.PrivateKey{}
	for _, p := range parties {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		keys[p.ID] = priv
		d.Parties = append(d.Parties, agreement.Party{
			ID: p.ID, Name: p.ID + " (test)", SigningAuthority: "Minister of Tests",
			Keys:          []agreement.Key{{Alg: "ed25519", Public: base64.StdEncoding.EncodeToString(pub)}},
			CAFingerprint: pki.Fingerprint(p.Node.Identity().CACert.Raw),
		})
	}
	for _, p := range parties {
		if err := d.Approve(agreement.Approval{Party: p.ID, Authority: "Cabinet", Method: "decision", Date: now.AddDate(0, 0, -2), Reference: "T-1"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range parties {
		if err := d.Sign(p.ID, keys[p.ID]); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parties {
		if _, err := p.Node.InstallAgreement(t.Context(), raw); err != nil {
			t.Fatalf("installing on %s: %v", p.ID, err)
		}
	}
}

func policyRef(t testing.TB, party, file, id, name string) agreement.PolicyRef {
	data, err := os.ReadFile(filepath.Join(policiesDir(t), file))
	if err != nil {
		t.Fatal(err)
	}
	return agreement.PolicyRef{Party: party, PolicyID: id, Name: name, Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(data))}
}

// RewriteAudit stops p's node, replaces its audit log with a different
// history of n entries under the same origin and key, as an insider
// rewriting the log would, and starts the node again. A partner that
// witnessed the old log sees a fork (or a rollback) at the next offer.
func (p *Party) RewriteAudit(t testing.TB, n int) {
	t.Helper()
	p.Stop(t)
	cfg, err := node.LoadConfig(p.Home)
	if err != nil {
		t.Fatal(err)
	}
	dir := cfg.Path(cfg.Audit.Dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(t.Context(), dir, audit.Config{
		Origin: node.AuditOrigin(p.ID), Signer: p.Node.Identity().SigningKey,
		BatchMaxAge: 5 * time.Millisecond, CheckpointInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		l.AppendAsync(t.Context(), audit.Entry{Kind: audit.KindConfigChanged, At: time.Now(), Party: p.ID, Decision: "rewritten", Reason: fmt.Sprintf("r%d", i)})
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.Start(t)
}

// Offering wraps cond so that, while it is polled, p offers its audit
// checkpoint to its partners every quarter second: the offer made when a
// link comes up may go out on a session the partner is replacing.
func Offering(p *Party, cond func() bool) func() bool {
	var last time.Time
	return func() bool {
		if time.Since(last) > 250*time.Millisecond {
			p.Node.Witness(context.Background())
			last = time.Now()
		}
		return cond()
	}
}
