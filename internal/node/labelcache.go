package node

import (
	"sync"

	"liaison/internal/guard"
	"liaison/internal/label"
)

// labelCache remembers parsed labels by their bytes. A message's label is
// read many times on its way (accept, each recipient's guard, each local
// subscriber's marking, each gateway's rendering); parsing XML each time
// dominated the profile. A parsed label is safe to share: the label
// package resolves it against a policy set with an atomic cache and never
// changes it otherwise, and nothing in the node modifies one.
type labelCache struct {
	mu sync.Mutex // guards m
	m  map[string]*label.Label
}

// maxCachedLabels bounds the cache; when full it is emptied, which is
// cheaper than tracking recency and costs one parse per label afterwards.
const maxCachedLabels = 4096

var parsedLabels = &labelCache{m: map[string]*label.Label{}}

// parseLabel is label.ParseLabel through the cache. Errors are not cached.
func parseLabel(b []byte) (*label.Label, error) {
	c := parsedLabels
	c.mu.Lock()
	l, ok := c.m[string(b)]
	c.mu.Unlock()
	if ok {
		return l, nil
	}
	l, err := label.ParseLabel(b)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedLabels {
		c.m = map[string]*label.Label{}
	}
	c.m[string(b)] = l
	c.mu.Unlock()
	return l, nil
}

// guardCache is what the guard remembers between decisions: translated
// labels and compiled dirty-word lists. It parses labels through
// parsedLabels, so the guard shares the node's parse of each label. Its
// entries are keyed by the policy set and word list they came from, so
// nodes in one process (tests) and reloads never see each other's.
var guardCache = guard.NewCache(parseLabel)

// guardRules is rules with the node's guard cache: what every guard
// decision of the node runs against.
func (n *Node) guardRules() guard.Rules {
	r := n.rules()
	r.Cache = guardCache
	return r
}
