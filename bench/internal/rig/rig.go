// Package rig builds what Liaison's whole-system benchmarks measure: real
// nodes on loopback (each with its own home, a SQLite store on disk with
// synchronous=FULL, an audit log and TLS 1.3 federation links), a signed
// agreement between USA and PAK with one channel, and the baselines the
// benchmarks compare against (the store's own group-commit Accept rate and
// a plain database/sql append, both measured in the same run).
package rig

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/audit"
	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/pki"
)

// Channel is the benchmark channel; its members are USA and PAK.
const Channel = "bench"

// Party is one node of the rig.
type Party struct {
	ID     string
	Home   string
	Node   *node.Node
	Token  string // operator API token
	Policy string // the party's policy OID
	sign   ed25519.PrivateKey

	audited auditCount // see AuditEntries
}

// auditCount is how many entries the first leaves of a party's audit log
// hold, so that counting goes on from there.
type auditCount struct {
	mu      sync.Mutex
	leaves  uint64
	entries uint64
}

var policyOIDs = map[string]string{"USA": "2.25.311001", "PAK": "2.25.311002", "IND": "2.25.311003"}
var policyFiles = map[string]string{"USA": "usa.xml", "PAK": "pak.xml", "IND": "ind.xml"}

// policyDir finds the demo's SPIF files (internal/demo/policies) from the
// working directory upwards, so the benches run from anywhere in the repo.
func policyDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "internal", "demo", "policies")
		if _, err := os.Stat(filepath.Join(p, "usa.xml")); err == nil {
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("internal/demo/policies not found: run the bench from inside the liaison repository")
		}
		dir = up
	}
}

// LeaseBatch, when positive, overrides the nodes' federation lease batch.
var LeaseBatch int

// Extra, when set, is appended to every new party's liaison.yaml (a
// gateways section, say). "%s" in it is replaced by the party's ID.
var Extra string

// NewParty makes a node home for id under dir and opens and starts its
// node with the real clock.
func NewParty(ctx context.Context, dir, id string, logger *slog.Logger) (*Party, error) {
	home := filepath.Join(dir, strings.ToLower(id))
	if _, err := pki.Init(home, pki.InitOptions{Party: id, Addr: "127.0.0.1:0", APIAddr: "127.0.0.1:0", Now: time.Now()}); err != nil {
		return nil, err
	}
	src, err := policyDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(home, "policies"), 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, f := range []string{"usa.xml", "pak.xml", "ind.xml"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(home, "policies", f), data, 0o644); err != nil {
			return nil, err
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
dirty_words:
  bench: [KESTREL, NIGHTJAR]
`, id, hex.EncodeToString(sum[:]), strings.Join(files, ", ")) + strings.ReplaceAll(Extra, "%s", id)
	if err := os.WriteFile(filepath.Join(home, node.ConfigFile), []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p, err := OpenParty(ctx, home, id, logger)
	if err != nil {
		return nil, err
	}
	p.Token = token
	_, p.sign, _ = ed25519.GenerateKey(rand.Reader)
	return p, nil
}

// OpenParty opens and starts the node in an existing home that NewParty
// made (in another process, say), with the bench's tuning. The party it
// returns cannot sign agreements: its signing key stayed with NewParty.
func OpenParty(ctx context.Context, home, id string, logger *slog.Logger) (*Party, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n, err := node.Open(ctx, home, node.Options{
		Logger:                  logger,
		Federation:              node.FederationTuning{BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, LeaseBatch: LeaseBatch},
		AuditCheckpointInterval: 200 * time.Millisecond,
		WitnessInterval:         time.Hour,
	})
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return &Party{ID: id, Home: home, Node: n, Policy: policyOIDs[id]}, nil
}

// Label is a CONFIDENTIAL label under p's policy releasable to USA and PAK.
func (p *Party) Label() []byte {
	return node.BuildLabel(p.Node.Policy(p.Policy), "CONFIDENTIAL", []string{"USA", "PAK"}, time.Now())
}

// Message is a labelled message of size body bytes on the bench channel.
func (p *Party) Message(prec message.Precedence, lbl []byte, body []byte) *message.Message {
	return &message.Message{ID: message.NewID(), Channel: Channel, Origin: p.ID, Originator: "operator", Precedence: prec,
		Created: time.Now(), Label: lbl, ContentType: "text/plain", Body: body}
}

// Body is n bytes of random base64 text: no dirty words, and about as
// incompressible as text gets (6 bits of entropy per byte), so the wire
// figures do not flatter compression.
func Body(n int) []byte {
	raw := make([]byte, n)
	rand.Read(raw)
	return []byte(base64.StdEncoding.EncodeToString(raw)[:n])
}

// Exchange makes every party pin every other's card.
func Exchange(ctx context.Context, ps ...*Party) error {
	for _, a := range ps {
		card, err := a.Node.Card()
		if err != nil {
			return err
		}
		for _, b := range ps {
			if a != b {
				if err := b.Node.ImportCard(ctx, card); err != nil {
					return fmt.Errorf("%s imports %s's card: %w", b.ID, a.ID, err)
				}
			}
		}
	}
	return nil
}

func (p *Party) entry() agreement.Party {
	return agreement.Party{
		ID: p.ID, Name: p.ID, SigningAuthority: "Benchmark authority",
		Keys:          []agreement.Key{{Alg: "ed25519", Public: base64.StdEncoding.EncodeToString(p.sign.Public().(ed25519.PublicKey))}},
		CAFingerprint: pki.Fingerprint(p.Node.Identity().CACert.Raw),
	}
}

func policyRef(party string) (agreement.PolicyRef, error) {
	src, err := policyDir()
	if err != nil {
		return agreement.PolicyRef{}, err
	}
	data, err := os.ReadFile(filepath.Join(src, policyFiles[party]))
	if err != nil {
		return agreement.PolicyRef{}, err
	}
	sum := sha256.Sum256(data)
	name := map[string]string{"USA": "US-CIS-DEMO", "PAK": "PK-CIS-DEMO", "IND": "IN-CIS-DEMO"}[party]
	return agreement.PolicyRef{Party: party, PolicyID: policyOIDs[party], Name: name, Digest: fmt.Sprintf("sha256:%x", sum)}, nil
}

// Agree drafts, approves, signs and installs on both an agreement between
// a and b in force from yesterday for a year, with the bench channel
// (CONFIDENTIAL ceiling, dirty-word check, text/plain).
func Agree(ctx context.Context, a, b *Party) error {
	now := time.Now().UTC().Truncate(24 * time.Hour)
	ra, err := policyRef(a.ID)
	if err != nil {
		return err
	}
	rb, err := policyRef(b.ID)
	if err != nil {
		return err
	}
	dl := node.BuildLabel(a.Node.Policy(a.Policy), "CONFIDENTIAL", nil, now)
	d := &agreement.Document{
		ID: "bench-" + strings.ToLower(a.ID+"-"+b.ID), Version: 1,
		Title:   "Benchmark agreement between " + a.ID + " and " + b.ID,
		Parties: []agreement.Party{a.entry(), b.entry()},
		Scope:   []string{"exercise"},
		Channels: []agreement.Channel{{Name: Channel, Scope: "exercise", Members: []string{a.ID, b.ID},
			Ceiling:      map[string]string{a.ID: "CONFIDENTIAL", b.ID: "CONFIDENTIAL"},
			DefaultLabel: string(dl),
			Content:      agreement.ContentRules{MaxSize: 8 << 20, Types: []string{"text/plain", "application/cot+xml"}, DirtyWords: Channel}}},
		Labels: agreement.Labels{
			Policies:     []agreement.PolicyRef{ra, rb},
			Equivalences: []agreement.Equivalence{{From: a.Policy, To: b.Policy}, {From: b.Policy, To: a.Policy}},
		},
		Term: agreement.Term{Effective: now.AddDate(0, 0, -1), Expiry: now.AddDate(1, 0, 0), Notice: agreement.Duration(30 * 24 * time.Hour)},
	}
	for _, p := range []*Party{a, b} {
		if err := d.Approve(agreement.Approval{Party: p.ID, Authority: "Benchmark authority", Method: "signature", Date: now.AddDate(0, 0, -2), Reference: "BENCH-1"}); err != nil {
			return err
		}
	}
	for _, p := range []*Party{a, b} {
		if err := d.Sign(p.ID, p.sign); err != nil {
			return err
		}
	}
	raw, err := d.Marshal()
	if err != nil {
		return err
	}
	for _, p := range []*Party{a, b} {
		if _, err := p.Node.InstallAgreement(ctx, raw); err != nil {
			return fmt.Errorf("installing on %s: %w", p.ID, err)
		}
	}
	return nil
}

// LinkState is from's view of its link to to.
func LinkState(ctx context.Context, from *Party, to string) string {
	st, err := from.Node.Status(ctx)
	if err != nil {
		return "unknown"
	}
	for _, l := range st.Links {
		if l.Party == to {
			return l.State
		}
	}
	return "none"
}

// WaitFor polls cond every 20 ms until it holds or d passes.
func WaitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// AuditEntries is how many entries p's audit log holds at its latest
// checkpoint: decisions, not leaves (a leaf may group several). It reads
// only the leaves added since it last counted. If the log cannot be read
// it says so on stderr and returns the last count.
func AuditEntries(ctx context.Context, p *Party) uint64 {
	c := &p.audited
	c.mu.Lock()
	defer c.mu.Unlock()
	r := p.Node.AuditReader()
	cp, _, err := r.Checkpoint()
	if err == nil && cp.Size > c.leaves {
		var recs []audit.Record
		if recs, err = r.Entries(ctx, c.leaves, cp.Size); err == nil {
			c.leaves, c.entries = cp.Size, c.entries+uint64(len(recs))
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "counting %s's audit entries: %v\n", p.ID, err)
	}
	return c.entries
}

// SettledAuditEntries waits until p's audit checkpoint stops growing (or
// 10 s pass) and returns AuditEntries.
func SettledAuditEntries(ctx context.Context, p *Party) uint64 {
	last := AuditEntries(ctx, p)
	stable := 0
	deadline := time.Now().Add(10 * time.Second)
	for stable < 3 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		s := AuditEntries(ctx, p)
		if s == last {
			stable++
		} else {
			stable, last = 0, s
		}
	}
	return last
}
