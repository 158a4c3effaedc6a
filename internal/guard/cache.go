package guard

import (
	"slices"
	"sync"

	"liaison/internal/label"
)

// Cache remembers work the guard would otherwise repeat for every message:
// labels parsed, translated into a recipient's policy and encoded, held
// to ceilings and to parties' clearances, and dirty-word lists compiled.
// Results are keyed by the label's bytes and the policy set (and its
// [label.PolicySet.Generation]) they came from. A decision is the same
// with a cache as without one; a caller that decides often passes one in
// [Rules]. The zero value is ready to use; a Cache is safe for concurrent
// use and bounded in size.
type Cache struct {
	parse func([]byte) (*label.Label, error)

	mu     sync.Mutex            // guards labels and words
	labels map[string][]*derived // by the originator label's bytes
	words  map[wordsKey]*wordList
}

// NewCache returns an empty cache that parses labels with parse, when not
// nil, instead of [label.ParseLabel]: a node passes its own cache of
// parsed labels, so a label is parsed once for all of its uses. parse must
// return what label.ParseLabel returns for the same bytes (it may return
// the same *label.Label again), and nothing may change a label it returns.
func NewCache(parse func([]byte) (*label.Label, error)) *Cache {
	return &Cache{parse: parse}
}

const (
	// maxLabels bounds the labels whose derived results are kept; when
	// full the cache is emptied, which costs one translation per label
	// afterwards and is cheaper than tracking recency.
	maxLabels = 1024
	// maxPerLabel bounds the results kept for one label (recipient
	// policies and parties, times policy-set generations); the oldest
	// goes first.
	maxPerLabel = 32
	// maxWordLists bounds the compiled dirty-word lists.
	maxWordLists = 64
)

func (c *Cache) parseLabel(b []byte) (*label.Label, error) {
	if c == nil || c.parse == nil {
		return label.ParseLabel(b)
	}
	return c.parse(b)
}

// derived is worked out from one label under one generation of a policy
// set: its translation into a policy, whether the label (or its
// translation into a policy) may be released to a party, or how it
// compares with a classification. It is never changed once made.
type derived struct {
	kind   derivedKind
	set    *label.PolicySet
	gen    uint64
	to     string // policy the label was translated into; "" for the label as it is
	party  string // a release decision's party
	groups []string
	class  string // a comparison's classification, or a translation's policy

	// A translation.
	tr     *label.Label
	err    error
	alt    []byte
	altErr error

	// A release decision.
	rel label.Decision

	// A comparison (err too).
	cmp int
}

type derivedKind uint8

const (
	translation derivedKind = iota
	release
	comparison
)

// Results are filed under the policy set's generation as read before a
// decision starts: should a policy be added meanwhile, they are filed
// under the old generation and never used again.

// derivedFrom returns what is known about the label whose bytes are raw.
// The slice is never changed, so it may be read without the lock.
func (c *Cache) derivedFrom(raw []byte) []*derived {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.labels[string(raw)]
}

// keep files d under the label whose bytes are raw.
func (c *Cache) keep(raw []byte, d *derived) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.labels == nil || len(c.labels) >= maxLabels {
		c.labels = map[string][]*derived{}
	}
	ds := c.labels[string(raw)]
	if len(ds) >= maxPerLabel {
		ds = ds[1:]
	}
	// A new slice each time: a reader never sees one being changed.
	c.labels[string(raw)] = append(append(make([]*derived, 0, len(ds)+1), ds...), d)
}

// labelRef is a label the guard holds to a rule: the message's label
// (whose bytes are raw) or its translation into policy to, with the
// cache, if any, that remembers what follows from it.
type labelRef struct {
	c   *Cache
	ds  []*derived // c.derivedFrom(raw) when the decision started
	ps  *label.PolicySet
	gen uint64
	l   *label.Label
	raw []byte
	to  string
}

// find returns what was derived from the label and matches, or nil.
func (r labelRef) find(match func(*derived) bool) *derived {
	for _, d := range r.ds {
		if d.set == r.ps && d.gen == r.gen && d.to == r.to && match(d) {
			return d
		}
	}
	return nil
}

// translate returns the label translated into policy to and encoded as
// an alternative label.
func (r labelRef) translate(to string) *derived {
	if d := r.find(func(d *derived) bool { return d.kind == translation && d.class == to }); d != nil {
		return d
	}
	d := &derived{kind: translation, set: r.ps, gen: r.gen, to: r.to, class: to}
	if d.tr, d.err = r.ps.Translate(r.l, to, label.Encrypt); d.err == nil {
		d.alt, d.altErr = d.tr.MarshalXML4774(label.Alternative)
	}
	r.c.keep(r.raw, d)
	return d
}

// releasableTo is ps.ReleasableTo(l, party, groups...).
func (r labelRef) releasableTo(party string, groups []string) label.Decision {
	if r.c == nil {
		return r.ps.ReleasableTo(r.l, party, groups...)
	}
	if d := r.find(func(d *derived) bool {
		return d.kind == release && d.party == party && slices.Equal(d.groups, groups)
	}); d != nil {
		return d.rel
	}
	d := &derived{kind: release, set: r.ps, gen: r.gen, to: r.to, party: party, groups: slices.Clone(groups)}
	d.rel = r.ps.ReleasableTo(r.l, party, groups...)
	r.c.keep(r.raw, d)
	return d.rel
}

// compare is ps.Compare(l, class).
func (r labelRef) compare(class string) (int, error) {
	if r.c == nil {
		return r.ps.Compare(r.l, class)
	}
	if d := r.find(func(d *derived) bool { return d.kind == comparison && d.class == class }); d != nil {
		return d.cmp, d.err
	}
	d := &derived{kind: comparison, set: r.ps, gen: r.gen, to: r.to, class: class}
	d.cmp, d.err = r.ps.Compare(r.l, class)
	r.c.keep(r.raw, d)
	return d.cmp, d.err
}

// wordsKey identifies a word list by its backing array, which the cache's
// entry keeps alive, so another list cannot take its address. The entry is
// still checked against the list, so a list changed in place is compiled
// again rather than matched stale.
type wordsKey struct {
	first *string
	n     int
}

func (c *Cache) wordList(ws []string) *wordList {
	if c == nil || len(ws) == 0 {
		return compileWords(ws)
	}
	k := wordsKey{&ws[0], len(ws)}
	c.mu.Lock()
	l := c.words[k]
	c.mu.Unlock()
	if l != nil && slices.Equal(l.src, ws) {
		return l
	}
	l = compileWords(ws)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.words == nil || len(c.words) >= maxWordLists {
		c.words = map[wordsKey]*wordList{}
	}
	c.words[k] = l
	return l
}
