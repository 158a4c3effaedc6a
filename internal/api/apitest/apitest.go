// Package apitest provides an in-memory api.Backend for tests of the API
// and of the console.
//
// Two fakes joined with [Link] behave as two federated nodes: a message
// submitted on one appears in the other's History and Subscribe. A fake
// with a QuarantineWord holds messages whose body contains it until two
// different reviewers release them.
package apitest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"liaison/internal/api"
	"liaison/internal/message"
)

// TestLabel is a placeholder label the fake accepts without parsing.
const TestLabel = `<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"/>`

// TestLabelRestricted is a second placeholder label, offered after
// TestLabel in the fake's catalogue.
const TestLabelRestricted = `<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"><Classification>RESTRICTED</Classification></originatorConfidentialityLabel>`

// catalog is the fake's label catalogue, the same on every channel.
var catalog = []api.LabelChoice{
	{Marking: "XAA CONFIDENTIAL", Label: TestLabel, Colour: "#1f5fbf"},
	{Marking: "XAA RESTRICTED", Label: TestLabelRestricted, Colour: "#f0c000"},
}

// Fake is an in-memory api.Backend. It keeps messages, applies a
// two-person rule and streams new messages, so that tests of the API and
// the console exercise their own behaviour (auth, validation, encoding,
// streaming) rather than a node's.
type Fake struct {
	// QuarantineWord, if set before use, holds every submitted message
	// whose body contains it for review instead of delivering it.
	QuarantineWord string

	mu       sync.Mutex
	party    string
	epoch    uint32
	Msgs     []*message.Message // guarded by mu once the fake is shared
	seen     map[message.ID]uint64
	recips   map[message.ID][]api.Recipient
	approved map[string][]string
	held     map[string]*api.Held
	audit    []api.AuditEntry
	peers    []*Fake
	changed  chan struct{} // closed and replaced when Msgs grows
}

// NewFake returns a Fake serving party.
func NewFake(party string) *Fake {
	return &Fake{party: party, seen: map[message.ID]uint64{}, recips: map[message.ID][]api.Recipient{},
		approved: map[string][]string{}, held: map[string]*api.Held{}, changed: make(chan struct{})}
}

// Link federates a and b: from then on a message submitted (or released
// from quarantine) on one is delivered to the other.
func Link(a, b *Fake) {
	a.mu.Lock()
	a.peers = append(a.peers, b)
	a.mu.Unlock()
	b.mu.Lock()
	b.peers = append(b.peers, a)
	b.mu.Unlock()
}

func (f *Fake) Party() string { return f.party }

// appendLocked stores m, wakes subscribers and returns m's sequence number.
func (f *Fake) appendLocked(m *message.Message) uint64 {
	f.Msgs = append(f.Msgs, m)
	seq := uint64(len(f.Msgs))
	f.seen[m.ID] = seq
	close(f.changed)
	f.changed = make(chan struct{})
	return seq
}

func (f *Fake) recordLocked(e api.AuditEntry) {
	e.Index = uint64(len(f.audit))
	e.At = time.Now().UTC()
	f.audit = append(f.audit, e)
}

// receive stores a message delivered by a linked peer.
func (f *Fake) receive(m *message.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.seen[m.ID]; ok {
		return
	}
	f.appendLocked(m)
	f.recordLocked(api.AuditEntry{Kind: "receive", MessageID: m.ID.String(), Peer: m.Origin, Channel: m.Channel, Decision: "accept"})
}

// SubmitBatch submits each message with Submit, in order.
func (f *Fake) SubmitBatch(ctx context.Context, ms []*message.Message) []api.SubmitResult {
	out := make([]api.SubmitResult, len(ms))
	for i, m := range ms {
		out[i].Receipt, out[i].Err = f.Submit(ctx, m)
	}
	return out
}

func (f *Fake) Submit(ctx context.Context, m *message.Message) (*api.Receipt, error) {
	f.mu.Lock()
	if seq, ok := f.seen[m.ID]; ok {
		f.mu.Unlock()
		return &api.Receipt{ID: m.ID, Seq: seq, Duplicate: true}, nil
	}
	if m.Channel == "closed" {
		f.mu.Unlock()
		return nil, api.Errorf(http.StatusConflict, "no-agreement", "no agreement in force covers channel %q", m.Channel)
	}
	seq := f.appendLocked(m)
	peers := slices.Clone(f.peers)
	hold := f.QuarantineWord != "" && bytes.Contains(m.Body, []byte(f.QuarantineWord))
	var rs []api.Recipient
	if len(peers) == 0 {
		rs = []api.Recipient{{Party: "XBB", State: "queued"}}
	}
	for _, p := range peers {
		r := api.Recipient{Party: p.party, State: "delivered", At: time.Now().UTC()}
		if hold {
			r = api.Recipient{Party: p.party, State: "quarantined", Reason: fmt.Sprintf("body contains %q", f.QuarantineWord)}
			f.held[m.ID.String()+"/"+p.party] = &api.Held{ID: m.ID, Recipient: p.party, Channel: m.Channel, Origin: m.Origin,
				Reason: r.Reason, Needed: 2, Since: time.Now().UTC()}
		}
		rs = append(rs, r)
		f.recordLocked(api.AuditEntry{Kind: "submit", MessageID: m.ID.String(), Peer: p.party, Channel: m.Channel, Decision: r.State, Reason: r.Reason, Actor: m.Originator})
	}
	f.recips[m.ID] = rs
	f.mu.Unlock()
	if !hold {
		for _, p := range peers {
			p.receive(m)
		}
	}
	return &api.Receipt{ID: m.ID, Seq: seq, Recipients: rs}, nil
}

func (f *Fake) History(ctx context.Context, channel string, after uint64, limit int) ([]api.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.historyLocked(channel, after, limit), nil
}

func (f *Fake) historyLocked(channel string, after uint64, limit int) []api.Entry {
	var es []api.Entry
	for i, m := range f.Msgs {
		if uint64(i+1) > after && m.Channel == channel && len(es) < limit {
			e := api.Entry{Seq: uint64(i + 1), Message: m, Recipients: slices.Clone(f.recips[m.ID])}
			for _, c := range catalog {
				if c.Label == string(m.Label) {
					e.Marking, e.Colour = c.Marking, c.Colour
				}
			}
			es = append(es, e)
		}
	}
	return es
}

func (f *Fake) Subscribe(ctx context.Context, channel string, after uint64) (<-chan api.Entry, error) {
	out := make(chan api.Entry)
	go func() {
		defer close(out)
		for {
			f.mu.Lock()
			es := f.historyLocked(channel, after, 1000)
			changed := f.changed
			f.mu.Unlock()
			for _, e := range es {
				select {
				case out <- e:
					after = e.Seq
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (f *Fake) MessageStatus(ctx context.Context, id message.ID) (*api.MessageStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.seen[id]; !ok {
		return nil, api.Errorf(http.StatusNotFound, "not-found", "no message %s", id)
	}
	return &api.MessageStatus{ID: id, Recipients: []api.Recipient{{Party: "XBB", State: "delivered"}}}, nil
}

func (f *Fake) agreements() []api.Agreement {
	f.mu.Lock()
	defer f.mu.Unlock()
	parties := []string{f.party}
	for _, p := range f.peers {
		parties = append(parties, p.party)
	}
	now := time.Now().UTC()
	return []api.Agreement{{ID: "cis", Version: 1, Title: "Exercise CIS agreement", Status: "in force", Parties: parties,
		Scope: []string{"exercise"}, Channels: []string{"exercise"}, Effective: now.AddDate(0, -1, 0), Expiry: now.AddDate(0, 11, 0)}}
}

func (f *Fake) Agreements(ctx context.Context) ([]api.Agreement, error) { return f.agreements(), nil }

func (f *Fake) InstallAgreement(ctx context.Context, yaml []byte) (*api.Agreement, error) {
	if !strings.Contains(string(yaml), "signatures") {
		return nil, api.Errorf(http.StatusUnprocessableEntity, "agreement-invalid", "signatures: missing")
	}
	return &api.Agreement{ID: "cis", Version: 2}, nil
}

// May allows the fake's party to send to each linked peer, and XAA to XBB.
func (f *Fake) May(ctx context.Context, from, to, channel string) api.Permit {
	f.mu.Lock()
	defer f.mu.Unlock()
	if from == "XAA" && to == "XBB" {
		return api.Permit{Allowed: true, Reason: "fake", Agreement: "cis"}
	}
	for _, p := range f.peers {
		if from == f.party && to == p.party {
			return api.Permit{Allowed: true, Reason: "fake: linked peer", Agreement: "cis"}
		}
	}
	return api.Permit{Allowed: false, Reason: "fake: no agreement between " + from + " and " + to}
}

func (f *Fake) Quarantine(ctx context.Context) ([]api.Held, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var hs []api.Held
	for _, h := range f.held {
		c := *h
		c.Approvals = slices.Clone(h.Approvals)
		hs = append(hs, c)
	}
	slices.SortFunc(hs, func(a, b api.Held) int { return a.Since.Compare(b.Since) })
	return hs, nil
}

// Review applies the two-person rule. A held message released by two
// different reviewers is delivered to its recipient if that is a linked
// peer.
func (f *Fake) Review(ctx context.Context, id message.ID, recipient, reviewer string, approve bool) (*api.ReviewResult, error) {
	f.mu.Lock()
	k := id.String() + "/" + recipient
	h := f.held[k]
	decision := "deny"
	if approve {
		decision = "approve"
	}
	if slices.Contains(f.approved[k], reviewer) {
		f.mu.Unlock()
		return nil, api.Errorf(http.StatusConflict, "already-reviewed", "%s has already approved", reviewer)
	}
	f.recordLocked(api.AuditEntry{Kind: "review", MessageID: id.String(), Peer: recipient, Decision: decision, Actor: reviewer})
	if !approve {
		delete(f.held, k)
		f.mu.Unlock()
		return &api.ReviewResult{Outcome: "denied"}, nil
	}
	f.approved[k] = append(f.approved[k], reviewer)
	res := &api.ReviewResult{Outcome: "pending", Approvals: slices.Clone(f.approved[k])}
	if h != nil {
		h.Approvals = slices.Clone(f.approved[k])
		h.Needed = max(2-len(h.Approvals), 0)
	}
	var deliver *Fake
	var m *message.Message
	if len(f.approved[k]) >= 2 {
		res.Outcome = "released"
		if h != nil {
			delete(f.held, k)
			m = f.Msgs[f.seen[id]-1]
			for i, r := range f.recips[id] {
				if r.Party == recipient {
					f.recips[id][i] = api.Recipient{Party: recipient, State: "delivered", At: time.Now().UTC()}
				}
			}
			for _, p := range f.peers {
				if p.party == recipient {
					deliver = p
				}
			}
			f.recordLocked(api.AuditEntry{Kind: "release", MessageID: id.String(), Peer: recipient, Channel: m.Channel, Decision: "released", Actor: strings.Join(res.Approvals, ", ")})
		}
	}
	f.mu.Unlock()
	if deliver != nil {
		deliver.receive(m)
	}
	return res, nil
}

func (f *Fake) Status(ctx context.Context) (*api.NodeStatus, error) {
	st := &api.NodeStatus{Party: f.party, Time: time.Now().UTC(), Agreements: f.agreements(), Queues: map[string]map[string]int{}}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.peers {
		st.Links = append(st.Links, api.Link{Party: p.party, State: "up"})
	}
	st.Audit = &api.AuditStatus{Size: uint64(len(f.audit))}
	return st, nil
}

func (f *Fake) Catalog(ctx context.Context, channel string) ([]api.LabelChoice, error) {
	return slices.Clone(catalog), nil
}

// Audit returns the entries the fake recorded for submissions, receipts
// and reviews, newest first.
func (f *Fake) Audit(ctx context.Context, id string, limit int) (*api.AuditView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	av := &api.AuditView{Status: &api.AuditStatus{Size: uint64(len(f.audit))}}
	for i := len(f.audit) - 1; i >= 0 && len(av.Entries) < limit; i-- {
		if id == "" || f.audit[i].MessageID == id {
			av.Entries = append(av.Entries, f.audit[i])
		}
	}
	return av, nil
}

// RotateKey pretends to rotate and returns the next epoch.
func (f *Fake) RotateKey(ctx context.Context) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch++
	return f.epoch, nil
}

func (f *Fake) Ready(ctx context.Context) error { return nil }
