package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/api"
	"liaison/internal/audit"
	"liaison/internal/label"
	"liaison/internal/message"
	"liaison/internal/store"
)

// The node is the API's and the console's backend.
var _ api.Backend = (*Node)(nil)

// History returns a channel's messages with their markings under this
// node's policy.
func (n *Node) History(ctx context.Context, channel string, after uint64, limit int) ([]api.Entry, error) {
	es, err := n.store.History(ctx, channel, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.Entry, 0, len(es))
	for _, e := range es {
		out = append(out, n.entry(ctx, e.Seq, e.Msg))
	}
	return out, nil
}

// entry renders one stored message for people: its marking in this
// node's policy (the alternative label under it, or the originator's).
func (n *Node) entry(ctx context.Context, seq uint64, m *message.Message) api.Entry {
	e := api.Entry{Seq: seq, Message: m}
	if l := n.LocalLabel(m); l != nil {
		n.mu.RLock()
		ps := n.policies
		n.mu.RUnlock()
		if mk, err := ps.Marking(l, n.cfg.Language); err == nil {
			e.Marking = mk
		} else {
			e.Marking = "(label cannot be displayed: " + err.Error() + ")"
		}
	}
	if m.Origin == n.party {
		if ds, err := n.store.Status(ctx, m.ID); err == nil {
			e.Recipients = recipients(ds)
		}
	}
	return e
}

// LocalLabel returns the label of m that this node's policy governs: the
// alternative label under our policy if there is one, else the
// originator's label. It returns nil if no label parses.
func (n *Node) LocalLabel(m *message.Message) *label.Label {
	own := n.policyOf(n.party)
	for _, a := range m.Alternatives {
		if l, err := parseLabel(a); err == nil && l.PolicyID() == own {
			return l
		}
	}
	l, err := parseLabel(m.Label)
	if err != nil {
		return nil
	}
	return l
}

func recipients(ds []store.Delivery) []api.Recipient {
	out := make([]api.Recipient, 0, len(ds))
	for _, d := range ds {
		out = append(out, api.Recipient{Party: d.Peer, State: string(d.State), Code: d.Code, Reason: d.Reason, At: d.At})
	}
	return out
}

// Subscribe streams a channel from after, then live, until ctx is done or
// the node closes.
func (n *Node) Subscribe(ctx context.Context, channel string, after uint64) (<-chan api.Entry, error) {
	return n.subscribe(ctx, channel, after, true), nil
}

// tailEntries is how many recent messages the tail keeps for live
// subscribers; a subscriber further behind reads the store.
const tailEntries = 4096

// tailBytes bounds the size of the messages the tail keeps.
const tailBytes = 64 << 20

// historyPoll is how often subscribers read the store when the node has no
// tail (PostgreSQL: other instances sharing the database add to the
// history without this process knowing).
const historyPoll = time.Second

// subscribe streams a channel; render adds each entry's marking and, for
// this node's own messages, per-recipient status (for people). Gateways
// need neither: they render the local label themselves, and skipping a
// status read per message per subscriber matters under load.
//
// New messages come from the tail in memory (tail.go); the store is read
// to catch up from an older position, after falling behind the tail, or
// when the node has no tail. Delivery-status changes wake only rendering
// subscribers.
func (n *Node) subscribe(ctx context.Context, channel string, after uint64, render bool) <-chan api.Entry {
	out := make(chan api.Entry, 16)
	go func() {
		defer close(out)
		send := func(seq uint64, m *message.Message) bool {
			e := api.Entry{Seq: seq, Message: m}
			if render {
				e = n.entry(ctx, seq, m)
			}
			select {
			case out <- e:
				after = seq
				return true
			case <-ctx.Done():
				return false
			}
		}
		var poll <-chan time.Time
		if n.tail == nil {
			t := time.NewTicker(historyPoll)
			defer t.Stop()
			poll = t.C
		}
		// Every entry of channel with seq <= pos has been sent or was
		// not asked for; pos >= after.
		pos := after
		var buf []tailEntry
		for {
			// Take the wake-ups before looking, so none is lost.
			var tw, hw, sw <-chan struct{}
			if n.tail != nil {
				tw = n.tail.wake.wait()
			}
			if n.tail == nil || render {
				hw = n.history.wait()
			}
			if render {
				sw = n.status.wait()
			}
			more := false
			var next uint64
			var ok bool
			if buf, next, ok = n.tail.since(channel, pos, 256, buf[:0]); ok {
				for _, e := range buf {
					if e.seq > after && !send(e.seq, e.msg) {
						return
					}
				}
				pos, more = next, len(buf) == 256
			} else {
				w, synced := n.tail.mark()
				es, err := n.store.History(ctx, channel, after, 256)
				if err != nil {
					return
				}
				for _, e := range es {
					if !send(e.Seq, e.Msg) {
						return
					}
				}
				pos, more = after, len(es) == 256
				if synced && !more {
					// The read began after every seq up to w committed.
					pos = max(after, w)
				}
			}
			clear(buf) // hold no messages while waiting
			if more {
				continue
			}
			var stall <-chan time.Time
			var timer *time.Timer
			if n.tail.stalled() {
				timer = time.NewTimer(250 * time.Millisecond)
				stall = timer.C
			}
			select {
			case <-tw:
			case <-hw:
			case <-sw:
			case <-poll:
			case <-stall:
				n.tail.expire(time.Second)
			case <-ctx.Done():
				return
			case <-n.quit: // the node is closing: end the stream
				return
			}
			if timer != nil {
				timer.Stop()
			}
		}
	}()
	return out
}

// MessageStatus is the per-recipient delivery status of a message.
func (n *Node) MessageStatus(ctx context.Context, id message.ID) (*api.MessageStatus, error) {
	m, _, err := n.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.Errorf(http.StatusNotFound, "not-found", "no message %s on this node", id)
	}
	if err != nil {
		return nil, err
	}
	ds, err := n.store.Status(ctx, id)
	if err != nil {
		return nil, err
	}
	return &api.MessageStatus{ID: id, Channel: m.Channel, Origin: m.Origin, Precedence: m.Precedence.String(), Recipients: recipients(ds)}, nil
}

// Agreements lists installed agreements with their status now.
func (n *Node) Agreements(ctx context.Context) ([]api.Agreement, error) {
	n.mu.RLock()
	set := n.agreements
	n.mu.RUnlock()
	now := n.clock.Now()
	var out []api.Agreement
	for _, d := range set.All() {
		out = append(out, agreementView(d, now))
	}
	return out, nil
}

func agreementView(d *agreement.Document, now time.Time) api.Agreement {
	st := d.StatusAt(now)
	a := api.Agreement{ID: d.ID, Version: d.Version, Title: d.Title, Scope: d.Scope, Status: st.Phase.String(), Reason: st.Reason,
		Effective: d.Term.Effective, Expiry: d.Term.Expiry, Detail: d.Summary(now)}
	if dg, err := d.Digest(); err == nil {
		a.Digest = dg.String()
	}
	for _, p := range d.Parties {
		a.Parties = append(a.Parties, p.ID)
	}
	for _, c := range d.Channels {
		a.Channels = append(a.Channels, c.Name)
	}
	return a
}

// InstallAgreement verifies and installs a signed agreement. It must be
// fully signed, name this node's party, and its policies must be loaded
// with the digests it pins.
func (n *Node) InstallAgreement(ctx context.Context, data []byte) (*api.Agreement, error) {
	d, err := agreement.Parse(data)
	if err != nil {
		return nil, api.Errorf(http.StatusUnprocessableEntity, "agreement-invalid", "%v", err)
	}
	if err := d.VerifySignatures(); err != nil {
		return nil, api.Errorf(http.StatusUnprocessableEntity, "agreement-unsigned", "%v", err)
	}
	if !d.HasParty(n.party) {
		return nil, api.Errorf(http.StatusUnprocessableEntity, "agreement-not-ours", "agreement %s does not name %s as a party", d.ID, n.party)
	}
	n.mu.RLock()
	ps := n.policies
	n.mu.RUnlock()
	for _, p := range d.Labels.Policies {
		pol := ps.Policy(p.PolicyID)
		if pol == nil {
			return nil, api.Errorf(http.StatusUnprocessableEntity, "policy-not-loaded", "labels.policies: %s's policy %s (%s) is not loaded on this node; add its SPIF to policies in liaison.yaml", p.Party, p.Name, p.PolicyID)
		}
		if p.Digest != "" && !strings.EqualFold(p.Digest, fmt.Sprintf("sha256:%x", pol.Digest())) {
			return nil, api.Errorf(http.StatusUnprocessableEntity, "policy-digest", "labels.policies: %s's policy %s has digest sha256:%x here, the agreement pins %s", p.Party, p.PolicyID, pol.Digest(), p.Digest)
		}
	}
	n.mu.Lock()
	next := n.agreements.Clone()
	err = next.Add(d)
	if err == nil {
		n.agreements = next
	}
	n.mu.Unlock()
	if err != nil {
		return nil, api.Errorf(http.StatusConflict, "agreement-refused", "%v", err)
	}
	if err := n.store.PutAgreement(ctx, d.Key(), data); err != nil {
		return nil, err
	}
	dg, _ := d.Digest()
	n.record(ctx, audit.Entry{Kind: audit.KindAgreementInstalled, Agreement: d.Key(), Decision: "installed", Detail: map[string]string{"digest": dg.String()}})
	n.reconcileLinks(ctx)
	v := agreementView(d, n.clock.Now())
	return &v, nil
}

// May answers "may from send to to on channel now?".
func (n *Node) May(ctx context.Context, from, to, channel string) api.Permit {
	n.mu.RLock()
	set := n.agreements
	n.mu.RUnlock()
	p := set.May(from, to, channel, n.clock.Now())
	out := api.Permit{Allowed: p.Allowed, Reason: p.Reason}
	if p.Agreement != nil {
		out.Agreement = p.Agreement.Key()
	}
	return out
}

// Quarantine lists messages held for review.
func (n *Node) Quarantine(ctx context.Context) ([]api.Held, error) {
	items, err := n.store.Quarantined(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Held, 0, len(items))
	for _, it := range items {
		out = append(out, api.Held{ID: it.Msg.ID, Recipient: it.Peer, Channel: it.Msg.Channel, Origin: it.Msg.Origin,
			Reason: it.Reason, Approvals: it.Approvals, Needed: max(0, 2-len(it.Approvals)), Since: it.Since})
	}
	return out, nil
}

// Review records a reviewer's verdict under the two-person rule. The
// originator may not review their own message.
func (n *Node) Review(ctx context.Context, id message.ID, recipient, reviewer string, approve bool) (*api.ReviewResult, error) {
	m, _, err := n.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.Errorf(http.StatusNotFound, "not-found", "no message %s on this node", id)
	}
	if err != nil {
		return nil, err
	}
	if m.Originator != "" && m.Originator == reviewer {
		return nil, api.Errorf(http.StatusForbidden, "own-message", "%s originated %s and may not review it", reviewer, id)
	}
	out, approvals, err := n.store.Review(ctx, id, recipient, reviewer, approve)
	switch {
	case errors.Is(err, store.ErrAlreadyReviewed):
		return nil, api.Errorf(http.StatusConflict, "already-reviewed", "%s has already approved %s for %s; a second reviewer must approve", reviewer, id, recipient)
	case errors.Is(err, store.ErrNotQuarantined):
		return nil, api.Errorf(http.StatusConflict, "not-quarantined", "%s is not held for review for %s", id, recipient)
	case err != nil:
		return nil, err
	}
	verdict := "approve"
	if !approve {
		verdict = "deny"
	}
	n.record(ctx, audit.Entry{Kind: audit.KindReviewed, MessageID: id.String(), Peer: recipient, Channel: m.Channel, Actor: reviewer, Decision: string(out), Reason: verdict})
	if out == store.ReviewReleased {
		n.record(ctx, audit.Entry{Kind: audit.KindReleased, MessageID: id.String(), Digest: digest(m.Label, m.Body), Peer: recipient, Channel: m.Channel, Decision: "queued", Reason: "two-person-review", Detail: map[string]string{"reviewers": strings.Join(approvals, ",")}})
		n.kick()
	}
	n.status.fire()
	return &api.ReviewResult{Outcome: string(out), Approvals: approvals}, nil
}

// Status is the node's state for operators.
func (n *Node) Status(ctx context.Context) (*api.NodeStatus, error) {
	as, err := n.Agreements(ctx)
	if err != nil {
		return nil, err
	}
	now := n.clock.Now()
	st := &api.NodeStatus{Party: n.party, Time: now, Agreements: as, Queues: map[string]map[string]int{}}
	n.mu.RLock()
	for _, l := range n.links {
		st.Links = append(st.Links, l)
	}
	st.Alarms = append(st.Alarms, n.alarms...)
	n.mu.RUnlock()
	sort.Slice(st.Links, func(i, j int) bool { return st.Links[i].Party < st.Links[j].Party })
	for _, a := range as {
		if a.Status == "in force" && !a.Expiry.IsZero() && a.Expiry.Sub(now) < 90*24*time.Hour {
			st.Alarms = append(st.Alarms, fmt.Sprintf("agreement %s v%d expires on %s", a.ID, a.Version, a.Expiry.Format("2006-01-02")))
		}
	}
	peers, err := n.store.Peers(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range peers {
		q, err := n.store.QueueDepth(ctx, p)
		if err != nil {
			return nil, err
		}
		m := map[string]int{}
		for prec, k := range q {
			m[prec.String()] = k
		}
		st.Queues[p] = m
	}
	st.Audit = n.auditStatus(ctx)
	st.Rates = n.rates.last(now)
	return st, nil
}

// Catalog lists the labels a sender may choose on a channel: each
// classification up to the channel's ceiling for this party, releasable to
// all members, then to this party only (NOFORN).
func (n *Node) Catalog(ctx context.Context, channel string) ([]api.LabelChoice, error) {
	now := n.clock.Now()
	n.mu.RLock()
	set, ps := n.agreements, n.policies
	n.mu.RUnlock()
	var ch *agreement.Channel
	for _, d := range set.All() {
		for i := range d.Channels {
			if d.Channels[i].Name == channel && slices.Contains(d.Channels[i].Members, n.party) {
				ch = &d.Channels[i]
			}
		}
	}
	if ch == nil {
		return nil, api.Errorf(http.StatusNotFound, "no-channel", "no agreement names channel %q with %s as a member", channel, n.party)
	}
	pol := ps.Policy(n.policyOf(n.party))
	if pol == nil {
		return nil, api.Errorf(http.StatusConflict, "policy-not-loaded", "this node's own policy is not loaded")
	}
	var out []api.LabelChoice
	classes := pol.Summary().Classifications
	sort.SliceStable(classes, func(i, j int) bool { return classes[i].Hierarchy < classes[j].Hierarchy })
	for _, cls := range classes {
		if cls.Obsolete {
			continue
		}
		for _, rel := range [][]string{ch.Members, nil} {
			xml := BuildLabel(pol, cls.Name, rel, now)
			l, err := parseLabel(xml)
			if err != nil || ps.Validate(l) != nil {
				continue
			}
			if cmp, err := ps.Compare(l, ch.Ceiling[n.party]); err != nil || cmp > 0 {
				continue
			}
			mk, err := ps.Marking(l, n.cfg.Language)
			if err != nil {
				continue
			}
			out = append(out, api.LabelChoice{Marking: mk, Label: string(xml)})
		}
	}
	return out, nil
}

// Ready reports whether the node accepts messages.
func (n *Node) Ready(ctx context.Context) error {
	if n.fedAddr == nil {
		return errors.New("not started")
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if len(n.agreements.All()) == 0 {
		return errors.New("no agreement installed: install one with 'liaison agreement install'")
	}
	return nil
}

// Audit returns recent audit entries, newest first.
func (n *Node) Audit(ctx context.Context, messageID string, limit int) (*api.AuditView, error) {
	cp, _ := n.audit.Checkpoint(ctx)
	size := checkpointSize(cp)
	var from uint64
	if messageID == "" && size > uint64(limit) {
		from = size - uint64(limit)
	}
	recs, err := n.audit.Entries(ctx, from, size)
	if err != nil {
		return nil, err
	}
	av := &api.AuditView{Status: n.auditStatus(ctx)}
	for i := len(recs) - 1; i >= 0; i-- {
		e := recs[i].Entry
		if messageID != "" && e.MessageID != messageID {
			continue
		}
		av.Entries = append(av.Entries, auditEntry(recs[i]))
		if len(av.Entries) >= limit {
			break
		}
	}
	return av, nil
}
