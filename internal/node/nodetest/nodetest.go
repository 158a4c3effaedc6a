// Package nodetest builds node homes, tokens and signed agreements for
// tests of the node and of what runs on top of it (federation crash tests,
// gateways, benchmarks). It is test support: nothing outside _test files
// should import it.
//
// The parties are the demo's fictitious USA, PAK and IND with the demo's
// SPIFs (REL TO or NOFORN required above UNCLASSIFIED). A typical test:
//
//	usa, pak := nodetest.NewHome(t, "USA", nodetest.Config{}), nodetest.NewHome(t, "PAK", nodetest.Config{})
//	n := nodetest.Start(t, usa, node.Options{})
//	nodetest.Install(t, n, nodetest.Agreement(t, time.Now(), usa, pak))
//	lbl := nodetest.Label(t, "USA", "CONFIDENTIAL", "USA", "PAK")
//
// The agreement has two channels: "exercise" (CONFIDENTIAL ceiling, the
// dirty-word list [DirtyWords]) and "sitrep" (SECRET ceiling). Use
// [Document] and [Sign] to vary it (dates, a missing signature, a wrong
// policy digest), [Home.Client] to call a node's HTTPS API with a token
// from [Home.Tokens], [Configure] to finish a home made by 'liaison init',
// and [PostgresDSN] for a fresh PostgreSQL schema (node.Options.StoreURL
// or [Config.Store]).
package nodetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"liaison/internal/agreement"
	"liaison/internal/demo"
	"liaison/internal/label"
	"liaison/internal/node"
	"liaison/internal/pki"
)

// Users are the API users every home gets, with their roles.
var Users = map[string]string{
	"operator":   "operator",
	"officer":    "sender",
	"reviewer-a": "reviewer",
	"reviewer-b": "reviewer",
	"auditor":    "auditor",
}

// DirtyWords are the words that quarantine a message on channel "exercise".
var DirtyWords = []string{"KESTREL", "NIGHTJAR"}

var policyFiles = map[string]string{"USA": "usa.xml", "PAK": "pak.xml", "IND": "ind.xml"}

// Home is a node home made for a test.
type Home struct {
	Party string
	Dir   string
	// Tokens are bearer tokens by user name (see [Users]).
	Tokens map[string]string
	// SignKey is the party's agreement-signing key (not the node key).
	SignKey ed25519.PrivateKey
}

// Config is what a home's liaison.yaml may vary. The zero value works.
type Config struct {
	// Store is the store URL; default "sqlite:store.db".
	Store string
	// APIListen and FederationListen default to "127.0.0.1:0".
	APIListen        string
	FederationListen string
}

// NewHome makes a node home for party (USA, PAK or IND) in a new
// temporary directory: pki.Init, then [Configure].
func NewHome(t testing.TB, party string, cfg Config) *Home {
	t.Helper()
	dir := filepath.Join(t.TempDir(), strings.ToLower(party))
	if _, err := pki.Init(dir, pki.InitOptions{Party: party, Addr: "127.0.0.1:0", APIAddr: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	return Configure(t, dir, party, cfg)
}

// Configure writes the demo policies, a liaison.yaml with fresh API
// tokens for [Users], and operator.token into an existing home made by
// pki.Init or 'liaison init'.
func Configure(t testing.TB, dir, party string, cfg Config) *Home {
	t.Helper()
	if _, ok := policyFiles[party]; !ok {
		t.Fatalf("nodetest: unknown party %q (want USA, PAK or IND)", party)
	}
	if cfg.Store == "" {
		cfg.Store = "sqlite:store.db"
	}
	if cfg.APIListen == "" {
		cfg.APIListen = "127.0.0.1:0"
	}
	if cfg.FederationListen == "" {
		cfg.FederationListen = "127.0.0.1:0"
	}
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	var files []string
	for name, data := range demo.Policies() {
		if err := os.WriteFile(filepath.Join(dir, "policies", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, "policies/"+name)
	}
	sort.Strings(files)
	h := &Home{Party: party, Dir: dir, Tokens: map[string]string{}}
	var users []string
	for u := range Users {
		users = append(users, u)
	}
	sort.Strings(users)
	var tokens strings.Builder
	for _, u := range users {
		tok := randomToken()
		h.Tokens[u] = tok
		sum := sha256.Sum256([]byte(tok))
		fmt.Fprintf(&tokens, "    - {name: %s, sha256: %q, roles: [%s]}\n", u, hex.EncodeToString(sum[:]), Users[u])
	}
	yml := fmt.Sprintf("party: %s\nfederation:\n  listen: %s\napi:\n  listen: %s\n  tokens:\n%sstore: %q\naudit:\n  dir: audit\npolicies: [%s]\ndirty_words:\n  cis-moa: [%s]\n",
		party, cfg.FederationListen, cfg.APIListen, tokens.String(), cfg.Store, strings.Join(files, ", "), strings.Join(DirtyWords, ", "))
	if err := os.WriteFile(filepath.Join(dir, node.ConfigFile), []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "operator.token"), []byte(h.Tokens["operator"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if _, h.SignKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	return h
}

// Start opens and starts the node of h and closes it when the test ends.
// Unset audit timings default to fast ones (5ms batches, 100ms
// checkpoints), so that Close takes a fraction of a second.
func Start(t testing.TB, h *Home, opts node.Options) *node.Node {
	t.Helper()
	if opts.AuditBatchAge == 0 {
		opts.AuditBatchAge = 5 * time.Millisecond
	}
	if opts.AuditCheckpointInterval == 0 {
		opts.AuditCheckpointInterval = 100 * time.Millisecond
	}
	ctx := context.Background()
	n, err := node.Open(ctx, h.Dir, opts)
	if err != nil {
		t.Fatalf("open %s node: %v", h.Party, err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(ctx); err != nil {
		t.Fatalf("start %s node: %v", h.Party, err)
	}
	return n
}

// Client returns an HTTPS client for the API of h's node: it trusts the
// home's CA and checks the certificate for 127.0.0.1. Send a token from
// h.Tokens as "Authorization: Bearer".
func (h *Home) Client(t testing.TB) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(h.Dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("%s/ca.crt holds no certificate", h.Dir)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, MaxIdleConnsPerHost: 16}}
}

// Policy returns the demo policy of party.
func Policy(t testing.TB, party string) *label.Policy {
	t.Helper()
	p, err := label.ParsePolicy(demo.Policies()[policyFiles[party]])
	if err != nil {
		t.Fatalf("demo policy of %s: %v", party, err)
	}
	return p
}

// Label builds a label under party's policy with classification cls,
// releasable to relTo (NOFORN when relTo is empty).
func Label(t testing.TB, party, cls string, relTo ...string) []byte {
	t.Helper()
	return node.BuildLabel(Policy(t, party), cls, relTo, time.Now())
}

// Document returns the unsigned two-party agreement "nodetest-<a>-<b>"
// between a and b, effective a day before now for ten years.
func Document(t testing.TB, now time.Time, a, b *Home) *agreement.Document {
	t.Helper()
	effective := now.Add(-24 * time.Hour).UTC().Truncate(time.Second)
	ref := func(h *Home) agreement.PolicyRef {
		data := demo.Policies()[policyFiles[h.Party]]
		p := Policy(t, h.Party)
		return agreement.PolicyRef{Party: h.Party, PolicyID: p.ID(), Name: p.Name(), Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(data))}
	}
	party := func(h *Home) agreement.Party {
		id, err := pki.Load(h.Dir)
		if err != nil {
			t.Fatal(err)
		}
		return agreement.Party{ID: h.Party, Name: "Test party " + h.Party, SigningAuthority: "Test authority",
			Keys:          []agreement.Key{{Alg: "ed25519", Public: base64.StdEncoding.EncodeToString(h.SignKey.Public().(ed25519.PublicKey))}},
			CAFingerprint: pki.Fingerprint(id.CACert.Raw)}
	}
	members := []string{a.Party, b.Party}
	content := agreement.ContentRules{MaxSize: 1 << 20, Types: []string{"text/plain", "application/json"}, DirtyWords: "cis-moa"}
	pa, pb := Policy(t, a.Party), Policy(t, b.Party)
	return &agreement.Document{
		ID: strings.ToLower("nodetest-" + a.Party + "-" + b.Party), Version: 1,
		Title:   "Test agreement between " + a.Party + " and " + b.Party,
		Parties: []agreement.Party{party(a), party(b)},
		Scope:   []string{"exercise", "operation"},
		Channels: []agreement.Channel{
			{Name: "exercise", Scope: "exercise", Members: members, Ceiling: map[string]string{a.Party: "CONFIDENTIAL", b.Party: "CONFIDENTIAL"},
				DefaultLabel: string(node.BuildLabel(pa, "CONFIDENTIAL", nil, effective)), Content: content},
			{Name: "sitrep", Scope: "operation", Members: members, Ceiling: map[string]string{a.Party: "SECRET", b.Party: "SECRET"},
				DefaultLabel: string(node.BuildLabel(pa, "CONFIDENTIAL", nil, effective)), Content: agreement.ContentRules{MaxSize: 1 << 20, Types: []string{"text/plain"}}},
		},
		Labels: agreement.Labels{
			Policies:     []agreement.PolicyRef{ref(a), ref(b)},
			Equivalences: []agreement.Equivalence{{From: pa.ID(), To: pb.ID()}, {From: pb.ID(), To: pa.ID()}},
		},
		Term: agreement.Term{Effective: effective, Expiry: effective.AddDate(10, 0, 0), Notice: agreement.Duration(180 * 24 * time.Hour)},
	}
}

// Sign records both parties' approvals of d, has both sign it, and
// returns it marshalled.
func Sign(t testing.TB, d *agreement.Document, homes ...*Home) []byte {
	t.Helper()
	for _, h := range homes {
		if err := d.Approve(agreement.Approval{Party: h.Party, Authority: "Test authority", Method: "test", Date: d.Term.Effective.Add(-time.Hour), Reference: "T-1"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range homes {
		if err := d.Sign(h.Party, h.SignKey); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Agreement is [Document] approved, signed by both parties and marshalled.
func Agreement(t testing.TB, now time.Time, a, b *Home) []byte {
	t.Helper()
	return Sign(t, Document(t, now, a, b), a, b)
}

// Install installs a signed agreement on a node.
func Install(t testing.TB, n *node.Node, doc []byte) {
	t.Helper()
	if _, err := n.InstallAgreement(context.Background(), doc); err != nil {
		t.Fatalf("install agreement on %s: %v", n.Party(), err)
	}
}

// PostgresDSN creates a fresh schema in the database named by
// LIAISON_POSTGRES_DSN, drops it when the test ends, and returns a DSN
// whose search_path selects it. It skips the test when the variable is
// unset, or fails it when LIAISON_REQUIRE_PEERS=1.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("LIAISON_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("LIAISON_REQUIRE_PEERS") == "1" {
			t.Fatal("LIAISON_POSTGRES_DSN is not set and LIAISON_REQUIRE_PEERS=1")
		}
		t.Skip("SKIPPING PostgreSQL test: set LIAISON_POSTGRES_DSN=postgres://... to run it")
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("LIAISON_POSTGRES_DSN must be a postgres:// URL for node tests, got %q", dsn)
	}
	ctx := context.Background()
	schema := "liaison_nodetest_" + randomHex(6)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to LIAISON_POSTGRES_DSN: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomToken() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
