package pki

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)

func newNode(t *testing.T, party, kem string) *Identity {
	t.Helper()
	id, err := Init(filepath.Join(t.TempDir(), party), InitOptions{Party: party, KEM: kem, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestInitLoad(t *testing.T) {
	for _, kem := range []string{"", KEMMLKEM768X25519, KEMMLKEM1024P384} {
		t.Run("kem="+kem, func(t *testing.T) {
			id := newNode(t, "XAA", kem)
			want, _ := KEMByName(kem)
			got, err := Load(id.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if got.Party != "XAA" || got.Epoch != 1 || got.KEM.ID() != want.ID() {
				t.Errorf("loaded party %q epoch %d kem %#x, want XAA 1 %#x", got.Party, got.Epoch, got.KEM.ID(), want.ID())
			}
			if !got.SigningKey.Equal(id.SigningKey) {
				t.Error("signing key differs after load")
			}
			leaf, _ := x509.ParseCertificate(got.TLSCert.Certificate[0])
			if p, err := PartyFromCert(leaf); err != nil || p != "XAA" {
				t.Errorf("PartyFromCert(leaf) = %q, %v", p, err)
			}
			if err := leaf.VerifyHostname("xaa.liaison"); err != nil {
				t.Error(err)
			}
			if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
				t.Error(err)
			}
			cfg, err := os.ReadFile(filepath.Join(id.Dir, ConfigFile))
			if err != nil || !strings.Contains(string(cfg), "party: XAA") || !strings.Contains(string(cfg), "store: \"sqlite:") {
				t.Errorf("config missing party or store: %v\n%s", err, cfg)
			}
		})
	}
}

func TestInitRefuses(t *testing.T) {
	id := newNode(t, "XAA", "")
	if _, err := Init(id.Dir, InitOptions{Party: "XAA"}); err == nil {
		t.Error("Init over an existing node succeeded")
	}
	for _, o := range []InitOptions{{Party: "x"}, {Party: "XAA", Addr: "nope"}, {Party: "XAA", KEM: "rsa"}} {
		if _, err := Init(t.TempDir(), o); err == nil {
			t.Errorf("Init(%+v) succeeded", o)
		}
	}
}

func TestLoadRefusesOpenKeyFiles(t *testing.T) {
	for _, f := range []string{SigningKeyFile, CAKeyFile, TLSKeyFile, hpkeFileName(1)} {
		t.Run(f, func(t *testing.T) {
			id := newNode(t, "XAA", "")
			path := filepath.Join(id.Dir, f)
			if err := os.Chmod(path, 0o640); err != nil {
				t.Fatal(err)
			}
			_, err := Load(id.Dir)
			if !errors.Is(err, ErrKeyFileMode) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "0640") {
				t.Errorf("Load = %v, want ErrKeyFileMode naming %s and 0640", err, path)
			}
		})
	}
}

func TestRotateRetire(t *testing.T) {
	id := newNode(t, "XAA", "")
	if err := id.Rotate(now); err != nil {
		t.Fatal(err)
	}
	if id.Epoch != 2 {
		t.Fatalf("epoch %d after rotate, want 2", id.Epoch)
	}
	re, err := Load(id.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if re.Epoch != 2 || len(re.Epochs()) != 2 {
		t.Fatalf("reloaded epochs %v current %d", re.Epochs(), re.Epoch)
	}
	if _, err := re.HPKEKey(1); err != nil {
		t.Error(err)
	}
	if err := re.Retire(2); err == nil {
		t.Error("retired the current epoch")
	}
	if err := re.Retire(1); err != nil {
		t.Fatal(err)
	}
	if _, err := re.HPKEKey(1); err == nil {
		t.Error("epoch 1 key still available after retire")
	}
	if _, err := os.Stat(filepath.Join(id.Dir, hpkeFileName(1))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("epoch 1 key file still present: %v", err)
	}
}

func TestPartyFromCert(t *testing.T) {
	id := newNode(t, "XAA", "")
	tests := []struct {
		name string
		mod  func(c *x509.Certificate)
		ok   bool
	}{
		{"ca", func(*x509.Certificate) {}, true},
		{"no uri", func(c *x509.Certificate) { c.URIs = nil }, false},
		{"org disagrees", func(c *x509.Certificate) { c.Subject.Organization = []string{"XBB"} }, false},
		{"two parties", func(c *x509.Certificate) { c.URIs = append(c.URIs, partyURI("XBB")) }, false},
	}
	for _, tt := range tests {
		c := *id.CACert
		tt.mod(&c)
		p, err := PartyFromCert(&c)
		if (err == nil) != tt.ok || (tt.ok && p != "XAA") {
			t.Errorf("%s: PartyFromCert = %q, %v", tt.name, p, err)
		}
	}
}

// handshake runs a TLS handshake over loopback TCP and returns the
// client's and the server's errors.
func handshake(t *testing.T, server, client *tls.Config) (cerr, serr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		s := tls.Server(conn, server)
		err = s.Handshake()
		s.Close()
		done <- err
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(conn, client)
	cerr = c.Handshake()
	if cerr == nil {
		// In TLS 1.3 the server verifies the client after the client's
		// handshake completes; a read surfaces the server's verdict.
		c.Read(make([]byte, 1))
		if cs := c.ConnectionState(); cs.Version != tls.VersionTLS13 || cs.CurveID != tls.X25519MLKEM768 {
			t.Errorf("negotiated version %#x with %v, want TLS 1.3 with X25519MLKEM768", cs.Version, cs.CurveID)
		}
	}
	c.Close()
	return cerr, <-done
}

func TestMutualTLS(t *testing.T) {
	xaa, xbb, xcc := newNode(t, "XAA", ""), newNode(t, "XBB", ""), newNode(t, "XCC", "")
	card := func(id *Identity) *Card {
		c, err := id.Card([]string{"127.0.0.1:7443"}, now)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	caa, cbb, ccc := card(xaa), card(xbb), card(xcc)

	var seen string
	srv := ServerConfig(xaa, []*Card{cbb}, func(p string, _ [][]*x509.Certificate) error { seen = p; return nil })
	if cerr, serr := handshake(t, srv, ClientConfig(xbb, caa, nil)); cerr != nil || serr != nil || seen != "XBB" {
		t.Fatalf("pinned partner: client %v server %v party %q", cerr, serr, seen)
	}
	// XCC is not pinned by XAA.
	if _, serr := handshake(t, srv, ClientConfig(xcc, caa, nil)); serr == nil {
		t.Error("server accepted an unpinned client")
	}
	// XBB dials XAA but pins XCC's card for it.
	wrong := *ccc
	wrong.Node = caa.Node
	if cerr, _ := handshake(t, srv, ClientConfig(xbb, &wrong, nil)); cerr == nil {
		t.Error("client accepted a server outside its pinned CA")
	}
	// A dynamic server picks up a newly pinned partner.
	pinned := []*Card{cbb}
	dyn := DynamicServerConfig(xaa, func() []*Card { return pinned }, nil)
	if _, serr := handshake(t, dyn, ClientConfig(xcc, caa, nil)); serr == nil {
		t.Error("dynamic server accepted XCC before its card was pinned")
	}
	pinned = append(pinned, ccc)
	if cerr, serr := handshake(t, dyn, ClientConfig(xcc, caa, nil)); cerr != nil || serr != nil {
		t.Errorf("dynamic server after pinning XCC: client %v server %v", cerr, serr)
	}
	// The verifier can refuse a pinned party.
	refuse := ServerConfig(xaa, []*Card{cbb}, func(string, [][]*x509.Certificate) error { return errors.New("no agreement") })
	if _, serr := handshake(t, refuse, ClientConfig(xbb, caa, nil)); serr == nil {
		t.Error("server accepted a party its verifier refused")
	}
}

func ed25519Sign(id *Identity, msg []byte) []byte { return ed25519.Sign(id.SigningKey, msg) }

func TestZeroiseCurrent(t *testing.T) {
	id := newNode(t, "XAA", "")
	if err := id.Zeroise(1); err != nil {
		t.Fatal(err)
	}
	if _, err := id.HPKEKey(1); err == nil {
		t.Error("zeroised key still available")
	}
	if _, err := Load(id.Dir); err == nil {
		t.Error("loaded a home without any hpke key")
	}
	if err := id.Rotate(now); err != nil {
		t.Fatal(err)
	}
	if e, k := id.Current(); e != 2 || k == nil || len(id.Epochs()) != 1 {
		t.Errorf("after zeroise and rotate: epoch %d, epochs %v", e, id.Epochs())
	}
	if _, err := Load(id.Dir); err != nil {
		t.Error(err)
	}
	if err := id.Zeroise(7); err == nil {
		t.Error("zeroised an unknown epoch")
	}
}
