package node_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"liaison/internal/clock"
	"liaison/internal/envelope"
	"liaison/internal/federation"
	"liaison/internal/federation/linksim"
	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/node/fedtest"
	"liaison/internal/pki"
)

// recipientKey is the envelope key of p's node as its card gives it.
func recipientKey(t *testing.T, p *fedtest.Party) envelope.RecipientKey {
	t.Helper()
	raw, err := p.N.Card()
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.ParseCard(raw)
	if err != nil {
		t.Fatal(err)
	}
	return envelope.RecipientKey{Party: c.Party, Epoch: c.Epoch, PublicKey: c.HPKEPublicKey()}
}

func seal(t *testing.T, signer ed25519.PrivateKey, to envelope.RecipientKey, m *message.Message) []byte {
	t.Helper()
	b, err := envelope.NewBatch(signer, to)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Add(m); err != nil {
		t.Fatal(err)
	}
	w, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return w[0]
}

func tamper(t *testing.T, wire []byte, old, new string) []byte {
	t.Helper()
	if len(old) != len(new) || !bytes.Contains(wire, []byte(old)) {
		t.Fatalf("cannot tamper %q → %q", old, new)
	}
	return bytes.Replace(bytes.Clone(wire), []byte(old), []byte(new), 1)
}

// TestInboxRefuses hands crafted envelopes to USA's inbox: only the
// well-formed one from a partner under an agreement in force is stored,
// once however often it is replayed; every other is refused with a code
// and audited.
func TestInboxRefuses(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewSim(fedtest.T0)
	usa := fedtest.MakeHome(t, dir, "USA", "", "", nil)
	pak := fedtest.MakeHome(t, dir, "PAK", "", "", nil)
	ind := fedtest.MakeHome(t, dir, "IND", "", "", nil)
	for _, p := range []*fedtest.Party{usa, pak, ind} {
		p.Open(t, clk, false)
	}
	fedtest.ExchangeCards(t, usa, pak, ind)
	fedtest.Deal{ID: "us-pak", Effective: fedtest.T0.Add(-time.Hour), Expiry: fedtest.T0.AddDate(1, 0, 0), Parties: []*fedtest.Party{usa, pak}}.Install(t)
	toUSA := recipientKey(t, usa)
	toIND := recipientKey(t, ind)
	pakKey := pak.N.Identity().SigningKey
	_, forger, _ := ed25519.GenerateKey(rand.Reader)

	good := pak.Msg(clk.Now(), message.Priority, "genuine", "PAK", "USA")
	good.Originator = "officer-x1"
	goodWire := seal(t, pakKey, toUSA, good)
	fromIND := ind.Msg(clk.Now(), message.Priority, "no agreement", "IND", "USA")

	cases := []struct {
		name, from string
		wire       []byte
		codes      []string // any of
	}{
		{"forged signature", "PAK", seal(t, forger, toUSA, pak.Msg(clk.Now(), message.Routine, "forged", "PAK", "USA")), []string{"bad-signature"}},
		{"tampered label", "PAK", tamper(t, goodWire, "CONFIDENTIAL", "CONFIDENTIAX"), []string{"bad-signature"}},
		{"tampered header", "PAK", tamper(t, goodWire, "officer-x1", "officer-x2"), []string{"bad-signature"}},
		{"sealed to another party", "PAK", seal(t, pakKey, toIND, pak.Msg(clk.Now(), message.Routine, "for IND", "PAK", "USA")), []string{"wrong-recipient"}},
		{"wrong recipient key", "PAK", seal(t, pakKey, envelope.RecipientKey{Party: "USA", Epoch: toUSA.Epoch, PublicKey: toIND.PublicKey}, pak.Msg(clk.Now(), message.Routine, "wrong key", "PAK", "USA")), []string{"wrong-recipient", "bad-envelope"}},
		{"origin is not the link's party", "IND", goodWire, []string{"origin-mismatch"}},
		{"no agreement in force", "IND", seal(t, ind.N.Identity().SigningKey, toUSA, fromIND), []string{"no-agreement"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := node.InboxAccept(t.Context(), usa.N, tc.from, tc.wire)
			var re *federation.RefusalError
			if !errors.As(err, &re) {
				t.Fatalf("Accept = %v, want a refusal", err)
			}
			ok := false
			for _, c := range tc.codes {
				ok = ok || re.Code == c
			}
			if !ok {
				t.Fatalf("refusal code %q (%s), want one of %v", re.Code, re.Reason, tc.codes)
			}
			fedtest.Eventually(t, 5*time.Second, "refusal "+re.Code+" audited", func() bool { return usa.AuditHas("rejected", re.Code) })
		})
	}

	// The genuine envelope, twice: stored once.
	for range 2 {
		if err := node.InboxAccept(t.Context(), usa.N, "PAK", goodWire); err != nil {
			t.Fatalf("genuine envelope refused: %v", err)
		}
	}
	got := usa.Received(t, "PAK")
	if len(got) != 1 || got[0].ID != good.ID {
		t.Fatalf("USA holds %d messages from PAK, want exactly the genuine one", len(got))
	}
	if n := len(usa.Received(t, "IND")); n != 0 {
		t.Fatalf("USA holds %d messages from IND", n)
	}
}

// TestLinkRefused: links with an unknown CA, with another party's
// certificate, with an expired certificate, and with no agreement in
// force are refused and audited; nothing crosses them.
func TestLinkRefused(t *testing.T) {
	c := fedtest.NewCluster(t, linksim.Config{}, "USA", "PAK", "IND")
	usa, pak, ind := c.P("USA"), c.P("PAK"), c.P("IND")
	// No agreement with IND: the USA→IND link (dialled by NewCluster)
	// stays held; only USA–PAK is in force.
	fedtest.Deal{ID: "us-pak", Effective: fedtest.T0.Add(-time.Hour), Expiry: fedtest.T0.AddDate(1, 0, 0), Parties: c.All("USA", "PAK")}.Install(t)
	fedtest.Eventually(t, 10*time.Second, "USA–PAK link up", func() bool { return usa.LinkState("PAK") == "up" })

	dir := t.TempDir()
	t.Run("unknown CA", func(t *testing.T) {
		// A second "PAK" with its own CA, which USA never pinned.
		rogue := fedtest.MakeHome(t, dir, "PAK", "", "", nil)
		rogue.Open(t, c.Clock, true)
		card, _ := usa.N.Card()
		if err := rogue.N.ImportCard(t.Context(), card); err != nil {
			t.Fatal(err)
		}
		fedtest.Deal{ID: "rogue", Effective: fedtest.T0.Add(-time.Hour), Expiry: fedtest.T0.AddDate(1, 0, 0), Parties: []*fedtest.Party{usa, rogue}}.InstallOn(t, rogue)
		before := usa.AuditCount("link-refused", "")
		if err := rogue.N.AddPeer("USA", usa.N.FederationAddr().String()); err != nil {
			t.Fatal(err)
		}
		rogue.Submit(t, rogue.Msg(c.Clock.Now(), message.Flash, "from the rogue", "PAK", "USA"))
		fedtest.Eventually(t, 10*time.Second, "USA audits the refused link", func() bool { return usa.AuditCount("link-refused", "") > before })
	})
	t.Run("another party's certificate", func(t *testing.T) {
		// USA dials "PAK" at IND's address: IND's certificate is not PAK's.
		before := usa.AuditCount("link-refused", "PAK")
		if err := usa.N.AddPeer("PAK", ind.N.FederationAddr().String()); err != nil {
			t.Fatal(err)
		}
		c.Proxies["PAK"].CutAll()
		fedtest.Eventually(t, 10*time.Second, "USA refuses IND's certificate for PAK", func() bool { return usa.AuditCount("link-refused", "PAK") > before })
		if err := usa.N.AddPeer("PAK", c.Proxies["PAK"].Addr()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no agreement in force", func(t *testing.T) {
		// IND holds an agreement USA never installed: IND dials, USA
		// refuses.
		fedtest.Deal{ID: "us-ind", Effective: fedtest.T0.Add(-time.Hour), Expiry: fedtest.T0.AddDate(1, 0, 0), Parties: c.All("USA", "IND")}.InstallOn(t, ind)
		before := usa.AuditCount("link-refused", "IND")
		if err := ind.N.AddPeer("USA", usa.N.FederationAddr().String()); err != nil {
			t.Fatal(err)
		}
		fedtest.Eventually(t, 10*time.Second, "USA refuses IND's link", func() bool { return usa.AuditCount("link-refused", "IND") > before })
	})
	t.Run("expired certificate", func(t *testing.T) {
		old := fedtest.MakeHomeIssued(t, filepath.Join(dir, "old"), "PAK", time.Now().AddDate(-2, 0, -2))
		old.Open(t, c.Clock, true)
		card, _ := usa.N.Card()
		if err := old.N.ImportCard(t.Context(), card); err != nil {
			t.Fatal(err)
		}
		fedtest.Deal{ID: "old", Effective: fedtest.T0.Add(-time.Hour), Expiry: fedtest.T0.AddDate(1, 0, 0), Parties: []*fedtest.Party{usa, old}}.InstallOn(t, old)
		before := usa.AuditCount("link-refused", "")
		if err := old.N.AddPeer("USA", usa.N.FederationAddr().String()); err != nil {
			t.Fatal(err)
		}
		fedtest.Eventually(t, 10*time.Second, "USA refuses the expired certificate", func() bool { return usa.AuditCount("link-refused", "") > before })
	})
	if n := len(usa.Received(t, "PAK")) + len(usa.Received(t, "IND")); n != 0 {
		t.Fatalf("USA received %d messages over refused links", n)
	}
	if n := len(pak.Received(t, "USA")); n != 0 {
		t.Fatalf("PAK received %d messages", n)
	}
}
