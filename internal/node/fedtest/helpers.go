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
	"runtime"
	"strings"
	"testing"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/api"
	"liaison/internal/clock"
	"liaison/internal/federation/linksim"
	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/pki"
)

// T0 is when clusters' simulated clocks start.
var T0 = time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)

// PolicyIDs are the demo policies' OIDs by party.
var PolicyIDs = map[string]string{"USA": "2.25.311001", "PAK": "2.25.311002", "IND": "2.25.311003"}

var policyFiles = map[string]string{"USA": "usa.xml", "PAK": "pak.xml", "IND": "ind.xml"}

// Party is one node under test and what its operators hold.
type Party struct {
	ID, Home string
	N        *node.Node         // nil until Open
	Sign     ed25519.PrivateKey // agreement-signing key
	Token    string             // API token with every role
	APIAddr  string             // configured API address
	FedAddr  string             // configured federation address
}

// MakeHome writes a node home for id under dir: identity, policies and a
// liaison.yaml with one token holding every role. Addresses "" mean
// 127.0.0.1:0.
func MakeHome(t testing.TB, dir, id, fedAddr, apiAddr string, peers map[string]string) *Party {
	t.Helper()
	return makeHome(t, dir, id, fedAddr, apiAddr, peers, time.Now().Add(-time.Hour))
}

// MakeHomeIssued is MakeHome with the identity (CA and TLS certificate)
// issued at issued, e.g. long enough ago that the certificate expired.
func MakeHomeIssued(t testing.TB, dir, id string, issued time.Time) *Party {
	t.Helper()
	return makeHome(t, dir, id, "", "", nil, issued)
}

func makeHome(t testing.TB, dir, id, fedAddr, apiAddr string, peers map[string]string, issued time.Time) *Party {
	t.Helper()
	if fedAddr == "" {
		fedAddr = "127.0.0.1:0"
	}
	if apiAddr == "" {
		apiAddr = "127.0.0.1:0"
	}
	home := filepath.Join(dir, strings.ToLower(id))
	if _, err := pki.Init(home, pki.InitOptions{Party: id, Addr: fedAddr, APIAddr: apiAddr, Now: issued}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range []string{"usa.xml", "pak.xml", "ind.xml"} {
		data, err := os.ReadFile(filepath.Join(policyDir(), f))
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
	return &Party{ID: id, Home: home, Sign: sk, Token: token, APIAddr: apiAddr, FedAddr: fedAddr}
}

// Options are fast federation settings for in-process nodes.
func Options(t testing.TB, clk clock.Clock, home string) node.Options {
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

// Open opens (and with start, starts) p's node; Close runs at cleanup.
func (p *Party) Open(t testing.TB, clk clock.Clock, start bool) {
	t.Helper()
	n, err := node.Open(t.Context(), p.Home, Options(t, clk, p.Home))
	if err != nil {
		t.Fatal(err)
	}
	p.N = n
	t.Cleanup(func() { n.Close() })
	if start {
		if err := n.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// ExchangeCards pins every party's card at every other party.
func ExchangeCards(t testing.TB, ps ...*Party) {
	t.Helper()
	for _, a := range ps {
		card, err := a.N.Card()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range ps {
			if a != b {
				if err := b.N.ImportCard(context.Background(), card); err != nil {
					t.Fatalf("%s imports %s's card: %v", b.ID, a.ID, err)
				}
			}
		}
	}
}

// Deal describes an agreement among parties with one channel "ops"
// whose members are all of them.
type Deal struct {
	ID                string
	Version           int    // default 1
	Supersedes        string // digest of the superseded version
	Effective, Expiry time.Time
	MaxSize           int64 // channel content limit; default 1 MiB
	Parties           []*Party
}

// policyDir is the demo's policy directory in this source tree.
func policyDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "demo", "policies")
}

func policyRef(id string) agreement.PolicyRef {
	data, err := os.ReadFile(filepath.Join(policyDir(), policyFiles[id]))
	if err != nil {
		panic(err)
	}
	return agreement.PolicyRef{Party: id, PolicyID: PolicyIDs[id], Name: id, Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(data))}
}

// Signed builds, approves and signs the agreement and returns its bytes.
func (d Deal) Signed(t testing.TB) ([]byte, string) {
	t.Helper()
	if d.Version == 0 {
		d.Version = 1
	}
	if d.MaxSize == 0 {
		d.MaxSize = 1 << 20
	}
	doc := &agreement.Document{ID: d.ID, Version: d.Version, Supersedes: d.Supersedes, Title: "Test agreement " + d.ID, Scope: []string{"operation"},
		Term: agreement.Term{Effective: d.Effective, Expiry: d.Expiry, Notice: agreement.Duration(24 * time.Hour)}}
	ceiling := map[string]string{}
	var members []string
	for _, p := range d.Parties {
		doc.Parties = append(doc.Parties, agreement.Party{ID: p.ID, Name: "Party " + p.ID, SigningAuthority: "Minister",
			Keys:          []agreement.Key{{Alg: "ed25519", Public: base64.StdEncoding.EncodeToString(p.Sign.Public().(ed25519.PublicKey))}},
			CAFingerprint: pki.Fingerprint(p.N.Identity().CACert.Raw)})
		ceiling[p.ID] = "SECRET"
		members = append(members, p.ID)
		doc.Labels.Policies = append(doc.Labels.Policies, policyRef(p.ID))
		for _, q := range d.Parties {
			if p != q {
				doc.Labels.Equivalences = append(doc.Labels.Equivalences, agreement.Equivalence{From: PolicyIDs[p.ID], To: PolicyIDs[q.ID]})
			}
		}
	}
	first := d.Parties[0]
	doc.Channels = []agreement.Channel{{Name: "ops", Scope: "operation", Members: members, Ceiling: ceiling,
		DefaultLabel: string(node.BuildLabel(first.N.Policy(PolicyIDs[first.ID]), "CONFIDENTIAL", nil, d.Effective)),
		Content:      agreement.ContentRules{MaxSize: d.MaxSize, Types: []string{"text/plain", "application/octet-stream"}}}}
	for _, p := range d.Parties {
		if err := doc.Approve(agreement.Approval{Party: p.ID, Authority: "Cabinet", Method: "decision", Date: d.Effective.Add(-24 * time.Hour), Reference: "T-1"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range d.Parties {
		if err := doc.Sign(p.ID, p.Sign); err != nil {
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

// Install installs the agreement on each of its parties and returns its
// digest.
func (d Deal) Install(t testing.TB) string {
	t.Helper()
	return d.InstallOn(t, d.Parties...)
}

// InstallOn installs the agreement on the nodes of ps only.
func (d Deal) InstallOn(t testing.TB, ps ...*Party) string {
	t.Helper()
	raw, dg := d.Signed(t)
	for _, p := range ps {
		if _, err := p.N.InstallAgreement(context.Background(), raw); err != nil {
			t.Fatalf("install %s on %s: %v", d.ID, p.ID, err)
		}
	}
	return dg
}

// Msg builds a text message from p on channel ops releasable to relTo.
func (p *Party) Msg(now time.Time, prec message.Precedence, body string, relTo ...string) *message.Message {
	return &message.Message{ID: message.NewID(), Channel: "ops", Origin: p.ID, Originator: "op", Precedence: prec, Created: now,
		Label: node.BuildLabel(p.N.Policy(PolicyIDs[p.ID]), "CONFIDENTIAL", relTo, now), ContentType: "text/plain", Body: []byte(body)}
}

// Submit submits m at p.
func (p *Party) Submit(t testing.TB, m *message.Message) *api.Receipt {
	t.Helper()
	rc, err := p.N.Submit(context.Background(), m)
	if err != nil {
		t.Fatalf("%s submit: %v", p.ID, err)
	}
	return rc
}

// Received returns the messages p's channel ops holds from origin, in
// arrival order.
func (p *Party) Received(t testing.TB, origin string) []*message.Message {
	t.Helper()
	var out []*message.Message
	var after uint64
	for {
		es, err := p.N.History(context.Background(), "ops", after, 1000)
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

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond) // polling, not waiting for an effect
	}
}

// LinkState is p's view of its link to peer.
func (p *Party) LinkState(peer string) string {
	st, err := p.N.Status(context.Background())
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

// Audits returns p's audit entries of kind (newest first).
func (p *Party) Audits(kind string) []api.AuditEntry {
	av, err := p.N.Audit(context.Background(), "", 100000)
	if err != nil {
		return nil
	}
	var out []api.AuditEntry
	for _, e := range av.Entries {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// AuditHas reports whether p's audit log holds an entry of kind with
// reason ("" is any).
func (p *Party) AuditHas(kind, reason string) bool {
	for _, e := range p.Audits(kind) {
		if reason == "" || e.Reason == reason {
			return true
		}
	}
	return false
}

// AuditCount counts p's audit entries of kind about peer ("" is any).
func (p *Party) AuditCount(kind, peer string) int {
	k := 0
	for _, e := range p.Audits(kind) {
		if peer == "" || e.Peer == peer {
			k++
		}
	}
	return k
}

// Cluster starts parties ids in-process on one simulated clock, exchanges
// their cards, and has the first dial the others (through a link
// simulator per partner when proxied).
type Cluster struct {
	Clock   *clock.Sim
	Parties map[string]*Party
	Proxies map[string]*linksim.Proxy // by dialled party
}

func NewCluster(t testing.TB, proxy linksim.Config, ids ...string) *Cluster {
	t.Helper()
	c := &Cluster{Clock: clock.NewSim(T0), Parties: map[string]*Party{}, Proxies: map[string]*linksim.Proxy{}}
	dir := t.TempDir()
	var ps []*Party
	for _, id := range ids {
		p := MakeHome(t, dir, id, "", "", nil)
		p.Open(t, c.Clock, true)
		c.Parties[id] = p
		ps = append(ps, p)
	}
	ExchangeCards(t, ps...)
	for _, p := range ps[1:] {
		ep := p.N.FederationAddr().String()
		pr, err := linksim.New(ep, proxy)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pr.Close() })
		c.Proxies[p.ID] = pr
		if err := ps[0].N.AddPeer(p.ID, pr.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// P returns the party id.
func (c *Cluster) P(id string) *Party { return c.Parties[id] }

// All returns the parties ids.
func (c *Cluster) All(ids ...string) []*Party {
	var ps []*Party
	for _, id := range ids {
		ps = append(ps, c.Parties[id])
	}
	return ps
}
