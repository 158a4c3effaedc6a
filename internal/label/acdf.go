package label

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// Decision is the result of an access control decision.
type Decision struct {
	Grant  bool
	Reason string
}

type clearanceCache struct {
	p atomic.Pointer[clearanceEntry]
}

type clearanceEntry struct {
	set *PolicySet
	gen uint64
	r   *resolvedClearance
	err error
}

type resolvedClearance struct {
	pol     *Policy
	classes []uint64 // bitset over classification index
	cats    []uint64 // bitset over category ordinal
}

func (rc *resolvedClearance) hasClass(c *classification) bool {
	return rc.classes[c.idx>>6]&(1<<(c.idx&63)) != 0
}

func (rc *resolvedClearance) hasCat(c *category) bool {
	return rc.cats[c.ord>>6]&(1<<(c.ord&63)) != 0
}

func (s *PolicySet) resolveClearance(c *Clearance) (*resolvedClearance, error) {
	if c == nil {
		return nil, errors.New("clearance: no clearance")
	}
	gen := s.gen.Load()
	if e := c.cache.p.Load(); e != nil && e.set == s && e.gen == gen {
		return e.r, e.err
	}
	r, err := s.resolveClearanceSlow(c)
	c.cache.p.Store(&clearanceEntry{set: s, gen: gen, r: r, err: err})
	return r, err
}

func (s *PolicySet) resolveClearanceSlow(c *Clearance) (*resolvedClearance, error) {
	p, err := s.policyOf(c.PolicyOID, c.PolicyName)
	if err != nil {
		return nil, fmt.Errorf("clearance: %w", err)
	}
	r := &resolvedClearance{pol: p, classes: make([]uint64, (len(p.classes)+63)/64), cats: make([]uint64, (len(p.cats)+63)/64)}
	for _, cr := range c.Classes {
		var cl *classification
		if cr.HasLACV {
			cl = p.classByLACV[cr.LACV]
		} else {
			cl = p.classByName[strings.ToLower(cr.Name)]
		}
		if cl == nil {
			return nil, fmt.Errorf("clearance: policy %q has no classification %q/%d", p.name, cr.Name, cr.LACV)
		}
		r.classes[cl.idx>>6] |= 1 << (cl.idx & 63)
	}
	for _, cc := range c.Categories {
		cat, err := p.lookupCategory(cc)
		if err != nil {
			return nil, fmt.Errorf("clearance: %w", err)
		}
		r.cats[cat.ord>>6] |= 1 << (cat.ord & 63)
	}
	return r, nil
}

// ACDF decides whether a holder of clearance c may access data labelled l.
// It fails closed: no label, no clearance, an unknown policy or category,
// an invalid label or different policies all deny.
func (s *PolicySet) ACDF(l *Label, c *Clearance) Decision {
	if s == nil || l == nil {
		return Decision{Reason: "deny: no label"}
	}
	if c == nil {
		return Decision{Reason: "deny: no clearance"}
	}
	r, err := s.resolve(l)
	if err != nil {
		return Decision{Reason: "deny: " + err.Error()}
	}
	if r.valid != nil {
		return Decision{Reason: "deny: " + r.valid.Error()}
	}
	rc, err := s.resolveClearance(c)
	if err != nil {
		return Decision{Reason: "deny: " + err.Error()}
	}
	return acdf(r, rc)
}

func acdf(r *resolved, rc *resolvedClearance) Decision {
	if rc.pol != r.pol {
		return Decision{Reason: fmt.Sprintf("deny: label policy %q differs from clearance policy %q", r.pol.name, rc.pol.name)}
	}
	if !rc.hasClass(r.cls) {
		return Decision{Reason: fmt.Sprintf("deny: classification %q not held", r.cls.name)}
	}
	var permTag *tag
	held := false
	for _, c := range r.cats {
		t := c.tag
		if permTag != nil && t != permTag {
			if !held {
				return Decision{Reason: fmt.Sprintf("deny: no value of permissive tag %q held", permTag.name)}
			}
			permTag = nil
		}
		switch t.typ {
		case Restrictive, EnumRestrictive:
			if !rc.hasCat(c) {
				return Decision{Reason: fmt.Sprintf("deny: restrictive category %q not held", c.name)}
			}
		case Permissive, EnumPermissive:
			if permTag == nil {
				permTag, held = t, false
			}
			if !held && rc.hasCat(c) {
				held = true
			}
		}
	}
	if permTag != nil && !held {
		return Decision{Reason: fmt.Sprintf("deny: no value of permissive tag %q held", permTag.name)}
	}
	return Decision{Grant: true, Reason: "grant"}
}

// ClearanceMarking returns the display marking of c: its classifications
// as {A|B} in hierarchy order, then its categories.
func (s *PolicySet) ClearanceMarking(c *Clearance, lang string) (string, error) {
	rc, err := s.resolveClearance(c)
	if err != nil {
		return "", err
	}
	p := rc.pol
	var classes []*classification
	for _, cl := range p.classes {
		if rc.hasClass(cl) {
			classes = append(classes, cl)
		}
	}
	slices.SortStableFunc(classes, func(a, b *classification) int {
		switch {
		case a.hierarchy < b.hierarchy:
			return -1
		case a.hierarchy > b.hierarchy:
			return 1
		}
		return 0
	})
	var cats []*category
	for _, cat := range p.cats {
		if rc.hasCat(cat) {
			cats = append(cats, cat)
		}
	}
	return p.clearanceMarking(classes, cats, lang), nil
}
