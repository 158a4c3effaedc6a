package guard

import (
	"slices"
	"sync"

	"liaison/internal/label"
)

// Cache remembers work the guard would otherwise repeat for every message:
// labels parsed, labels translated into a recipient's policy and encoded,
// and dirty-word lists compiled. A decision is the same with a cache as
// without one; a caller that decides often passes one in [Rules]. The
// zero value is ready to use; a Cache is safe for concurrent use and
// bounded in size.
type Cache struct {
	parse func([]byte) (*label.Label, error)

	mu    sync.Mutex                // guards trans and words
	trans map[string][]*translation // by the originator label's bytes
	words map[wordsKey]*wordList
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
	// maxTranslated bounds the labels whose translations are kept; when
	// full the cache is emptied, which costs one translation per label
	// afterwards and is cheaper than tracking recency.
	maxTranslated = 4096
	// maxPerLabel bounds the translations kept for one label (recipient
	// policies times policy-set generations); the oldest goes first.
	maxPerLabel = 8
	// maxWordLists bounds the compiled dirty-word lists.
	maxWordLists = 64
)

func (c *Cache) parseLabel(b []byte) (*label.Label, error) {
	if c == nil || c.parse == nil {
		return label.ParseLabel(b)
	}
	return c.parse(b)
}

// translation is a label translated into a policy and encoded as an
// alternative label, or why it could not be. It is never changed once
// made.
type translation struct {
	set *label.PolicySet
	gen uint64
	to  string

	tr     *label.Label
	err    error
	alt    []byte
	altErr error
}

func translate(ps *label.PolicySet, gen uint64, l *label.Label, to string) *translation {
	t := &translation{set: ps, gen: gen, to: to}
	if t.tr, t.err = ps.Translate(l, to, label.Encrypt); t.err == nil {
		t.alt, t.altErr = t.tr.MarshalXML4774(label.Alternative)
	}
	return t
}

// translate returns l (whose bytes are raw) translated into policy to. The
// generation is read before translating: should a policy be added
// meanwhile, the entry is filed under the old generation and never used
// again.
func (c *Cache) translate(ps *label.PolicySet, l *label.Label, raw []byte, to string) *translation {
	gen := ps.Generation()
	if c == nil {
		return translate(ps, gen, l, to)
	}
	c.mu.Lock()
	for _, t := range c.trans[string(raw)] {
		if t.set == ps && t.gen == gen && t.to == to {
			c.mu.Unlock()
			return t
		}
	}
	c.mu.Unlock()
	t := translate(ps, gen, l, to)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trans == nil || len(c.trans) >= maxTranslated {
		c.trans = map[string][]*translation{}
	}
	ts := c.trans[string(raw)]
	if len(ts) >= maxPerLabel {
		ts = ts[1:]
	}
	// A new slice each time: a reader never sees one being changed.
	c.trans[string(raw)] = append(append(make([]*translation, 0, len(ts)+1), ts...), t)
	return t
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
