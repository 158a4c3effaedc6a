package xmpp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"liaison/internal/message"
)

// fakeCore is an in-memory node: it validates, stores and fans out.
type fakeCore struct {
	mu     sync.Mutex
	msgs   map[string][]*message.Message
	subs   map[string][]chan Delivery
	refuse func(*message.Message) error
}

func newFakeCore() *fakeCore {
	return &fakeCore{msgs: map[string][]*message.Message{}, subs: map[string][]chan Delivery{}}
}

func (c *fakeCore) Submit(ctx context.Context, m *message.Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if c.refuse != nil {
		if err := c.refuse(m); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.msgs[m.Channel] = append(c.msgs[m.Channel], m)
	d := Delivery{Seq: uint64(len(c.msgs[m.Channel])), Msg: m}
	subs := c.subs[m.Channel]
	c.mu.Unlock()
	for _, s := range subs {
		select {
		case s <- d:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (c *fakeCore) Subscribe(ctx context.Context, channel string, after uint64) (<-chan Delivery, error) {
	ch := make(chan Delivery, 1024)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.msgs[channel] {
		if uint64(i+1) > after {
			ch <- Delivery{Seq: uint64(i + 1), Msg: m}
		}
	}
	c.subs[channel] = append(c.subs[channel], ch)
	return ch, nil
}

func (c *fakeCore) count(channel string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs[channel])
}

// fakeLabels is a fictitious policy XPOL (OID 2.25.1) with three
// classifications. A clearance is the name of the highest classification.
type fakeLabels struct{ ceilings map[string]string }

var classRank = map[string]int{"UNCLASSIFIED": 1, "RESTRICTED": 2, "SECRET": 3}

var classRE = regexp.MustCompile(`<(?:\w+:)?Classification>([A-Z]+)</(?:\w+:)?Classification>`)

func fakeLabel(class string) []byte {
	return []byte(`<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0">` +
		`<ConfidentialityInformation><PolicyIdentifier URI="urn:oid:2.25.1">XPOL</PolicyIdentifier>` +
		`<Classification>` + class + `</Classification></ConfidentialityInformation>` +
		`<CreationDateTime>2026-03-01T06:00:00Z</CreationDateTime></originatorConfidentialityLabel>`)
}

func labelClass(l []byte) string {
	m := classRE.FindSubmatch(l)
	if m == nil {
		return ""
	}
	return string(m[1])
}

func (f fakeLabels) Parse(b []byte) ([]byte, error) {
	c := labelClass(b)
	if classRank[c] == 0 {
		return nil, fmt.Errorf("unknown classification %q", c)
	}
	return fakeLabel(c), nil
}

func (f fakeLabels) Marking(l []byte, lang string) (string, string, string, error) {
	c := labelClass(l)
	if classRank[c] == 0 {
		return "", "", "", errors.New("no classification")
	}
	bg := map[string]string{"UNCLASSIFIED": "white", "RESTRICTED": "orange", "SECRET": "red"}[c]
	return "XPOL " + c, "black", bg, nil
}

func (f fakeLabels) ACDF(l, clearance []byte) (bool, string) {
	c := labelClass(l)
	if classRank[c] == 0 || classRank[c] > classRank[string(clearance)] {
		return false, fmt.Sprintf("classification %s above clearance %s", c, clearance)
	}
	return true, ""
}

func (f fakeLabels) Catalog(channel string) []CatalogItem {
	return []CatalogItem{
		{Selector: "XPOL|UNCLASSIFIED", Label: fakeLabel("UNCLASSIFIED"), Default: true},
		{Selector: "XPOL|RESTRICTED", Label: fakeLabel("RESTRICTED")},
		{Selector: "XPOL|SECRET", Label: fakeLabel("SECRET")},
	}
}

func (f fakeLabels) DefaultLabel(channel string) []byte { return fakeLabel("UNCLASSIFIED") }

func (f fakeLabels) Permit(l []byte, room string) (bool, string) {
	ceil, ok := f.ceilings[room]
	if !ok {
		return false, "room has no ceiling"
	}
	if classRank[labelClass(l)] > classRank[ceil] {
		return false, "above room ceiling " + ceil
	}
	return true, ""
}

type auditRec struct{ kind, id, reason string }

type fakeAuditor struct {
	mu   sync.Mutex
	recs []auditRec
}

func (a *fakeAuditor) Record(_ context.Context, kind, id, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, auditRec{kind, id, reason})
}

func (a *fakeAuditor) kinds() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for _, r := range a.recs {
		out[r.kind]++
	}
	return out
}

// testPKI is a throwaway CA with leaf certificates, written as PEM files.
type testPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	pool   *x509.CertPool
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Coalition Root CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{dir: t.TempDir(), ca: ca, caKey: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = filepath.Join(p.dir, "ca.crt")
	os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return p
}

var serial int64 = 10

// leaf issues a certificate for names (DNS SANs) and writes name.crt/.key.
func (p *testPKI) leaf(t testing.TB, cn string, dns []string, ips []net.IP) tls.Certificate {
	return p.leafAt(t, p.dir, cn, dns, ips)
}

// leafIn writes a certificate and key as dir/cn.crt and dir/cn.key.
func (p *testPKI) leafIn(t testing.TB, dir, cn string, dns []string) {
	p.leafAt(t, dir, cn, dns, nil)
}

func (p *testPKI) leafAt(t testing.TB, dir, cn string, dns []string, ips []net.IP) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: dns, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, cn+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, cn+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type testNode struct {
	users *UserMap
	srv   *Server
	core  *fakeCore
	audit *fakeAuditor
	pki   *testPKI
	addr  string
}

// startNode runs a gateway for domain c.test on a loopback port, with
// alice (SECRET) and bob (RESTRICTED) and room ops (ceiling RESTRICTED).
func startNode(t testing.TB) *testNode {
	t.Helper()
	return startNodeWith(t, newTestPKI(t), nil)
}

func startNodeWith(t testing.TB, pki *testPKI, partners []Partner) *testNode {
	t.Helper()
	return startNodeDomain(t, pki, "c.test", "XCC", partners)
}

func startNodeDomain(t testing.TB, pki *testPKI, domain, party string, partners []Partner) *testNode {
	t.Helper()
	return startNodeCore(t, pki, domain, party, partners, func(c *fakeCore) Core { return c })
}

// login opens a c2s session to n as user (alice or bob, whose password is
// the name with "pw"), closed when the test ends.
func (n *testNode) login(t testing.TB, user string) *testClient {
	t.Helper()
	tc := &tls.Config{ServerName: "c.test", RootCAs: n.pki.pool}
	c, err := dialClient(clientOpts{addr: n.addr, domain: "c.test", user: user, password: user + "pw", tls: tc})
	if err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
	t.Cleanup(c.close)
	return c
}

// startNodeCore is startNodeDomain with the gateway's Core made from the
// fake core by wrap.
func startNodeCore(t testing.TB, pki *testPKI, domain, party string, partners []Partner, wrap func(*fakeCore) Core) *testNode {
	t.Helper()
	cert := pki.leaf(t, domain, []string{domain, "conference." + domain}, []net.IP{net.IPv4(127, 0, 0, 1)})
	users := &UserMap{}
	for _, u := range []struct{ name, pw, clr string }{{"alice", "alicepw", "SECRET"}, {"bob", "bobpw", "RESTRICTED"}} {
		uu, err := NewUser(u.name, u.pw, []byte(u.clr))
		if err != nil {
			t.Fatal(err)
		}
		users.Add(uu)
	}
	n := &testNode{core: newFakeCore(), audit: &fakeAuditor{}, pki: pki, users: users}
	srv, err := New(Config{
		Domain: domain, Party: party,
		TLS:   &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pki.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12},
		Users: users, Core: wrap(n.core), Auditor: n.audit,
		Labels:   fakeLabels{ceilings: map[string]string{"ops": "RESTRICTED"}},
		Rooms:    []Room{{Name: "ops", Channel: "ops-chat"}},
		Partners: partners,
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeC2S(ln)
	t.Cleanup(func() { srv.Close() })
	n.srv, n.addr = srv, ln.Addr().String()
	return n
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
