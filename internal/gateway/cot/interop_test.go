package cot

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// takpeerDir returns interop/takpeer with its node modules, or skips.
func takpeerDir(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("../../../interop/takpeer")
	_, errNode := exec.LookPath("node")
	_, errMods := os.Stat(filepath.Join(dir, "node_modules", "@tak-ps", "node-tak"))
	if errNode != nil || errMods != nil {
		msg := "TAK peer unavailable: need node and `npm ci` in interop/takpeer"
		if os.Getenv("LIAISON_REQUIRE_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

type testPKI struct {
	dir     string
	ca      *x509.Certificate
	caKey   *ecdsa.PrivateKey
	pool    *x509.CertPool
	caFile  string
	nextSer int64
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), nextSer: 2}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Liaison test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.ca)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return p
}

// issue writes cert and key PEM files for cn and returns their paths and
// the TLS certificate.
func (p *testPKI) issue(t *testing.T, cn string, server bool) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.nextSer), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	p.nextSer++
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	certFile, keyFile = filepath.Join(p.dir, cn+".pem"), filepath.Join(p.dir, cn+".key")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// peer is one running node.js TAK client.
type peer struct {
	t     *testing.T
	stdin io.WriteCloser
	lines chan map[string]any
}

func startPeer(t *testing.T, dir, mode string, addr net.Addr, p *testPKI, cn string) *peer {
	t.Helper()
	certFile, keyFile, _ := p.issue(t, cn, false)
	cmd := exec.Command("node", "peer.mjs", mode, addr.String(), certFile, keyFile, p.caFile)
	cmd.Dir = dir
	cmd.Stderr = io.Discard
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	pr := &peer{t: t, stdin: stdin, lines: make(chan map[string]any, 100)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				pr.lines <- m
			}
		}
		close(pr.lines)
	}()
	return pr
}

// await returns the next line that has key, failing after 60 s.
func (p *peer) await(key string) map[string]any {
	p.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case m, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("peer exited while waiting for %q", key)
			}
			if e, ok := m["error"]; ok {
				p.t.Fatalf("peer error: %v", e)
			}
			if _, ok := m[key]; ok {
				return m
			}
		case <-timeout:
			p.t.Fatalf("timed out waiting for %q from peer", key)
		}
	}
}

func (p *peer) send(xml string) {
	b, _ := json.Marshal(map[string]string{"send": xml})
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatal(err)
	}
}

// tlsPair starts USA and PAK gateways with TLS listeners.
func tlsPair(t *testing.T, p *testPKI) (usa, pak *Gateway) {
	n := &fakeNet{}
	l := testLabeler()
	_, _, serverCert := p.issue(t, "gateway", true)
	start := func(party string) *Gateway {
		return startGateway(t, Config{
			Origin: party, TLS: "127.0.0.1:0",
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
			Users: map[string]User{
				strings.ToLower(party) + "-xml": {Name: strings.ToLower(party) + "-xml", Groups: []string{"Cyan"}},
				strings.ToLower(party) + "-v1":  {Name: strings.ToLower(party) + "-v1", Groups: []string{"Cyan"}},
			},
			Channels:      map[string]string{"Cyan": "coalition-sa"},
			DefaultLabels: map[string][]byte{"coalition-sa": l.Label("RESTRICTED", nil, []string{party})},
		}, n.node(party), l)
	}
	return start("USA"), start("PAK")
}

func peerEvent(uid, marks string) string {
	now := time.Now().UTC()
	return fmt.Sprintf(`<event version="2.0" uid="%s" type="a-f-G-U-C" how="m-g" time="%s" start="%s" stale="%s" %s><point lat="33.7" lon="73.1" hae="500" ce="10" le="9999999"/><detail><contact callsign="%s" endpoint="*:-1:stcp"/><__group name="Cyan" role="Team Member"/><liaison_probe answer="42">kept</liaison_probe></detail></event>`,
		uid, FormatTime(now), FormatTime(now), FormatTime(now.Add(2*time.Minute)), marks, uid)
}

func TestNodeTAKPeers(t *testing.T) {
	dir := takpeerDir(t)
	p := newTestPKI(t)
	usa, pak := tlsPair(t, p)
	_, usaAddr, _ := usa.Addrs()
	_, pakAddr, _ := pak.Addrs()

	a := startPeer(t, dir, "tak", usaAddr, p, "usa-xml")
	b := startPeer(t, dir, "tak", pakAddr, p, "pak-xml")
	a.await("pong") // node-tak pings on connect: answered locally
	b.await("pong")

	a.send(peerEvent("usa-only", `access="Unclassified" releasableTo="USA"`))
	a.send(peerEvent("unmarked", ``))
	a.send(peerEvent("usa-1", `access="Unclassified" caveat="FOUO" releasableTo="USA PAK"`))
	got := b.await("cot")["cot"].(string)
	e, err := ParseEvent([]byte(got))
	if err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	if e.UID != "usa-1" {
		t.Fatalf("PAK got %q first; USA-only, unmarked events and pings must not cross", e.UID)
	}
	for _, want := range []string{`callsign="usa-1"`, `<liaison_probe answer="42">kept</liaison_probe>`, `name="Cyan"`} {
		if !strings.Contains(string(e.Detail), want) {
			t.Errorf("detail lacks %s: %s", want, e.Detail)
		}
	}
	if e.ReleasableTo != "USA PAK" || e.Caveat != "FOUO" {
		t.Errorf("markings %q %q", e.Caveat, e.ReleasableTo)
	}

	// TAK Protocol v1 client on USA beside the XML client, both ways.
	// node-cot's to_proto drops caveat and releasableTo, so the v1 event
	// arrives unmarked and gets USA's default label: it reaches USA's XML
	// client but must not cross to PAK (fail closed).
	v := startPeer(t, dir, "v1", usaAddr, p, "usa-v1")
	v.await("ready")
	v.send(peerEvent("usa-v1", `access="Unclassified" releasableTo="USA PAK"`))
	got = a.await("cot")["cot"].(string)
	if e, err := ParseEvent([]byte(got)); err != nil || e.UID != "usa-v1" || !strings.Contains(string(e.Detail), "liaison_probe") {
		t.Fatalf("USA XML client got %v %s, want usa-v1 with detail", err, got)
	}
	a.send(peerEvent("usa-2", `access="Unclassified" releasableTo="USA PAK"`))
	got = v.await("cot")["cot"].(string)
	if e, err := ParseEvent([]byte(got)); err != nil || e.UID != "usa-2" || !strings.Contains(string(e.Detail), "liaison_probe") {
		t.Fatalf("v1 client got %v %s, want usa-2 with detail", err, got)
	}
	got = b.await("cot")["cot"].(string)
	if !strings.Contains(got, `uid="usa-2"`) {
		t.Fatalf("PAK got %s, want usa-2 (the unmarked v1 event must not cross)", got)
	}
}
