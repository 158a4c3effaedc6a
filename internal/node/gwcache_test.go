package node

import (
	"testing"

	"liaison/internal/agreement"
	"liaison/internal/label"
)

// TestGWCache: an answer is computed once per key, and again after the
// node's policies or agreements change.
func TestGWCache(t *testing.T) {
	set, _ := agreement.NewSet()
	ps, _ := label.NewPolicySet()
	n := &Node{agreements: set, policies: ps}
	var c gwCache[int]
	calls := 0
	f := func() int { calls++; return calls }
	steps := []struct {
		name   string
		change func()
		key    string
		want   int
	}{
		{"first", func() {}, "a", 1},
		{"cached", func() {}, "a", 1},
		{"other key", func() {}, "b", 2},
		{"agreements changed", func() { n.agreements = set.Clone() }, "a", 3},
		{"cached again", func() {}, "a", 3},
		{"policies changed", func() { n.policies, _ = label.NewPolicySet() }, "a", 4},
	}
	for _, s := range steps {
		s.change()
		if got := c.get(n, s.key, f); got != s.want {
			t.Errorf("%s: get(%q) = %d, want %d", s.name, s.key, got, s.want)
		}
	}
}

func TestCacheKey(t *testing.T) {
	if cacheKey([]byte("a\x00"), []byte("b")) == cacheKey([]byte("a"), []byte("\x00b")) {
		t.Errorf("cacheKey is ambiguous")
	}
}
