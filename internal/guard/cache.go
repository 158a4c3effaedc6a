package guard

import (
	"slices"
	"sync"

	"liaison/internal/label"
)

// Cache remembers work the guard would otherwise repeat for every message:
// labels parsed, labels translated into a recipient's policy and encoded,
// whether a label may be released to a party, and dirty-word lists
// compiled. A decision is the same with a cache as
// without one; a caller that decides often passes one in [Rules]. The
// zero value is ready to use; a Cache is safe for concurrent use and
// bounded in size.
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
	maxLabels = 4096
	// maxPerLabel bounds the results kept for one label (recipient
	// policies and parties, times policy-set generations); the oldest
	// goes first.
	maxPerLabel = 16
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
// set: its translation into a policy (party == ""), or whether the label,
// or its translation into a policy, may be released to a party. It is
// never changed once made.
type derived struct {
	set    *label.PolicySet
	gen    uint64
	to     string // policy translated into; "" for the label as it is
	party  string
	groups []string

	// A translation.
	tr     *label.Label
	err    error
	alt    []byte
	altErr error

	// A release decision.
	rel label.Decision
}

// Results are filed under the policy set's generation as read before a
// decision starts: should a policy be added meanwhile, they are filed
// under the old generation and never used again.

// lookup returns what was derived from the label whose bytes are raw and
// matches, or nil.
func (c *Cache) lookup(raw []byte, match func(*derived) bool) *derived {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.labels[string(raw)] {
		if match(d) {
			return d
		}
	}
	return nil
}

func (c *Cache) keep(raw []byte, d *derived) {
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

// translate returns l (whose bytes are raw) translated into policy to and
// encoded as an alternative label.
func (c *Cache) translate(ps *label.PolicySet, gen uint64, l *label.Label, raw []byte, to string) *derived {
	if c != nil {
		if d := c.lookup(raw, func(d *derived) bool { return d.set == ps && d.gen == gen && d.to == to && d.party == "" }); d != nil {
			return d
		}
	}
	d := &derived{set: ps, gen: gen, to: to}
	if d.tr, d.err = ps.Translate(l, to, label.Encrypt); d.err == nil {
		d.alt, d.altErr = d.tr.MarshalXML4774(label.Alternative)
	}
	if c != nil {
		c.keep(raw, d)
	}
	return d
}

// releasableTo is ps.ReleasableTo(l, party, groups...), where l is the
// label whose bytes are raw (to == "") or its translation into policy to.
func (c *Cache) releasableTo(ps *label.PolicySet, gen uint64, l *label.Label, raw []byte, to, party string, groups []string) label.Decision {
	if c == nil {
		return ps.ReleasableTo(l, party, groups...)
	}
	if d := c.lookup(raw, func(d *derived) bool {
		return d.set == ps && d.gen == gen && d.to == to && d.party == party && slices.Equal(d.groups, groups)
	}); d != nil {
		return d.rel
	}
	d := &derived{set: ps, gen: gen, to: to, party: party, groups: slices.Clone(groups)}
	d.rel = ps.ReleasableTo(l, party, groups...)
	c.keep(raw, d)
	return d.rel
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
