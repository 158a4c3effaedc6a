package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/api"
	"liaison/internal/audit"
	"liaison/internal/guard"
	"liaison/internal/message"
	"liaison/internal/store"
)

// Submit accepts a message from a local sender (the API, the console or a
// gateway). The guard decides for every other member of the channel; the
// message, its de-duplication id and one queue row per released recipient
// are stored in one transaction before Submit returns. A message whose id
// was accepted before is not stored again: the receipt says duplicate.
func (n *Node) Submit(ctx context.Context, m *message.Message) (*api.Receipt, error) {
	now := n.clock.Now()
	leave := n.preempt(m)
	defer leave()
	ctx, drop := n.Announce(ctx)
	defer drop()
	p, err := n.prepare(ctx, m, n.guardRules(), now)
	if err != nil {
		return nil, err
	}
	n.leaseFlash(m, p.Routes)
	seq, dup, err := n.store.Accept(ctx, m, p.Routes, p.Audit...)
	if err != nil {
		return nil, fmt.Errorf("store message %s: %w", m.ID, err)
	}
	res := store.AcceptResult{Seq: seq, Dup: dup}
	n.handOverLeased(ctx, p, res)
	leave()
	r, err := n.accepted(ctx, p, res, now)
	if !dup {
		n.wakeForLocal()
	}
	return r, err
}

// Announce tells the store that a message is on its way to Submit or
// SubmitBatch with the returned context, so that a commit about to start
// may wait briefly for it and concurrent senders share flushes
// (store.Announcer). The API announces a message once its request's body
// is read; Submit announces it if no caller did. Call drop on every way
// out; the store ends the announcement when the message reaches it.
func (n *Node) Announce(ctx context.Context) (_ context.Context, drop func()) {
	if n.announcer == nil {
		return ctx, func() {}
	}
	return n.announcer.Announce(ctx)
}

// SubmitResult is the outcome of one message of a SubmitBatch.
type SubmitResult = api.SubmitResult

// SubmitBatch submits several messages as Submit does each, in order, with
// one store transaction for all that pass the checks: their seqs follow
// slice order. A message refused before storing gets its error and the
// rest go on; if the store write fails, every message that reached it
// gets that error (none of them is acknowledged).
func (n *Node) SubmitBatch(ctx context.Context, ms []*message.Message) []SubmitResult {
	out := make([]SubmitResult, len(ms))
	if len(ms) == 0 {
		return out
	}
	now := n.clock.Now()
	leave := n.preempt(ms...)
	defer leave()
	ctx, drop := n.Announce(ctx)
	defer drop()
	rules := n.guardRules()
	items := make([]store.AcceptItem, 0, len(ms))
	idx := make([]int, 0, len(ms))
	for i, m := range ms {
		p, err := n.prepare(ctx, m, rules, now)
		if err != nil {
			out[i].Err = err
			continue
		}
		n.leaseFlash(m, p.Routes)
		items = append(items, p)
		idx = append(idx, i)
	}
	if len(items) == 0 {
		return out
	}
	res, err := n.store.AcceptBatch(ctx, items)
	if err == nil && len(res) != len(items) {
		err = fmt.Errorf("store returned %d results for %d messages", len(res), len(items))
	}
	if err != nil {
		for _, i := range idx {
			out[i].Err = fmt.Errorf("store message %s: %w", ms[i].ID, err)
		}
		return out
	}
	for k := range idx {
		n.handOverLeased(ctx, items[k], res[k])
	}
	leave()
	fresh := false
	for k, i := range idx {
		out[i].Receipt, out[i].Err = n.accepted(ctx, items[k], res[k], now)
		fresh = fresh || !res[k].Dup
	}
	if fresh {
		n.wakeForLocal()
	}
	return out
}

// wakeForLocal wakes what follows new local messages: the audit pump, the
// history's streams and the links.
func (n *Node) wakeForLocal() {
	n.pumpAudit()
	n.history.fire()
	n.kick()
}

// maxFlashPause bounds each wait of bulk work for a FLASH submission (see
// flashGate).
const maxFlashPause = 50 * time.Millisecond

// preempt makes the node's bulk work wait while ms, if one of them is a
// FLASH message, are checked, stored and handed to their links (see
// flashGate). The returned func ends that; calling it again does nothing.
func (n *Node) preempt(ms ...*message.Message) (leave func()) {
	for _, m := range ms {
		if m.Precedence == message.Flash {
			return n.flash.enter()
		}
	}
	return func() {}
}

// leaseFlash marks the queued routes of a FLASH message to partners whose
// link is up to be stored leased (Route.LeaseFor): once stored, the
// message goes to those links by hand (handOverLeased) instead of waiting
// for them to lease it, a store write of their own behind whatever the
// writer is doing.
func (n *Node) leaseFlash(m *message.Message, routes []store.Route) {
	if m.Precedence != message.Flash || n.fed == nil {
		return
	}
	for i := range routes {
		if r := &routes[i]; r.State == store.Queued && n.fed.Connected(r.Peer) {
			r.LeaseFor = n.leaseFor()
		}
	}
}

// handOverLeased hands a message just stored (not a duplicate) to the link
// of each route that leaseFlash stored leased.
func (n *Node) handOverLeased(ctx context.Context, it store.AcceptItem, res store.AcceptResult) {
	if res.Dup {
		return
	}
	for _, r := range it.Routes {
		if r.LeaseFor > 0 {
			n.outbox.handOver(ctx, r.Peer, it.Msg, res.Seq)
		}
	}
}

// prepare checks a local message, runs the guard for every other member of
// its channel and returns what the store takes for it: routes and the
// audit records written with it. A refusal is audited here.
func (n *Node) prepare(ctx context.Context, m *message.Message, rules guard.Rules, now time.Time) (store.AcceptItem, error) {
	if m.Origin == "" {
		m.Origin = n.party
	}
	if m.Origin != n.party {
		return store.AcceptItem{}, api.Errorf(http.StatusBadRequest, "bad-origin", "origin %q is not this node's party %q", m.Origin, n.party)
	}
	if err := m.Validate(); err != nil {
		return store.AcceptItem{}, api.Errorf(http.StatusBadRequest, "bad-message", "%v", err)
	}
	members, err := n.channelMembers(rules.Agreements, m.Channel)
	if err != nil {
		n.metrics.decisions.WithLabelValues("", "deny", guard.CodeNoAgreement).Inc()
		n.record(ctx, audit.Entry{Kind: audit.KindDenied, MessageID: m.ID.String(), Channel: m.Channel, Decision: "deny", Reason: guard.CodeNoAgreement})
		return store.AcceptItem{}, err
	}

	// The label must be valid under our policy before anything else: an
	// invalid label is refused at the door, not stored and denied later.
	if d := n.checkOwnLabel(rules, m); d != nil {
		n.record(ctx, audit.Entry{Kind: audit.KindDenied, MessageID: m.ID.String(), Channel: m.Channel, Decision: "deny", Reason: d.Code})
		return store.AcceptItem{}, api.Errorf(http.StatusUnprocessableEntity, d.Code, "%s", d.Reason)
	}

	var routes []store.Route
	var alts [][]byte
	for _, to := range members {
		if to == n.party {
			continue
		}
		d := guard.Decide(m, to, now, rules)
		state, reason := outcome(d)
		routes = append(routes, store.Route{Peer: to, State: state, Code: d.Code, Reason: reason})
		if len(d.Alternative) > 0 && !containsBytes(alts, d.Alternative) {
			alts = append(alts, d.Alternative)
		}
	}
	m.Alternatives = alts

	// The audit entries of this acceptance are written in the same store
	// transaction as the message, then appended to the log by the audit
	// pump: an acknowledged message never lacks its audit trail, even if
	// the node dies right after acknowledging. There is one entry per
	// recipient, whose kind is the guard's decision and whose actor is the
	// sender: together they say who sent what, when, and where it may go.
	// Only a message with no recipient gets a plain "accepted" entry.
	dg := digest(m.Label, m.Body)
	detail := map[string]string{"precedence": m.Precedence.String()}
	entries := make([]audit.Entry, 0, max(len(routes), 1))
	for _, r := range routes {
		entries = append(entries, audit.Entry{Kind: decisionKind(r.State), MessageID: m.ID.String(), Digest: dg, Peer: r.Peer, Channel: m.Channel, Actor: m.Originator, Decision: string(r.State), Reason: r.Code, Detail: detail})
	}
	if len(entries) == 0 {
		entries = append(entries, audit.Entry{Kind: audit.KindAccepted, MessageID: m.ID.String(), Digest: dg, Channel: m.Channel, Actor: m.Originator, Decision: "accepted", Detail: detail})
	}
	records, err := n.auditRecords(entries, now)
	if err != nil {
		return store.AcceptItem{}, err
	}
	return store.AcceptItem{Msg: m, Routes: routes, Audit: records}, nil
}

// accepted counts a stored message and returns its receipt; for a
// duplicate, the receipt of the original acceptance. The caller pumps the
// audit and wakes subscribers and links.
func (n *Node) accepted(ctx context.Context, it store.AcceptItem, r store.AcceptResult, now time.Time) (*api.Receipt, error) {
	m := it.Msg
	if r.Dup {
		st, err := n.MessageStatus(ctx, m.ID)
		if err != nil {
			return nil, err
		}
		return &api.Receipt{ID: m.ID, Seq: r.Seq, Duplicate: true, Recipients: st.Recipients}, nil
	}
	var recips []api.Recipient
	denied := false
	for _, rt := range it.Routes {
		n.metrics.decisions.WithLabelValues(rt.Peer, string(rt.State), rt.Code).Inc()
		recips = append(recips, api.Recipient{Party: rt.Peer, State: string(rt.State), Code: rt.Code, Reason: rt.Reason, At: now})
		denied = denied || rt.State == store.Denied
	}
	n.rates.add(now, 1, boolInt(denied))
	n.metrics.accepted.Inc()
	n.log.DebugContext(ctx, "message accepted", slog.String("id", m.ID.String()), slog.String("channel", m.Channel), slog.String("precedence", m.Precedence.String()))
	return &api.Receipt{ID: m.ID, Seq: r.Seq, Recipients: recips}, nil
}

// decisionKind is the audit kind of a route's state at acceptance.
func decisionKind(s store.DeliveryState) string {
	switch s {
	case store.Denied:
		return audit.KindDenied
	case store.Quarantined:
		return audit.KindQuarantined
	case store.Held:
		return audit.KindDenied // not released now; held for a renewal
	}
	return audit.KindReleased
}

// outcome maps the guard's decision to a delivery state. A denial only
// because no agreement is in force now, on a channel an agreement names,
// holds the message: it goes if a renewal comes into force.
func outcome(d guard.Decision) (store.DeliveryState, string) {
	switch d.Verdict {
	case guard.Release:
		return store.Queued, d.Reason
	case guard.Quarantine:
		return store.Quarantined, d.Reason
	}
	if heldForRenewal(d.Code) {
		return store.Held, "held: " + d.Reason
	}
	return store.Denied, d.Reason
}

// heldForRenewal reports whether a denial with this code, here or by a
// partner, holds the message rather than ending its way: it was refused
// only because no agreement is in force now, and goes if one comes into
// force.
func heldForRenewal(code string) bool { return code == guard.CodeNoAgreement }

// checkOwnLabel checks that m's label parses and is valid under a loaded
// policy. It returns nil when it is.
func (n *Node) checkOwnLabel(r guard.Rules, m *message.Message) *guard.Decision {
	l, err := parseLabel(m.Label)
	if err != nil {
		return &guard.Decision{Code: guard.CodeLabelUnparsable, Reason: fmt.Sprintf("label: %v", err)}
	}
	if err := r.Policies.Validate(l); err != nil {
		return &guard.Decision{Code: guard.CodeLabelInvalid, Reason: fmt.Sprintf("label is not valid: %v", err)}
	}
	return nil
}

// channelMembers returns the members of a channel across every installed
// agreement (in force or not) that names it with this party as a member:
// a channel may join this party to different partners under different
// bilateral agreements, and the guard then decides per recipient under the
// agreement covering that pair. It is an API error if no agreement names
// the channel with this party.
func (n *Node) channelMembers(set *agreement.Set, channel string) ([]string, error) {
	var members []string
	for _, d := range set.All() {
		c := d.Channel(channel)
		if c == nil || !slices.Contains(c.Members, n.party) {
			continue
		}
		for _, m := range c.Members {
			if !slices.Contains(members, m) {
				members = append(members, m)
			}
		}
	}
	if members == nil {
		return nil, api.Errorf(http.StatusConflict, guard.CodeNoAgreement, "no agreement names channel %q with %s as a member", channel, n.party)
	}
	slices.Sort(members)
	return members, nil
}

// reevaluate runs the guard again for messages held for peer (after an
// agreement came into force) and releases, quarantines or denies them.
func (n *Node) reevaluate(ctx context.Context, peer string) {
	held, err := n.store.HeldFor(ctx, peer)
	if err != nil {
		n.log.Error("listing held messages", slog.String("peer", peer), slog.Any("error", err))
		return
	}
	now := n.clock.Now()
	rules := n.guardRules()
	released := 0
	for _, m := range held {
		d := guard.Decide(m, peer, now, rules)
		state, reason := outcome(d)
		if state == store.Held {
			continue
		}
		if err := n.store.SetRoute(ctx, m.ID, peer, state, d.Code, reason); err != nil {
			n.log.Error("re-routing held message", slog.String("id", m.ID.String()), slog.Any("error", err))
			continue
		}
		kind := decisionKind(state)
		if kind == audit.KindReleased {
			released++
		}
		n.record(ctx, audit.Entry{Kind: kind, MessageID: m.ID.String(), Digest: digest(m.Label, m.Body), Peer: peer, Channel: m.Channel, Decision: string(state), Reason: d.Code, Detail: map[string]string{"after": "hold"}})
	}
	if released > 0 {
		n.log.Info("held messages released", slog.String("peer", peer), slog.Int("count", released))
		n.kick()
	}
}

// kick tells the links that work is queued.
func (n *Node) kick() {
	select {
	case n.outWork <- struct{}{}:
	default:
	}
}

func containsBytes(list [][]byte, b []byte) bool {
	for _, x := range list {
		if string(x) == string(b) {
			return true
		}
	}
	return false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
