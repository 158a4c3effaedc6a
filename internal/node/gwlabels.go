package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/audit"
	"liaison/internal/gateway/cot"
	"liaison/internal/gateway/xmpp"
	"liaison/internal/label"
)

// Tag sets the gateways map CoT markings to.
const (
	relToTag    = "Releasable To"
	handlingTag = "Handling"
)

// ownPolicy is this node's own policy (as the agreements name it), or nil.
func (n *Node) ownPolicy() (*label.Policy, *label.PolicySet) {
	n.mu.RLock()
	ps := n.policies
	n.mu.RUnlock()
	id := n.policyOf(n.party)
	if id == "" {
		return nil, ps
	}
	return ps.Policy(id), ps
}

// gwCache remembers answers that depend only on their key and on the
// node's policies and agreements: what the gateways ask of the label
// engine for every message and every recipient (the same few labels and
// clearances over and over). It empties when either changes, or when full.
type gwCache[V any] struct {
	mu  sync.Mutex // guards the fields below
	ps  *label.PolicySet
	set *agreement.Set
	m   map[string]V
}

// maxGWCache bounds a gwCache.
const maxGWCache = 1024

// get returns the answer for key, computing it with f if it is not known.
func (c *gwCache[V]) get(n *Node, key string, f func() V) V {
	n.mu.RLock()
	ps, set := n.policies, n.agreements
	n.mu.RUnlock()
	c.mu.Lock()
	if c.ps != ps || c.set != set || len(c.m) >= maxGWCache {
		c.ps, c.set, c.m = ps, set, map[string]V{}
	}
	v, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return v
	}
	v = f()
	c.mu.Lock()
	if c.ps == ps && c.set == set {
		c.m[key] = v
	}
	c.mu.Unlock()
	return v
}

// cacheKey joins two byte strings unambiguously (a length prefix).
func cacheKey(a, b []byte) string {
	k := make([]byte, 0, binary.MaxVarintLen64+len(a)+len(b))
	k = binary.AppendUvarint(k, uint64(len(a)))
	return string(append(append(k, a...), b...))
}

// cotLabeler maps CoT markings through the configured table and then has
// the node's label engine validate the result; anything invalid is an
// error, so the gateway applies the channel default (fail closed).
type cotLabeler struct {
	n       *Node
	classes map[string]string // CoT access → classification
	toCoT   gwCache[cotMarking]
	fromCoT gwCache[cotLabel]
}

// cotLabel is FromCoT's answer.
type cotLabel struct {
	raw []byte
	err error
}

// cotMarking is ToCoT's answer.
type cotMarking struct {
	access, caveat string
	releasableTo   []string
	err            error
}

// FromCoT implements cot.Labeler. The label depends on the clock only to
// the second (its review date), so the answer is kept per second.
func (c *cotLabeler) FromCoT(access, caveat string, releasableTo []string, channel string) ([]byte, error) {
	now := c.n.clock.Now()
	key := []byte(strconv.FormatInt(now.Unix(), 10))
	for _, s := range append([]string{access, caveat, channel}, releasableTo...) {
		key = binary.AppendUvarint(key, uint64(len(s)))
		key = append(key, s...)
	}
	l := c.fromCoT.get(c.n, string(key), func() cotLabel {
		raw, err := c.fromCoTAt(access, caveat, releasableTo, channel, now)
		return cotLabel{raw, err}
	})
	return slices.Clip(l.raw), l.err
}

func (c *cotLabeler) fromCoTAt(access, caveat string, releasableTo []string, channel string, now time.Time) ([]byte, error) {
	p, ps := c.n.ownPolicy()
	if p == nil {
		return nil, fmt.Errorf("%w: this node's policy is not known (no agreement names it)", cot.ErrUnmapped)
	}
	m := &cot.MappingLabeler{PolicyID: "urn:oid:" + p.ID(), PolicyName: p.Name(), Classifications: c.classes,
		RelToTag: relToTag, CaveatTag: handlingTag}
	mapped, err := m.FromCoT(access, caveat, releasableTo, channel)
	if err != nil {
		return nil, err
	}
	pl, err := cot.ParseLabel(mapped)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", cot.ErrUnmapped, err)
	}
	raw := gatewayLabel(p, pl.Classification, pl.Categories[handlingTag], pl.Categories[relToTag], now)
	l, err := parseLabel(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", cot.ErrUnmapped, err)
	}
	if err := ps.Validate(l); err != nil {
		return nil, fmt.Errorf("%w: marking %q//%q//%q is not a valid label: %v", cot.ErrUnmapped, access, caveat, strings.Join(releasableTo, " "), err)
	}
	return raw, nil
}

// gatewayLabel writes an originator STANAG 4774 label under p; its
// categories name their tag sets, which the policy resolves.
func gatewayLabel(p *label.Policy, cls string, handling, relTo []string, now time.Time) []byte {
	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	fmt.Fprintf(&b, `<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0" ReviewDateTime="%s">`, now.AddDate(10, 0, 0).UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, `<ConfidentialityInformation><PolicyIdentifier URI="urn:oid:%s">%s</PolicyIdentifier><Classification>%s</Classification>`, esc(p.ID()), esc(p.Name()), esc(cls))
	for _, c := range []struct {
		tag, typ string
		vals     []string
	}{{handlingTag, "RESTRICTIVE", handling}, {relToTag, "PERMISSIVE", relTo}} {
		if len(c.vals) == 0 {
			continue
		}
		fmt.Fprintf(&b, `<Category TagName="%s" Type="%s">`, c.tag, c.typ)
		for _, v := range c.vals {
			fmt.Fprintf(&b, `<GenericValue>%s</GenericValue>`, esc(v))
		}
		b.WriteString(`</Category>`)
	}
	fmt.Fprintf(&b, `</ConfidentialityInformation><CreationDateTime>%s</CreationDateTime></originatorConfidentialityLabel>`, now.UTC().Format(time.RFC3339))
	return b.Bytes()
}

// ToCoT implements cot.Labeler: the label's classification (mapped back
// through the table when it has an entry) and its Releasable To and
// Handling values, as the node's label engine reads them.
func (c *cotLabeler) ToCoT(raw []byte) (access, caveat string, releasableTo []string, err error) {
	m := c.toCoT.get(c.n, string(raw), func() cotMarking {
		a, cv, rel, err := c.toCoTUncached(raw)
		return cotMarking{a, cv, rel, err}
	})
	return m.access, m.caveat, slices.Clip(m.releasableTo), m.err
}

func (c *cotLabeler) toCoTUncached(raw []byte) (access, caveat string, releasableTo []string, err error) {
	c.n.mu.RLock()
	ps := c.n.policies
	c.n.mu.RUnlock()
	l, err := parseLabel(raw)
	if err != nil {
		return "", "", nil, err
	}
	if l, err = ps.Resolve(l); err != nil {
		return "", "", nil, err
	}
	access = l.Class
	keys := make([]string, 0, len(c.classes))
	for k := range c.classes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if strings.EqualFold(c.classes[k], l.Class) {
			access = k
			break
		}
	}
	var handling []string
	for _, cat := range l.Categories {
		switch cat.TagSet {
		case relToTag:
			releasableTo = append(releasableTo, cat.Value)
		case handlingTag:
			handling = append(handling, cat.Value)
		}
	}
	return access, strings.Join(handling, " "), releasableTo, nil
}

// xmppLabels is the node's label engine as the XMPP gateway uses it.
type xmppLabels struct {
	n       *Node
	rooms   map[string]string // room → channel
	acdf    gwCache[label.Decision]
	marking gwCache[xmppMarking]
}

// xmppMarking is Marking's answer.
type xmppMarking struct {
	marking string
	err     error
}

func (x *xmppLabels) policies() *label.PolicySet {
	x.n.mu.RLock()
	defer x.n.mu.RUnlock()
	return x.n.policies
}

// Parse implements xmpp.Labels: STANAG 4774 XML is kept as sent; other
// forms (ESS) are written as STANAG 4774.
func (x *xmppLabels) Parse(b []byte) ([]byte, error) {
	l, err := parseLabel(b)
	if err != nil {
		return nil, err
	}
	if l.Format == "4774" {
		return b, nil
	}
	r, err := x.policies().Resolve(l)
	if err != nil {
		return nil, err
	}
	return r.MarshalXML4774(label.Originator)
}

// Marking implements xmpp.Labels.
func (x *xmppLabels) Marking(b []byte, lang string) (string, string, string, error) {
	m := x.marking.get(x.n, cacheKey([]byte(lang), b), func() xmppMarking {
		mk, _, _, err := x.markingUncached(b, lang)
		return xmppMarking{mk, err}
	})
	return m.marking, "", "", m.err
}

func (x *xmppLabels) markingUncached(b []byte, lang string) (string, string, string, error) {
	l, err := parseLabel(b)
	if err != nil {
		return "", "", "", err
	}
	mk, err := x.policies().Marking(l, lang)
	return mk, "", "", err
}

// ACDF implements xmpp.Labels with the label engine's access decision.
func (x *xmppLabels) ACDF(b, clearance []byte) (bool, string) {
	d := x.acdf.get(x.n, cacheKey(clearance, b), func() label.Decision {
		l, err := parseLabel(b)
		if err != nil {
			return label.Decision{Reason: "deny: " + err.Error()}
		}
		c, err := x.n.clearance(clearance)
		if err != nil {
			return label.Decision{Reason: "deny: " + err.Error()}
		}
		return x.policies().ACDF(l, c)
	})
	return d.Grant, d.Reason
}

// Catalog implements xmpp.Labels: the node's catalogue for the channel.
func (x *xmppLabels) Catalog(channel string) []xmpp.CatalogItem {
	cs, err := x.n.Catalog(context.Background(), channel)
	if err != nil {
		return nil
	}
	out := make([]xmpp.CatalogItem, 0, len(cs))
	for _, c := range cs {
		out = append(out, xmpp.CatalogItem{Selector: c.Marking, Label: []byte(c.Label)})
	}
	return out
}

// DefaultLabel implements xmpp.Labels: the agreement channel's default.
func (x *xmppLabels) DefaultLabel(channel string) []byte { return x.n.channelDefault(channel) }

// Permit implements xmpp.Labels: the label must be under this node's
// policy and at most the room's channel ceiling for this party.
func (x *xmppLabels) Permit(b []byte, room string) (bool, string) {
	ch := x.n.channelDef(x.rooms[room])
	if ch == nil {
		return false, "no agreement names the room's channel with " + x.n.party
	}
	p, ps := x.n.ownPolicy()
	l, err := parseLabel(b)
	if err != nil || p == nil {
		return false, fmt.Sprintf("label unreadable or policy unknown: %v", err)
	}
	if lp, err := ps.PolicyOf(l); err != nil || lp != p {
		return false, "label is not under " + p.Name()
	}
	cmp, err := ps.Compare(l, ch.Ceiling[x.n.party])
	if err != nil {
		return false, err.Error()
	}
	if cmp > 0 {
		return false, "above the channel ceiling " + ch.Ceiling[x.n.party]
	}
	return true, ""
}

// Clearances given by classification in the configuration, or to a
// partner by the agreement, are resolved when used (the node's policy is
// known only once an agreement names it). They travel through the XMPP
// gateway as these opaque forms; anything else is clearance XML.
const (
	specPrefix  = "liaison-clearance?"
	partyPrefix = "liaison-party?"
)

func encodeClearanceSpec(class string, relTo, handling []string) []byte {
	v := url.Values{"class": {class}, "rel": relTo, "handling": handling}
	return []byte(specPrefix + v.Encode())
}

func encodePartyClearance(party, channel string) []byte {
	return []byte(partyPrefix + url.Values{"party": {party}, "channel": {channel}}.Encode())
}

// clearance reads a clearance in one of the forms above.
func (n *Node) clearance(b []byte) (*label.Clearance, error) {
	switch {
	case bytes.HasPrefix(b, []byte(specPrefix)):
		v, err := url.ParseQuery(string(b[len(specPrefix):]))
		if err != nil {
			return nil, err
		}
		p, _ := n.ownPolicy()
		if p == nil {
			return nil, fmt.Errorf("this node's policy is not known")
		}
		top := int64(-1)
		sum := p.Summary()
		for _, c := range sum.Classifications {
			if strings.EqualFold(c.Name, v.Get("class")) {
				top = c.Hierarchy
			}
		}
		if top < 0 {
			return nil, fmt.Errorf("policy %s has no classification %q", p.Name(), v.Get("class"))
		}
		c := &label.Clearance{PolicyOID: p.ID(), PolicyName: p.Name(), Format: "config"}
		for _, cl := range sum.Classifications {
			if cl.Hierarchy <= top {
				c.Classes = append(c.Classes, label.ClassRef{Name: cl.Name})
			}
		}
		for _, r := range v["rel"] {
			c.Categories = append(c.Categories, label.Category{TagSet: relToTag, Type: label.Permissive, Value: r})
		}
		for _, h := range v["handling"] {
			c.Categories = append(c.Categories, label.Category{TagSet: handlingTag, Type: label.Restrictive, Value: h})
		}
		return c, nil
	case bytes.HasPrefix(b, []byte(partyPrefix)):
		v, err := url.ParseQuery(string(b[len(partyPrefix):]))
		if err != nil {
			return nil, err
		}
		ch := n.channelDef(v.Get("channel"))
		if ch == nil {
			return nil, fmt.Errorf("no agreement names channel %q", v.Get("channel"))
		}
		p, ps := n.ownPolicy()
		if p == nil {
			return nil, fmt.Errorf("this node's policy is not known")
		}
		return ps.PartyClearance(p.ID(), v.Get("party"), ch.Ceiling[v.Get("party")])
	}
	return label.ParseClearance(b)
}

// cotAuditor and xmppAuditor record the gateways' decisions in the
// node's audit log, with kinds prefixed by the gateway.
type (
	cotAuditor  struct{ n *Node }
	xmppAuditor struct{ n *Node }
)

// Audit implements cot.Auditor.
func (a cotAuditor) Audit(ctx context.Context, r cot.Record) {
	d := map[string]string{"uid": clip(r.UID), "original": clip(r.Original), "detail": clip(r.Detail)}
	if len(r.Effective) > 0 {
		d["effective"] = digest(r.Effective, nil)
	}
	a.n.record(context.WithoutCancel(ctx), audit.Entry{Kind: "cot." + r.Kind, Channel: r.Channel, Actor: clip(r.Client), Decision: r.Kind, Detail: d})
}

// Record implements xmpp.Auditor.
func (a xmppAuditor) Record(ctx context.Context, kind, msgID, reason string) {
	a.n.record(context.WithoutCancel(ctx), audit.Entry{Kind: kind, MessageID: msgID, Decision: strings.TrimPrefix(kind, "xmpp."), Detail: map[string]string{"reason": clip(reason)}})
}

// clip keeps an audit field within the audit log's 1 KiB limit.
func clip(s string) string {
	if len(s) <= 1000 {
		return s
	}
	return strings.ToValidUTF8(s[:1000], "") + "…"
}
