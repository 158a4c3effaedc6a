package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"liaison/internal/audit"
	"liaison/internal/clock"
	"liaison/internal/envelope"
	"liaison/internal/federation"
	"liaison/internal/guard"
	"liaison/internal/label"
	"liaison/internal/message"
	"liaison/internal/pki"
	"liaison/internal/store"
)

// leaseTTL bounds how long a message leased to a link stays invisible to
// other links (and other instances sharing a PostgreSQL store) if the link
// dies without releasing it.
const leaseTTL = 2 * time.Minute

// localLeaseTTL is the lease of a SQLite store, which one process owns:
// no other instance competes for its queue, so a lease only has to outlive
// the gap between a link's Lease calls. What it bounds is the time a
// message leased when the process was killed waits before the next run
// can send it (with leaseTTL, two minutes even for a FLASH). A link that
// still holds a message when its lease runs out leases it again and
// skips it, which renews the lease.
const localLeaseTTL = 10 * time.Second

// leaseFor is the lease this node's store takes.
func (n *Node) leaseFor() time.Duration {
	url := n.cfg.Store
	if n.opts.StoreURL != "" {
		url = n.opts.StoreURL
	}
	if strings.HasPrefix(url, "sqlite:") {
		return localLeaseTTL
	}
	return leaseTTL
}

// tlsFor returns the TLS configuration for a link to party ("" for the
// listener): the node certificate, and the partners' pinned CAs.
func (n *Node) tlsFor(party string) (*tls.Config, error) {
	if party == "" {
		return pki.DynamicServerConfig(n.id, n.pinnedCards, nil), nil
	}
	c, ok := n.card(party)
	if !ok {
		return nil, fmt.Errorf("no card pinned for %s: import its card first", party)
	}
	return pki.ClientConfig(n.id, c, nil), nil
}

func (n *Node) pinnedCards() []*pki.Card {
	n.mu.RLock()
	defer n.mu.RUnlock()
	cs := make([]*pki.Card, 0, len(n.cards))
	for _, c := range n.cards {
		cs = append(cs, c)
	}
	return cs
}

// authorize admits a link from or to party only if party's certificate
// chains to the CA pinned by its card, that CA is the trust anchor an
// agreement in force pins for party, and that agreement also names us.
func (n *Node) authorize(party string, chain []*x509.Certificate) error {
	c, ok := n.card(party)
	if !ok {
		return fmt.Errorf("no card pinned for %s", party)
	}
	if len(chain) == 0 || pki.Fingerprint(chain[len(chain)-1].Raw) != c.CAFingerprint() {
		return fmt.Errorf("%s's certificate does not chain to its pinned CA %s", party, c.CAFingerprint())
	}
	now := n.clock.Now()
	n.mu.RLock()
	set := n.agreements
	n.mu.RUnlock()
	for _, d := range set.InForce(now) {
		if !d.HasParty(n.party) {
			continue
		}
		if p := d.Party(party); p != nil && p.CAFingerprint == c.CAFingerprint() {
			return nil
		}
	}
	return fmt.Errorf("no agreement in force between %s and %s pins %s's CA %s", n.party, party, party, c.CAFingerprint())
}

// verifyOrigin returns the signing key of an envelope's origin node.
func (n *Node) verifyOrigin(origin string) (ed25519.PublicKey, error) {
	c, ok := n.card(origin)
	if !ok {
		return nil, fmt.Errorf("no card pinned for origin %s", origin)
	}
	return ed25519.PublicKey(c.SigningKey), nil
}

// outbox is the federation's view of the store: lease, seal, acknowledge.
type outbox struct {
	n     *Node
	wires wireCache

	mu      sync.Mutex            // guards below
	sealers map[string]*sealer    // by peer: the HPKE context its envelopes are sealed with
	meta    map[wireKey]crossMeta // of leased messages, for the audit entry of their delivery
	marks   sentMarks
}

// crossMeta is what the sender's audit entry about a delivery or refusal
// carries besides the id, so that it reconciles with the receiver's.
type crossMeta struct{ digest, channel string }

// maxMeta bounds outbox.meta; past it, deliveries read the store instead.
const maxMeta = 1 << 16

// remember keeps the audit fields of leased messages.
func (o *outbox) remember(peer string, msgs []*message.Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.meta == nil || len(o.meta) > maxMeta {
		o.meta = map[wireKey]crossMeta{}
	}
	for _, m := range msgs {
		k := wireKey{peer, m.ID}
		if _, ok := o.meta[k]; !ok {
			o.meta[k] = crossMeta{digest(m.Label, m.Body), m.Channel}
		}
	}
}

// crossed returns (and forgets) the audit fields of a message leased to
// peer, reading the store when they were not kept.
func (o *outbox) crossed(ctx context.Context, peer string, id message.ID) crossMeta {
	k := wireKey{peer, id}
	o.mu.Lock()
	c, ok := o.meta[k]
	delete(o.meta, k)
	o.mu.Unlock()
	if ok {
		return c
	}
	if m, _, err := o.n.store.Get(ctx, id); err == nil {
		c = crossMeta{digest(m.Label, m.Body), m.Channel}
	}
	return c
}

// maxCachedWires bounds the bytes of sealed envelopes an outbox keeps.
const maxCachedWires = 256 << 20

// wireCache keeps the sealed envelope of each message leased to a peer
// until the peer acknowledges or refuses it, so that a message leased again
// after a reconnect goes out as the same bytes: the peer's HELLO then
// resumes its transfer from the offset the peer holds, where a fresh seal
// (a new tag) would start it again from 0. It is bounded by bytes, oldest
// first out; the zero value is ready.
type wireCache struct {
	mu    sync.Mutex
	size  int
	m     map[wireKey]cachedWire
	order []wireKey // insertion order, with keys already dropped
}

type wireKey struct {
	peer string
	id   message.ID
}

type cachedWire struct {
	epoch uint32 // the peer's key epoch it is sealed to
	wire  []byte
}

func (c *wireCache) get(peer string, id message.ID, epoch uint32) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.m[wireKey{peer, id}]
	if !ok || w.epoch != epoch {
		return nil
	}
	return w.wire
}

func (c *wireCache) put(peer string, id message.ID, epoch uint32, wire []byte) {
	if len(wire) > maxCachedWires/2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[wireKey]cachedWire{}
	}
	k := wireKey{peer, id}
	if old, ok := c.m[k]; ok {
		c.size -= len(old.wire)
	} else {
		c.order = append(c.order, k)
	}
	c.m[k] = cachedWire{epoch, wire}
	c.size += len(wire)
	for c.size > maxCachedWires && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		if w, ok := c.m[old]; ok {
			c.size -= len(w.wire)
			delete(c.m, old)
		}
	}
	if len(c.order) > 2*len(c.m)+64 { // compact the dropped keys
		keep := c.order[:0]
		for _, k := range c.order {
			if _, ok := c.m[k]; ok {
				keep = append(keep, k)
			}
		}
		c.order = keep
	}
}

func (c *wireCache) drop(peer string, ids ...message.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		k := wireKey{peer, id}
		if w, ok := c.m[k]; ok {
			c.size -= len(w.wire)
			delete(c.m, k)
		}
	}
}

var _ federation.StreamingOutbox = (*outbox)(nil)

func (o *outbox) Lease(ctx context.Context, peer string, k int) ([]federation.Outgoing, error) {
	var out []federation.Outgoing
	err := o.LeaseStream(ctx, peer, k, func(part []federation.Outgoing) { out = append(out, part...) })
	return out, err
}

// LeaseStream is Lease in parts (federation.StreamingOutbox): the leased
// messages are sealed in batches of one precedence (a lease is in queue
// order, most urgent first), and each batch goes to emit as soon as it is
// sealed. So a FLASH leased with 127 ROUTINE is on its way while they are
// sealed, and the link sends the first ROUTINE while it seals the next.
func (o *outbox) LeaseStream(ctx context.Context, peer string, k int, emit func([]federation.Outgoing)) error {
	n := o.n
	c, ok := n.card(peer)
	if !ok {
		return fmt.Errorf("no card pinned for %s", peer)
	}
	// Lease with a context the link's end cannot cancel: a lease the store
	// commits must reach the link (or be released), never be stranded
	// until its TTL because the session went away mid-call.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if federation.LeaseOnNews(ctx) {
		lctx = store.Urgent(lctx) // a FLASH may be among it: ahead of the backlog's writes
	} else {
		n.flash.wait(ctx) // bulk work: after a FLASH being submitted
	}
	leased, err := n.store.Lease(lctx, peer, k, n.leaseFor())
	if err != nil || len(leased) == 0 {
		return err
	}
	msgs := make([]*message.Message, len(leased))
	for i, l := range leased {
		msgs[i] = l.Message
	}
	if ctx.Err() != nil {
		n.releaseAll(lctx, peer, msgs)
		return context.Cause(ctx)
	}
	o.remember(peer, msgs)
	policy := n.policyOf(peer)
	for from := 0; from < len(msgs); {
		// The next part: up to maxSealBatch messages of one precedence.
		to := from + 1
		for to < len(msgs) && to-from < maxSealBatch && msgs[to].Precedence == msgs[from].Precedence {
			to++
		}
		if msgs[from].Precedence != message.Flash {
			n.flash.wait(ctx)
		}
		part, err := o.outgoing(peer, c, policy, msgs[from:to], leased[from:to])
		if err != nil {
			n.releaseAll(lctx, peer, msgs[from:])
			return err
		}
		emit(part)
		from = to
	}
	return nil
}

// outgoing makes msgs, leased for peer under the given queue seqs, ready
// for its link: the envelopes not cached are sealed as one batch, and each
// envelope's shared ranges marked (labels, a batch's key and signature
// travel once per link session and by reference after that).
func (o *outbox) outgoing(peer string, c *pki.Card, policy string, msgs []*message.Message, leased []store.Leased) ([]federation.Outgoing, error) {
	out := make([]federation.Outgoing, len(msgs))
	var fresh []int
	for i, m := range msgs {
		out[i] = federation.Outgoing{ID: m.ID, Precedence: m.Precedence, Seq: leased[i].Seq, Wire: o.wires.get(peer, m.ID, c.Epoch)}
		if out[i].Wire == nil {
			fresh = append(fresh, i)
		}
	}
	if len(fresh) > 0 {
		if err := o.seal(peer, c, policy, msgs, fresh, out); err != nil {
			return nil, err
		}
	}
	for i := range out {
		out[i].Shared, _ = envelope.SharedRanges(out[i].Wire)
	}
	return out, nil
}

// maxSealBatch bounds an envelope batch: each envelope carries a Merkle
// proof of 32 bytes per level, so a lease of 128 sealed as one batch would
// put 64 more bytes on the wire per message than batches of 32, for one
// Ed25519 signature saved per 32 messages (the HPKE encapsulation is per
// sealer, not per batch).
const maxSealBatch = 32

// A sealer is the HPKE context a node seals a partner's envelopes with,
// across batches, so that its encapsulated key (1,120 bytes with
// ML-KEM-768) crosses a link once per session instead of once per batch,
// and the partner decapsulates once. It is replaced when the partner's key
// epoch changes, after sealerLife or sealerMessages, and dropped when no
// agreement covers the partner any more: whatever was sealed with one
// context is exposed if that context leaks, and these bound how much.
type sealer struct {
	*envelope.Sealer
	since time.Time
}

const (
	sealerLife     = 10 * time.Minute
	sealerMessages = 1 << 20
)

// sealerFor returns the sealer for peer's key in card c, starting a new
// one when there is none or the current one is spent.
func (o *outbox) sealerFor(peer string, c *pki.Card, now time.Time) (*envelope.Sealer, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s := o.sealers[peer]; s != nil {
		rk := s.Recipient()
		if rk.Epoch == c.Epoch && bytes.Equal(rk.PublicKey.Bytes(), c.HPKEPublicKey().Bytes()) && now.Sub(s.since) < sealerLife && s.Sealed() < sealerMessages {
			return s.Sealer, nil
		}
	}
	s, err := envelope.NewSealer(envelope.RecipientKey{Party: peer, Epoch: c.Epoch, PublicKey: c.HPKEPublicKey()})
	if err != nil {
		return nil, err
	}
	if o.sealers == nil {
		o.sealers = map[string]*sealer{}
	}
	o.sealers[peer] = &sealer{Sealer: s, since: now}
	return s, nil
}

// dropSealer forgets peer's sealing context.
func (o *outbox) dropSealer(peer string) {
	o.mu.Lock()
	delete(o.sealers, peer)
	o.mu.Unlock()
}

// seal seals msgs[idx] as one envelope batch to peer's card into out.
func (o *outbox) seal(peer string, c *pki.Card, policy string, msgs []*message.Message, idx []int, out []federation.Outgoing) error {
	n := o.n
	s, err := o.sealerFor(peer, c, n.clock.Now())
	if err != nil {
		return err
	}
	batch, err := s.NewBatch(n.id.SigningKey)
	if err != nil {
		return err
	}
	for _, i := range idx {
		m := *msgs[i]
		m.Alternatives = alternativesFor(m.Alternatives, policy)
		if err := batch.Add(&m); err != nil {
			return fmt.Errorf("seal %s for %s: %w", m.ID, peer, err)
		}
	}
	wires, err := batch.Finish()
	if err != nil {
		return err
	}
	for j, i := range idx {
		out[i].Wire = wires[j]
		o.wires.put(peer, msgs[i].ID, c.Epoch, wires[j])
	}
	return nil
}

// handOver seals m, stored leased for peer (see Node.leaseFlash), and
// hands it to peer's link. Should that fail (the link went down in the
// meantime), it releases the lease, so that the link's next lease takes
// the message as any other.
func (o *outbox) handOver(ctx context.Context, peer string, m *message.Message, seq uint64) {
	n := o.n
	if c, ok := n.card(peer); ok {
		msgs := []*message.Message{m}
		out, err := o.outgoing(peer, c, n.policyOf(peer), msgs, []store.Leased{{Message: m, Seq: seq}})
		if err == nil {
			o.remember(peer, msgs)
			if n.fed.Hand(peer, out) {
				runtime.Gosched() // the link's writer has it: let it run now (see store's batcher)
				n.metrics.handovers.WithLabelValues(peer, "handed").Inc()
				return
			}
		} else {
			n.log.Warn("sealing a FLASH message to hand to its link", slog.String("peer", peer), slog.String("id", m.ID.String()), slog.Any("error", err))
		}
	}
	n.metrics.handovers.WithLabelValues(peer, "released").Inc()
	n.releaseAll(ctx, peer, []*message.Message{m})
	n.kick()
}

func (n *Node) releaseAll(ctx context.Context, peer string, msgs []*message.Message) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	ids := make([]message.ID, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	if err := n.store.Release(ctx, peer, ids...); err != nil {
		n.log.Error("release leased messages", slog.String("peer", peer), slog.Any("error", err))
	}
}

// PolicyOf is the policy id the installed agreements give party, or "".
func (n *Node) PolicyOf(party string) string { return n.policyOf(party) }

// Policy returns a loaded policy by id or name, or nil.
func (n *Node) Policy(idOrName string) *label.Policy {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.policies.Policy(idOrName)
}

// policyOf is the policy id the agreements give party, or "".
func (n *Node) policyOf(party string) string {
	n.mu.RLock()
	set := n.agreements
	n.mu.RUnlock()
	for _, d := range set.All() {
		for _, p := range d.Labels.Policies {
			if p.Party == party {
				return p.PolicyID
			}
		}
	}
	return ""
}

// alternativesFor keeps the alternative labels under policy: a partner
// gets its own translation, not the ones made for other partners.
func alternativesFor(alts [][]byte, policy string) [][]byte {
	var out [][]byte
	for _, a := range alts {
		if l, err := parseLabel(a); err == nil && l.PolicyID() == policy {
			out = append(out, a)
		}
	}
	return out
}

func (o *outbox) Ack(ctx context.Context, peer string, ids ...message.ID) error {
	o.wires.drop(peer, ids...)
	return o.n.store.Ack(ctx, peer, ids...)
}

func (o *outbox) Release(ctx context.Context, peer string, ids ...message.ID) error {
	return o.n.store.Release(ctx, peer, ids...)
}

// Refused records a partner's refusal. One because no agreement is in
// force at the partner now (its clock passed an expiry a moment before
// ours, or the message was in flight when the agreement ended) holds the
// message instead, as a local submission would be held: it goes when the
// agreement is in force again on both sides (reevaluate, at the next
// change of the partner's status or link-up).
func (o *outbox) Refused(ctx context.Context, peer string, id message.ID, code, reason string) error {
	o.wires.drop(peer, id)
	if heldForRenewal(code) {
		o.n.log.Info("partner has no agreement in force for a message now; holding it", slog.String("peer", peer), slog.String("id", id.String()), slog.String("reason", reason))
		return o.n.store.SetRoute(ctx, id, peer, store.Held, code, "held: "+peer+" refused it: "+reason)
	}
	return o.n.store.SetRoute(ctx, id, peer, store.Refused, code, reason)
}

func (o *outbox) Notify() <-chan struct{} { return o.n.outWork }

// inbox receives messages from partners: verify the envelope before
// anything else, run the guard with this node as the recipient, then store
// in one transaction (de-duplicated) before the link acknowledges.
type inbox struct{ n *Node }

var _ federation.PreparingInbox = (*inbox)(nil)

// AcceptBatch opens and guards each message, then stores every accepted
// one in one store transaction, in the order given.
func (in *inbox) AcceptBatch(ctx context.Context, from string, wires [][]byte) []error {
	return in.PrepareBatch(ctx, from, wires)()
}

// PrepareBatch opens and guards each message; the function it returns
// stores the accepted ones in one store transaction, in the order given.
func (in *inbox) PrepareBatch(ctx context.Context, from string, wires [][]byte) func() []error {
	n := in.n
	errs := make([]error, len(wires))
	items := make([]store.AcceptItem, 0, len(wires))
	at := make([]int, 0, len(wires)) // wires index of each item
	for i, wire := range wires {
		it, err := in.prepare(ctx, from, wire)
		if err != nil {
			errs[i] = err
			continue
		}
		items = append(items, it)
		at = append(at, i)
	}
	return func() []error {
		if len(items) == 0 {
			return errs
		}
		res, err := n.store.AcceptBatch(ctx, items)
		if err != nil {
			for _, i := range at {
				errs[i] = err // not acknowledged: the sender retries
			}
			return errs
		}
		fresh := 0
		for _, r := range res {
			if !r.Dup {
				fresh++
			}
		}
		if fresh > 0 {
			n.pumpAudit()
			n.metrics.received.WithLabelValues(from, "accepted").Add(float64(fresh))
			n.history.fire()
		}
		return errs
	}
}

// prepare verifies the envelope before anything else and runs the guard
// with this node as the recipient. It returns what to store, or the
// refusal (or failure) to answer.
func (in *inbox) prepare(ctx context.Context, from string, wire []byte) (store.AcceptItem, error) {
	n := in.n
	m, _, err := n.opener.Open(wire)
	if errors.Is(err, envelope.ErrUnknownEpoch) {
		// Sealed to a key epoch we no longer (or do not yet) hold: the
		// sender has a stale card. Not a refusal: the link closes, the
		// partner receives our current card when it reconnects, and the
		// message is sealed again.
		n.log.Warn("envelope sealed to an unknown key epoch; partner will reseal", slog.String("from", from), slog.Any("error", err))
		return store.AcceptItem{}, fmt.Errorf("from %s: %w", from, err)
	}
	if err != nil {
		code := "bad-envelope"
		switch {
		case errors.Is(err, envelope.ErrBadSignature):
			code = "bad-signature"
		case errors.Is(err, envelope.ErrWrongRecipient):
			code = "wrong-recipient"
		}
		n.record(ctx, audit.Entry{Kind: audit.KindRejected, Peer: from, Decision: audit.DecisionRefused, Reason: code})
		n.metrics.received.WithLabelValues(from, "refused").Inc()
		return store.AcceptItem{}, &federation.RefusalError{Code: code, Reason: err.Error()}
	}
	if m.Origin != from {
		n.record(ctx, audit.Entry{Kind: audit.KindRejected, MessageID: m.ID.String(), Peer: from, Decision: audit.DecisionRefused, Reason: "origin-mismatch"})
		return store.AcceptItem{}, &federation.RefusalError{Code: "origin-mismatch", Reason: fmt.Sprintf("message from %s claims origin %s", from, m.Origin)}
	}
	d := guard.Decide(m, n.party, n.clock.Now(), n.guardRules())
	if d.Verdict == guard.Deny {
		n.record(ctx, audit.Entry{Kind: audit.KindRejected, MessageID: m.ID.String(), Digest: digest(m.Label, m.Body), Peer: from, Channel: m.Channel, Decision: audit.DecisionRefused, Reason: d.Code})
		n.metrics.received.WithLabelValues(from, "refused").Inc()
		n.log.Warn("refused a message from a partner", slog.String("from", from), slog.String("id", m.ID.String()), slog.String("code", d.Code), slog.String("reason", d.Reason))
		return store.AcceptItem{}, &federation.RefusalError{Code: d.Code, Reason: d.Reason}
	}
	if len(d.Alternative) > 0 && !containsBytes(m.Alternatives, d.Alternative) {
		m.Alternatives = append(m.Alternatives, d.Alternative)
	}
	records, err := n.auditRecords([]audit.Entry{{Kind: audit.KindReceived, MessageID: m.ID.String(), Digest: digest(m.Label, m.Body), Peer: from, Channel: m.Channel, Decision: "accepted", Reason: d.Code}}, n.clock.Now())
	if err != nil {
		return store.AcceptItem{}, err
	}
	return store.AcceptItem{Msg: m, Audit: records}, nil
}

func (n *Node) onLinkEvent(e federation.Event) {
	ctx := context.Background()
	switch e.Kind {
	case federation.LinkUp:
		n.setLink(e.Party, "up", "")
		n.record(ctx, audit.Entry{Kind: audit.KindLinkUp, Peer: e.Party, Decision: "up"})
		n.log.Info("link up", slog.String("peer", e.Party), slog.String("remote", e.Remote))
		go n.control.hello(e.Party)
		// Messages the partner refused for want of an agreement in force
		// go now if one is in force here (they may have been refused in
		// a moment when only the partner saw it lapse).
		go n.reevaluate(ctx, e.Party)
	case federation.LinkDown:
		n.mu.RLock()
		held := n.allowed[e.Party] == false
		n.mu.RUnlock()
		state := "down"
		if held {
			state = "held"
		}
		n.control.linkDown(e.Party)
		if n.sessionUp(e.Party) {
			// A newer session replaced the one that ended: the link is up.
			n.log.Debug("replaced link session ended", slog.String("peer", e.Party), slog.String("reason", e.Reason))
			return
		}
		n.setLink(e.Party, state, e.Reason)
		n.record(ctx, audit.Entry{Kind: audit.KindLinkDown, Peer: e.Party, Decision: state, Reason: shortReason(e.Reason)})
		n.log.Info("link down", slog.String("peer", e.Party), slog.String("reason", e.Reason))
	case federation.LinkRefused:
		if e.Party != "" {
			n.setLink(e.Party, "refused", e.Reason)
		}
		n.record(ctx, audit.Entry{Kind: audit.KindLinkRefused, Peer: e.Party, Decision: audit.DecisionRefused, Reason: shortReason(e.Reason), Detail: map[string]string{"remote": e.Remote}})
		n.log.Warn("link refused", slog.String("peer", e.Party), slog.String("remote", e.Remote), slog.String("reason", e.Reason))
	}
}

// sessionUp reports whether the federation has a session with party now.
func (n *Node) sessionUp(party string) bool {
	for _, ls := range n.fed.Status() {
		if ls.Party == party {
			return ls.Up
		}
	}
	return false
}

// shortReason bounds free text kept in the audit log.
func shortReason(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

// onDelivery takes the link's progress reports, a batch at a time: one
// audit entry per delivery or refusal, one store write per batch of sent
// marks, and one wake-up of history watchers per batch.
func (n *Node) onDelivery(ds []federation.Delivery) {
	ctx := context.Background()
	var entries []audit.Entry
	var delivered []federation.Delivery
	sent := map[string][]message.ID{}
	for _, d := range ds {
		// The sender's entry carries the digest, channel and decision the
		// receiver records too, so that the two logs reconcile (audit.Crossed).
		crossed := func(kind, decision, reason string) audit.Entry {
			c := n.outbox.crossed(ctx, d.Party, d.ID)
			return audit.Entry{Kind: kind, MessageID: d.ID.String(), Digest: c.digest, Channel: c.channel, Peer: d.Party, Decision: decision, Reason: reason}
		}
		switch d.Kind {
		case federation.Delivered:
			delivered = append(delivered, d)
			entries = append(entries, crossed(audit.KindDelivered, audit.DecisionAccepted, ""))
			n.metrics.delivered.WithLabelValues(d.Party, "delivered").Inc()
		case federation.Refused:
			entries = append(entries, crossed(audit.KindRefused, audit.DecisionRefused, d.Code))
			n.metrics.delivered.WithLabelValues(d.Party, "refused").Inc()
		case federation.Sent:
			sent[d.Party] = append(sent[d.Party], d.ID)
		}
	}
	n.recordAll(ctx, entries)
	n.outbox.marks.add(sent, delivered)
	if len(entries) > 0 {
		n.status.fire() // per-recipient status shows on live pages
	}
}

// recordAll is record for several entries, with one waiter; the log
// groups them into as few leaves as it can (audit.Log.AppendBatch).
func (n *Node) recordAll(ctx context.Context, es []audit.Entry) {
	if len(es) == 0 {
		return
	}
	for i := range es {
		if es[i].At.IsZero() {
			es[i].At = n.clock.Now()
		}
		if es[i].Party == "" {
			es[i].Party = n.party
		}
	}
	wait := n.audit.AppendBatch(ctx, es)
	go func() {
		if failed, err := wait(); err != nil {
			n.metrics.auditErrors.Add(float64(failed))
			n.log.Error("audit append failed", slog.Int("entries", failed), slog.Any("error", err))
		}
	}()
}

// watch re-evaluates agreements whenever the clock moves (simulated) or
// every second (real), opening and holding links as agreements come into
// and go out of force.
func (n *Node) watch(ctx context.Context) {
	var moved <-chan struct{}
	if w, ok := n.clock.(clock.Watcher); ok {
		moved = w.Watch()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-moved:
		case <-tick.C:
		}
		n.reconcileLinks(ctx)
		n.rotateIfDue(ctx)
	}
}

// reconcileLinks allows links to partners that share an agreement in
// force with this node and holds the others, auditing each change of an
// agreement's status.
func (n *Node) reconcileLinks(ctx context.Context) {
	now := n.clock.Now()
	n.mu.RLock()
	set := n.agreements
	n.mu.RUnlock()

	for _, d := range set.All() {
		st := d.StatusAt(now)
		key := d.Key()
		n.mu.Lock()
		prev, seen := n.phases[key]
		n.phases[key] = st.Phase.String()
		n.mu.Unlock()
		if !seen || prev != st.Phase.String() {
			n.record(ctx, audit.Entry{Kind: audit.KindAgreementStatus, Agreement: key, Decision: st.Phase.String(), Reason: shortReason(st.Reason)})
			n.log.Info("agreement status", slog.String("agreement", key), slog.String("status", st.Phase.String()), slog.String("reason", st.Reason))
		}
	}

	partners := set.Partners(n.party, now)
	known := map[string]bool{}
	for _, d := range set.All() {
		for _, p := range d.Parties {
			if p.ID != n.party && d.HasParty(n.party) {
				known[p.ID] = true
			}
		}
	}
	n.mu.RLock()
	for p := range n.links {
		known[p] = true
	}
	n.mu.RUnlock()
	names := make([]string, 0, len(known))
	for p := range known {
		names = append(names, p)
	}
	sort.Strings(names)
	lost := false // a partner link became disallowed in this pass
	for _, peer := range names {
		ok := slices.Contains(partners, peer)
		n.mu.Lock()
		prev, decided := n.allowed[peer]
		n.allowed[peer] = ok
		n.mu.Unlock()
		if decided && prev == ok {
			continue
		}
		reason := "an agreement in force covers " + peer
		if !ok {
			reason = "no agreement in force between " + n.party + " and " + peer
		}
		if err := n.fed.SetAllowed(peer, ok, reason); err != nil {
			n.log.Debug("set allowed", slog.String("peer", peer), slog.Any("error", err))
		}
		if err := n.store.Hold(ctx, peer, !ok, reason); err != nil {
			n.log.Error("hold queue", slog.String("peer", peer), slog.Any("error", err))
		}
		if ok {
			n.reevaluate(ctx, peer)
		} else {
			n.setLink(peer, "held", reason)
			n.outbox.dropSealer(peer)
			lost = lost || decided
		}
		if decided {
			n.log.Info("partner link", slog.String("peer", peer), slog.Bool("allowed", ok), slog.String("reason", reason))
		}
	}
	if lost && len(partners) == 0 {
		n.zeroiseIdle(ctx)
	}
}
