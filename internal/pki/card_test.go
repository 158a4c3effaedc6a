package pki

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCardRoundTrip(t *testing.T) {
	id := newNode(t, "XAA", "")
	c, err := id.Card([]string{"127.0.0.1:7443"}, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCard(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Party != "XAA" || got.Epoch != 1 || !got.IssuedAt().Equal(now) || got.Node != "xaa.liaison" {
		t.Errorf("parsed %+v", got)
	}
	if fp := got.CAFingerprint(); fp != Fingerprint(id.CACert.Raw) || !strings.HasPrefix(fp, "sha256:") || len(fp) != 7+64 {
		t.Errorf("fingerprint %q", fp)
	}
	if !bytes.Equal(got.HPKEPublicKey().Bytes(), id.HPKEPriv.PublicKey().Bytes()) {
		t.Error("hpke key differs")
	}
}

func TestCardTamper(t *testing.T) {
	xaa, xbb := newNode(t, "XAA", ""), newNode(t, "XBB", "")
	c, _ := xaa.Card([]string{"127.0.0.1:7443"}, now)
	other, _ := xbb.Card([]string{"127.0.0.1:7444"}, now)
	tests := []struct {
		name string
		mod  func(c *Card)
	}{
		{"endpoint", func(c *Card) { c.Endpoints = []string{"evil:1"} }},
		{"epoch", func(c *Card) { c.Epoch++ }},
		{"hpke key", func(c *Card) { c.HPKEKey = other.HPKEKey }},
		{"ca swapped", func(c *Card) { c.CACert = other.CACert }},
		{"party", func(c *Card) { c.Party, c.Node = "XBB", "xbb.liaison" }},
		{"node key re-signed", func(c *Card) {
			// An attacker with its own node key but not the CA key.
			c.SigningKey = other.SigningKey
			msg, _ := c.signedBytes()
			c.Sig = ed25519Sign(xbb, msg)
		}},
		{"no ca sig", func(c *Card) { c.CASig = nil }},
		{"version", func(c *Card) { c.Version = 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := *c
			tt.mod(&cc)
			b, err := cc.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseCard(b); !errors.Is(err, ErrBadCard) {
				t.Errorf("ParseCard = %v, want ErrBadCard", err)
			}
		})
	}
	b, _ := c.Marshal()
	if _, err := ParseCard(append(b, 0)); !errors.Is(err, ErrBadCard) {
		t.Errorf("trailing byte: %v", err)
	}
}

func TestImportCard(t *testing.T) {
	xaa, xbb := newNode(t, "XAA", ""), newNode(t, "XBB", "")
	c, _ := xbb.Card([]string{"127.0.0.1:7444"}, now)
	b, _ := c.Marshal()
	if _, err := ImportCard(xaa.Dir, b); err != nil {
		t.Fatal(err)
	}
	cards, err := LoadCards(xaa.Dir)
	if err != nil || cards["XBB"] == nil {
		t.Fatalf("LoadCards = %v, %v", cards, err)
	}
	// A card of XBB under a different CA is refused once XBB is pinned.
	imp := newNode(t, "XBB", "")
	ic, _ := imp.Card([]string{"127.0.0.1:7444"}, now.Add(1))
	ib, _ := ic.Marshal()
	if _, err := ImportCard(xaa.Dir, ib); err == nil {
		t.Error("re-pinned XBB to a different CA")
	}
	// After rotation the new card replaces the old.
	if err := xbb.Rotate(now); err != nil {
		t.Fatal(err)
	}
	c2, _ := xbb.Card([]string{"127.0.0.1:7444"}, now.Add(60e9))
	b2, _ := c2.Marshal()
	if _, err := ImportCard(xaa.Dir, b2); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(xaa.Dir, CardsDir, "XBB.card"))
	if !bytes.Equal(got, b2) {
		t.Error("pinned card not replaced")
	}
}

func FuzzParseCard(f *testing.F) {
	id, err := Init(filepath.Join(f.TempDir(), "XAA"), InitOptions{Party: "XAA", Now: now})
	if err != nil {
		f.Fatal(err)
	}
	c, _ := id.Card([]string{"127.0.0.1:7443"}, now)
	b, _ := c.Marshal()
	f.Add(b)
	f.Add([]byte{0xa0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCard(b)
		if err != nil {
			return
		}
		re, err := c.Marshal()
		if err != nil || !bytes.Equal(re, b) {
			t.Errorf("accepted card does not round-trip")
		}
	})
}
