package node_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/node"
	"liaison/internal/pki"
)

// requirePeer skips, or fails when LIAISON_REQUIRE_PEERS=1 (CI).
func requirePeer(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("LIAISON_REQUIRE_PEERS") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Policies of the demo parties, read from the demo package's files.
var gwPolicies = map[string]struct{ file, id, name string }{
	"USA": {"usa.xml", "2.25.311001", "US-CIS-DEMO"},
	"PAK": {"pak.xml", "2.25.311002", "PK-CIS-DEMO"},
}

// gwCA is a test CA issuing the gateways' server certificates and the
// TAK clients' certificates.
type gwCA struct {
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	caFile string
	serial int64
}

func newGWCA(t *testing.T) *gwCA {
	t.Helper()
	c := &gwCA{dir: t.TempDir(), serial: 2}
	c.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &c.key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	c.cert, _ = x509.ParseCertificate(der)
	c.caFile = filepath.Join(c.dir, "ca.pem")
	if err := os.WriteFile(c.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// issue writes a certificate and key for cn; server certificates name
// 127.0.0.1 and dns.
func (c *gwCA) issue(t *testing.T, cn string, server bool, dns ...string) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(c.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	c.serial++
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = dns
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(c.dir, cn+".pem"), filepath.Join(c.dir, cn+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// gwNode is one party's node under test.
type gwNode struct {
	party string
	home  string
	node  *node.Node
}

// gwPair is a USA and a PAK node, federated over loopback TLS under a
// co-signed agreement with the channels named below, and restarted once
// so that the gateways start with the agreement in force (as 'liaison up'
// after installing one).
type gwPair struct {
	ca       *gwCA
	usa, pak *gwNode
}

const (
	chanSA   = "coalition-sa"   // TAK group Cyan
	chanChat = "coalition-chat" // XMPP room ops
)

// newGWPair sets both nodes up; gateways(t, party, ca) returns the gateways
// section of each node's liaison.yaml.
func newGWPair(t *testing.T, gateways func(t *testing.T, party string, ca *gwCA) string) *gwPair {
	t.Helper()
	ctx := context.Background()
	p := &gwPair{ca: newGWCA(t)}
	root := t.TempDir()
	open := func(n *gwNode) {
		t.Helper()
		nd, err := node.Open(ctx, n.home, node.Options{
			Federation:    node.FederationTuning{Heartbeat: time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Poll: 50 * time.Millisecond},
			AuditBatchAge: 5 * time.Millisecond, AuditCheckpointInterval: 100 * time.Millisecond, WitnessInterval: time.Hour,
		})
		if err != nil {
			t.Fatalf("open %s: %v", n.party, err)
		}
		if err := nd.Start(ctx); err != nil {
			nd.Close()
			t.Fatalf("start %s: %v", n.party, err)
		}
		n.node = nd
	}
	for _, party := range []string{"USA", "PAK"} {
		n := &gwNode{party: party, home: filepath.Join(root, strings.ToLower(party))}
		if _, err := pki.Init(n.home, pki.InitOptions{Party: party, Addr: "127.0.0.1:0", APIAddr: "127.0.0.1:0"}); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(n.home, "policies"), 0o755)
		var files []string
		for _, pol := range gwPolicies {
			data, err := os.ReadFile(filepath.Join("..", "demo", "policies", pol.file))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(n.home, "policies", pol.file), data, 0o644)
			files = append(files, "policies/"+pol.file)
		}
		cfg := fmt.Sprintf("party: %s\nfederation:\n  listen: 127.0.0.1:0\napi:\n  listen: \"off\"\npolicies: [%s]\n%s",
			party, strings.Join(files, ", "), gateways(t, party, p.ca))
		if err := os.WriteFile(filepath.Join(n.home, node.ConfigFile), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		open(n)
		if party == "USA" {
			p.usa = n
		} else {
			p.pak = n
		}
	}
	t.Cleanup(func() { p.usa.node.Close(); p.pak.node.Close() })

	for _, a := range []*gwNode{p.usa, p.pak} {
		card, err := a.node.Card()
		if err != nil {
			t.Fatal(err)
		}
		b := p.pak
		if a == p.pak {
			b = p.usa
		}
		if err := b.node.ImportCard(ctx, card); err != nil {
			t.Fatal(err)
		}
	}
	raw := p.agreement(t)
	for _, n := range []*gwNode{p.usa, p.pak} {
		if _, err := n.node.InstallAgreement(ctx, raw); err != nil {
			t.Fatalf("install on %s: %v", n.party, err)
		}
	}
	// Restart: the gateways read channel defaults when the node starts.
	for _, n := range []*gwNode{p.usa, p.pak} {
		if err := n.node.Close(); err != nil {
			t.Fatal(err)
		}
		open(n)
	}
	if err := p.usa.node.AddPeer("PAK", p.pak.node.FederationAddr().String()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 15*time.Second, "the USA–PAK link is up", func() bool {
		st, err := p.usa.node.Status(ctx)
		if err != nil {
			return false
		}
		for _, l := range st.Links {
			if l.Party == "PAK" && l.State == "up" {
				return true
			}
		}
		return false
	})
	return p
}

// agreement is a signed USA–PAK agreement with the test channels.
func (p *gwPair) agreement(t *testing.T) []byte {
	t.Helper()
	now := time.Now().UTC()
	effective := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	keys := map[string]ed25519.PrivateKey{}
	var parties []agreement.Party
	var refs []agreement.PolicyRef
	for _, n := range []*gwNode{p.usa, p.pak} {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		keys[n.party] = k
		parties = append(parties, agreement.Party{ID: n.party, Name: n.party + " (test)", SigningAuthority: "test",
			Keys:          []agreement.Key{{Alg: "ed25519", Public: base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))}},
			CAFingerprint: pki.Fingerprint(n.node.Identity().CACert.Raw)})
		pol := gwPolicies[n.party]
		data, _ := os.ReadFile(filepath.Join("..", "demo", "policies", pol.file))
		refs = append(refs, agreement.PolicyRef{Party: n.party, PolicyID: pol.id, Name: pol.name, Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(data))})
	}
	content := agreement.ContentRules{MaxSize: 1 << 20, Types: []string{"text/plain", "application/cot+xml"}}
	noforn := string(node.BuildLabel(p.usa.node.Policy(gwPolicies["USA"].id), "CONFIDENTIAL", nil, effective))
	d := &agreement.Document{
		ID: "gw-test", Version: 1, Title: "Gateway test agreement", Parties: parties, Scope: []string{"exercise"},
		Channels: []agreement.Channel{
			{Name: chanSA, Scope: "exercise", Members: []string{"USA", "PAK"}, Ceiling: map[string]string{"USA": "CONFIDENTIAL", "PAK": "CONFIDENTIAL"}, DefaultLabel: noforn, Content: content},
			{Name: chanChat, Scope: "exercise", Members: []string{"USA", "PAK"}, Ceiling: map[string]string{"USA": "CONFIDENTIAL", "PAK": "CONFIDENTIAL"}, DefaultLabel: noforn, Content: content},
		},
		Labels: agreement.Labels{Policies: refs, Equivalences: []agreement.Equivalence{{From: "2.25.311001", To: "2.25.311002"}, {From: "2.25.311002", To: "2.25.311001"}}},
		Term:   agreement.Term{Effective: effective, Expiry: effective.AddDate(5, 0, 0), Notice: agreement.Duration(90 * 24 * time.Hour)},
	}
	for _, party := range []string{"USA", "PAK"} {
		if err := d.Approve(agreement.Approval{Party: party, Authority: "test", Method: "signature by authorized official", Date: effective.AddDate(0, 0, -1), Reference: party + "-1"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, party := range []string{"USA", "PAK"} {
		if err := d.Sign(party, keys[party]); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// waitUntil polls cond every 20 ms until it holds, failing after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
		tk := time.NewTimer(20 * time.Millisecond)
		<-tk.C
	}
}

// dumpOnFailure logs both nodes' recent audit entries if the test failed.
func (p *gwPair) dumpOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, n := range []*gwNode{p.usa, p.pak} {
			av, err := n.node.Audit(context.Background(), "", 60)
			if err != nil {
				continue
			}
			for i := len(av.Entries) - 1; i >= 0; i-- {
				e := av.Entries[i]
				t.Logf("%s audit: %s %s peer=%s ch=%s %s %s", n.party, e.Kind, e.MessageID, e.Peer, e.Channel, e.Decision, e.Reason)
			}
		}
	})
}
