package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/api"
	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/pki"
)

var allScopes = []string{"exercise", "operation", "training", "basing", "equipment"}

// policyRef pins a party's policy by id and the digest of its SPIF.
func policyRef(partyID, file, id, name string) agreement.PolicyRef {
	data, _ := policies.ReadFile("policies/" + file)
	sum := sha256.Sum256(data)
	return agreement.PolicyRef{Party: partyID, PolicyID: id, Name: name, Digest: fmt.Sprintf("sha256:%x", sum)}
}

var (
	usPolicy = func() agreement.PolicyRef { return policyRef("USA", "usa.xml", "2.25.311001", "US-CIS-DEMO") }
	pkPolicy = func() agreement.PolicyRef { return policyRef("PAK", "pak.xml", "2.25.311002", "PK-CIS-DEMO") }
	inPolicy = func() agreement.PolicyRef { return policyRef("IND", "ind.xml", "2.25.311003", "IN-CIS-DEMO") }
)

func (s *story) partyEntry(id, authority string) agreement.Party {
	p := s.parties[id]
	return agreement.Party{
		ID: id, Name: p.name, SigningAuthority: authority,
		Keys:          []agreement.Key{{Alg: "ed25519", Public: base64.StdEncoding.EncodeToString(p.signKey.Public().(ed25519.PublicKey))}},
		CAFingerprint: pki.Fingerprint(p.node.Identity().CACert.Raw),
	}
}

// defaultLabel is the label unmarked traffic on a channel gets: it keeps
// the message home (NOFORN), so nothing unmarked crosses by default.
func defaultLabel(p *party, now time.Time) string {
	return string(node.BuildLabel(p.node.Policy(p.policyID), "CONFIDENTIAL", nil, now))
}

func (s *story) cisMOA(version int, effective, expiry time.Time, supersedes string) *agreement.Document {
	usa, pak := s.parties["USA"], s.parties["PAK"]
	content := agreement.ContentRules{MaxSize: 8 << 20, Types: []string{"text/plain", "application/json", "application/cot+xml"}, DirtyWords: dirtyList}
	return &agreement.Document{
		ID: "us-pak-cis-moa", Version: version, Supersedes: supersedes,
		Title:   "Communication Interoperability and Security Memorandum of Agreement between the United States and Pakistan",
		Parties: []agreement.Party{s.partyEntry("USA", "Under Secretary of Defense for Policy"), s.partyEntry("PAK", "Secretary of Defence")},
		Scope:   allScopes,
		Channels: []agreement.Channel{
			{Name: "exercise", Scope: "exercise", Members: []string{"USA", "PAK"}, Ceiling: map[string]string{"USA": "CONFIDENTIAL", "PAK": "CONFIDENTIAL"},
				DefaultLabel: defaultLabel(usa, effective), Content: content},
			{Name: "sitrep", Scope: "operation", Members: []string{"USA", "PAK"}, Ceiling: map[string]string{"USA": "SECRET", "PAK": "SECRET"},
				DefaultLabel: defaultLabel(pak, effective), Content: content},
		},
		Labels: agreement.Labels{
			Policies:     []agreement.PolicyRef{usPolicy(), pkPolicy()},
			Equivalences: []agreement.Equivalence{{From: "2.25.311001", To: "2.25.311002"}, {From: "2.25.311002", To: "2.25.311001"}},
		},
		Term: agreement.Term{Effective: effective, Expiry: expiry, Notice: agreement.Duration(180 * 24 * time.Hour)},
		Equipment: []agreement.Equipment{
			{Type: "tactical data link terminal", Designation: "TDL-7 (fictitious)", Serials: []string{"PK-0001", "PK-0002"}, Holder: "PAK"},
		},
	}
}

func (s *story) usIndia() *agreement.Document {
	usa := s.parties["USA"]
	effective := date(2018, time.September, 6)
	return &agreement.Document{
		ID: "us-ind-comcasa", Version: 1,
		Title:   "Communications Compatibility and Security Agreement between the United States and India",
		Parties: []agreement.Party{s.partyEntry("USA", "Under Secretary of Defense for Policy"), s.partyEntry("IND", "Defence Secretary")},
		Scope:   []string{"exercise", "operation", "equipment"},
		Channels: []agreement.Channel{
			{Name: "sitrep", Scope: "operation", Members: []string{"USA", "IND"}, Ceiling: map[string]string{"USA": "SECRET", "IND": "SECRET"},
				DefaultLabel: defaultLabel(usa, effective), Content: agreement.ContentRules{MaxSize: 8 << 20, Types: []string{"text/plain"}}},
		},
		Labels: agreement.Labels{
			Policies:     []agreement.PolicyRef{usPolicy(), inPolicy()},
			Equivalences: []agreement.Equivalence{{From: "2.25.311001", To: "2.25.311003"}, {From: "2.25.311003", To: "2.25.311001"}},
		},
		Term: agreement.Term{Effective: effective, Expiry: effective.AddDate(10, 0, 0), Notice: agreement.Duration(180 * 24 * time.Hour)},
	}
}

// approveSignInstall records each party's approval, has each sign, and
// installs the signed document on the parties' nodes.
func (s *story) approveSignInstall(ctx context.Context, d *agreement.Document, approvals []agreement.Approval) error {
	for _, a := range approvals {
		if err := d.Approve(a); err != nil {
			return fmt.Errorf("approval by %s: %w", a.Party, err)
		}
		s.n.Say("%s approves at home: %s, %s, %s (ref. %s).", a.Party, a.Authority, a.Method, a.Date.Format("2 Jan 2006"), a.Reference)
	}
	for _, p := range d.Parties {
		if err := d.Sign(p.ID, s.parties[p.ID].signKey); err != nil {
			return fmt.Errorf("signature by %s: %w", p.ID, err)
		}
	}
	if err := d.VerifySignatures(); err != nil {
		return err
	}
	dg, err := d.Digest()
	if err != nil {
		return err
	}
	s.n.Say("Both parties sign %s v%d (digest %s…).", d.ID, d.Version, dg.String()[:23])
	raw, err := d.Marshal()
	if err != nil {
		return err
	}
	for _, p := range d.Parties {
		if _, err := s.parties[p.ID].node.InstallAgreement(ctx, raw); err != nil {
			return fmt.Errorf("installing on %s: %w", p.ID, err)
		}
	}
	return nil
}

func (s *story) linkState(from, to string) string {
	st, err := s.parties[from].node.Status(context.Background())
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

func (s *story) sign2005(ctx context.Context) error {
	s.clock.Set(date(2005, time.October, 3))
	d := s.cisMOA(1, date(2005, time.October, 3), date(2020, time.October, 3), "")
	s.n.Say("USA and PAK draft %q: scope %s; 15-year term %s to %s.", d.ID, strings.Join(d.Scope, ", "), d.Term.Effective.Format("2 Jan 2006"), d.Term.Expiry.Format("2 Jan 2006"))
	s.n.Say("Channels: exercise (CONFIDENTIAL ceiling, dirty-word check) and sitrep (SECRET ceiling).")
	s.n.Check(agreement.Status(d, s.clock.Now()).Phase == agreement.Draft, "the unsigned draft is a draft: %s", agreement.Status(d, s.clock.Now()).Phase)
	err := s.approveSignInstall(ctx, d, []agreement.Approval{
		{Party: "USA", Authority: "Department of Defense", Method: "signature by authorized official", Date: date(2005, time.September, 20), Reference: "DoD-CIS-2005-014"},
		{Party: "PAK", Authority: "Federal Cabinet", Method: "cabinet decision", Date: date(2005, time.September, 28), Reference: "Cab-2005-211"},
	})
	if err != nil {
		return err
	}
	s.cisV1 = d
	s.n.Check(agreement.Status(d, s.clock.Now()).Phase == agreement.InForce, "the CIS-MOA is in force on %s", s.clock.Now().Format("2 Jan 2006"))
	s.n.Check(waitFor(ctx, 10*time.Second, func() bool { return s.linkState("USA", "PAK") == "up" }), "the USA–PAK link comes up (mutual TLS 1.3, X25519MLKEM768): %s", s.linkState("USA", "PAK"))
	s.n.Check(s.linkState("USA", "IND") != "up", "no agreement with IND yet, so no USA–IND link: %s", s.linkState("USA", "IND"))
	return nil
}

// labelFor builds a label under the sending party's policy.
func (s *story) labelFor(from, cls string, relTo ...string) []byte {
	p := s.parties[from]
	return node.BuildLabel(p.node.Policy(p.policyID), cls, relTo, s.clock.Now())
}

func (s *story) send(ctx context.Context, from, channel string, prec message.Precedence, lbl []byte, body string) (*api.Receipt, error) {
	m := &message.Message{ID: message.NewID(), Channel: channel, Origin: from, Originator: "officer", Precedence: prec,
		Created: s.clock.Now(), Label: lbl, ContentType: "text/plain; charset=utf-8", Body: []byte(body)}
	return s.parties[from].node.Submit(ctx, m)
}

// received returns the messages a party's channel history holds from origin.
func (s *story) received(ctx context.Context, at, channel, origin string) []api.Entry {
	es, err := s.parties[at].node.History(ctx, channel, 0, 1000)
	if err != nil {
		return nil
	}
	var out []api.Entry
	for _, e := range es {
		if e.Message.Origin == origin {
			out = append(out, e)
		}
	}
	return out
}

func count(es []api.Entry, id message.ID) int {
	k := 0
	for _, e := range es {
		if e.Message.ID == id {
			k++
		}
	}
	return k
}

func state(rc *api.Receipt, party string) api.Recipient {
	for _, r := range rc.Recipients {
		if r.Party == party {
			return r
		}
	}
	return api.Recipient{State: "absent"}
}

// note records a message for the closing table; its outcome is read from
// the sender's delivery status when the table is printed.
func (s *story) note(what, to string, id message.ID) {
	s.ledger = append(s.ledger, ledgerRow{when: s.clock.Now().Format("2006-01-02"), what: what, to: to, id: id})
}
