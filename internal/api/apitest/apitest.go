// Package apitest provides an in-memory api.Backend for tests of the API
// and of the console.
package apitest

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"

	"liaison/internal/api"
	"liaison/internal/message"
)

// TestLabel is a placeholder label the fake accepts without parsing.
const TestLabel = `<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"/>`

// Fake is an in-memory api.Backend. It keeps messages, applies a
// two-person rule and streams new messages, so that tests of the API and
// the console exercise their own behaviour (auth, validation, encoding,
// streaming) rather than a node's.
type Fake struct {
	mu       sync.Mutex
	party    string
	Msgs     []*message.Message
	seen     map[message.ID]uint64
	approved map[string][]string
	notify   chan struct{}
}

// NewFake returns a Fake serving party.
func NewFake(party string) *Fake {
	return &Fake{party: party, seen: map[message.ID]uint64{}, approved: map[string][]string{}, notify: make(chan struct{}, 1)}
}

func (f *Fake) Party() string { return f.party }

func (f *Fake) Submit(ctx context.Context, m *message.Message) (*api.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq, ok := f.seen[m.ID]; ok {
		return &api.Receipt{ID: m.ID, Seq: seq, Duplicate: true}, nil
	}
	if m.Channel == "closed" {
		return nil, api.Errorf(http.StatusConflict, "no-agreement", "no agreement in force covers channel %q", m.Channel)
	}
	f.Msgs = append(f.Msgs, m)
	f.seen[m.ID] = uint64(len(f.Msgs))
	select {
	case f.notify <- struct{}{}:
	default:
	}
	return &api.Receipt{ID: m.ID, Seq: uint64(len(f.Msgs)), Recipients: []api.Recipient{{Party: "XBB", State: "queued"}}}, nil
}

func (f *Fake) History(ctx context.Context, channel string, after uint64, limit int) ([]api.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var es []api.Entry
	for i, m := range f.Msgs {
		if uint64(i+1) > after && m.Channel == channel && len(es) < limit {
			es = append(es, api.Entry{Seq: uint64(i + 1), Message: m})
		}
	}
	return es, nil
}

func (f *Fake) Subscribe(ctx context.Context, channel string, after uint64) (<-chan api.Entry, error) {
	out := make(chan api.Entry)
	go func() {
		defer close(out)
		for {
			es, _ := f.History(ctx, channel, after, 1000)
			for _, e := range es {
				select {
				case out <- e:
					after = e.Seq
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-f.notify:
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

func (f *Fake) Agreements(ctx context.Context) ([]api.Agreement, error) {
	return []api.Agreement{{ID: "cis", Version: 1, Status: "in force"}}, nil
}

func (f *Fake) InstallAgreement(ctx context.Context, yaml []byte) (*api.Agreement, error) {
	if !strings.Contains(string(yaml), "signatures") {
		return nil, api.Errorf(http.StatusUnprocessableEntity, "agreement-invalid", "signatures: missing")
	}
	return &api.Agreement{ID: "cis", Version: 2}, nil
}

func (f *Fake) May(ctx context.Context, from, to, channel string) api.Permit {
	return api.Permit{Allowed: from == "XAA" && to == "XBB", Reason: "fake"}
}

func (f *Fake) Quarantine(ctx context.Context) ([]api.Held, error) { return nil, nil }

func (f *Fake) Review(ctx context.Context, id message.ID, recipient, reviewer string, approve bool) (*api.ReviewResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := id.String() + "/" + recipient
	if !approve {
		return &api.ReviewResult{Outcome: "denied"}, nil
	}
	if slices.Contains(f.approved[k], reviewer) {
		return nil, api.Errorf(http.StatusConflict, "already-reviewed", "%s has already approved", reviewer)
	}
	f.approved[k] = append(f.approved[k], reviewer)
	out := "pending"
	if len(f.approved[k]) >= 2 {
		out = "released"
	}
	return &api.ReviewResult{Outcome: out, Approvals: f.approved[k]}, nil
}

func (f *Fake) Status(ctx context.Context) (*api.NodeStatus, error) {
	return &api.NodeStatus{Party: "XAA"}, nil
}

func (f *Fake) Catalog(ctx context.Context, channel string) ([]api.LabelChoice, error) {
	return []api.LabelChoice{{Marking: "XAA CONFIDENTIAL", Label: TestLabel}}, nil
}

func (f *Fake) Audit(ctx context.Context, id string, limit int) (*api.AuditView, error) {
	return &api.AuditView{Status: &api.AuditStatus{}}, nil
}

func (f *Fake) Ready(ctx context.Context) error { return nil }
