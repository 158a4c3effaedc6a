package demo

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
	"strings"
	"time"

	"liaison/internal/clock"
	"liaison/internal/federation/linksim"
	"liaison/internal/node"
	"liaison/internal/pki"
)

// dirtyList is the dirty-word list the CIS-MOA's channels name.
const dirtyList = "cis-moa"

var dirtyWords = []string{"KESTREL", "NIGHTJAR"}

func (s *story) setup(ctx context.Context) error {
	s.clock = clock.NewSim(date(2005, time.September, 1))
	s.n.Say("Simulated clock starts on %s; every node takes its time from it.", s.clock.Now().Format("2 January 2006"))
	for _, spec := range []struct{ id, name, policy, oid string }{
		{"USA", "United States of America", "usa.xml", "2.25.311001"},
		{"PAK", "Islamic Republic of Pakistan", "pak.xml", "2.25.311002"},
		{"IND", "Republic of India", "ind.xml", "2.25.311003"},
	} {
		p, err := s.newParty(ctx, spec.id, spec.name, spec.policy)
		if p != nil {
			p.policyID = spec.oid
		}
		if err != nil {
			return fmt.Errorf("%s node: %w", spec.id, err)
		}
		s.parties[spec.id] = p
	}
	usa, pak, ind := s.parties["USA"], s.parties["PAK"], s.parties["IND"]

	// The USA–PAK link runs through a link simulator, so the story can
	// cut it; USA dials both partners.
	proxy, err := linksim.New(pak.node.FederationAddr().String(), linksim.Config{})
	if err != nil {
		return err
	}
	s.proxy = proxy

	// Partners exchange and pin each other's signed node cards.
	for _, a := range []*party{usa, pak, ind} {
		card, err := a.node.Card()
		if err != nil {
			return err
		}
		for _, b := range []*party{usa, pak, ind} {
			if a != b {
				if err := b.node.ImportCard(ctx, card); err != nil {
					return fmt.Errorf("%s imports %s's card: %w", b.id, a.id, err)
				}
			}
		}
	}
	if err := usa.node.AddPeer("PAK", proxy.Addr()); err != nil {
		return err
	}
	if err := usa.node.AddPeer("IND", ind.node.FederationAddr().String()); err != nil {
		return err
	}
	for _, p := range []*party{usa, pak, ind} {
		s.n.Say("%-3s node up: federation %s, API https://%s/ (home %s)", p.id, p.node.FederationAddr(), p.node.APIAddr(), p.home)
	}
	s.n.Say("Each node pinned its partners' cards (CA fingerprint, signing key, ML-KEM-768+X25519 HPKE key).")
	s.n.Check(usa.node.May(ctx, "USA", "PAK", "exercise").Allowed == false, "before any agreement, USA may not send to PAK (%s)", usa.node.May(ctx, "USA", "PAK", "exercise").Reason)
	return nil
}

func (s *story) newParty(ctx context.Context, id, name, policy string) (*party, error) {
	home := filepath.Join(s.dir, strings.ToLower(id))
	if _, err := pki.Init(home, pki.InitOptions{Party: id, Addr: "127.0.0.1:0", APIAddr: "127.0.0.1:0", Now: time.Now()}); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(home, "policies"), 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, f := range []string{"usa.xml", "pak.xml", "ind.xml"} {
		data, err := policies.ReadFile("policies/" + f)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(home, "policies", f), data, 0o644); err != nil {
			return nil, err
		}
		files = append(files, "policies/"+f)
	}
	p := &party{id: id, name: name, home: home, policy: policy, tokens: map[string]string{}}
	var tokens strings.Builder
	for _, u := range []struct{ name, role string }{{"operator", "operator"}, {"officer", "sender"}, {"reviewer-a", "reviewer"}, {"reviewer-b", "reviewer"}, {"auditor", "auditor"}} {
		t := randomToken()
		p.tokens[u.name] = t
		sum := sha256.Sum256([]byte(t))
		fmt.Fprintf(&tokens, "    - {name: %s, sha256: %q, roles: [%s]}\n", u.name, hex.EncodeToString(sum[:]), u.role)
	}
	if err := os.WriteFile(filepath.Join(home, "operator.token"), []byte(p.tokens["operator"]+"\n"), 0o600); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`# Written by 'liaison demo'.
party: %s
federation:
  listen: 127.0.0.1:0
api:
  listen: 127.0.0.1:0
  tokens:
%sstore: "sqlite:store.db"
audit:
  dir: audit
policies: [%s]
dirty_words:
  %s: [%s]
`, id, tokens.String(), strings.Join(files, ", "), dirtyList, strings.Join(dirtyWords, ", "))
	if err := os.WriteFile(filepath.Join(home, node.ConfigFile), []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logger := s.opts.Log
	if logger == nil {
		f, err := os.OpenFile(filepath.Join(home, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err := node.Open(ctx, home, node.Options{
		Clock: s.clock, Logger: logger,
		Federation:    node.FederationTuning{Heartbeat: time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Poll: 100 * time.Millisecond},
		AuditBatchAge: 5 * time.Millisecond, AuditCheckpointInterval: 100 * time.Millisecond, WitnessInterval: time.Hour,
	})
	if err != nil {
		return nil, err
	}
	p.node = n
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	_, p.signKey, err = ed25519.GenerateKey(rand.Reader)
	return p, err
}

func randomToken() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
