package label

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// PolicySet holds the policies a node knows. Methods are safe for
// concurrent use; Add may run concurrently with lookups.
type PolicySet struct {
	mu     sync.RWMutex
	byID   map[string]*Policy
	byName map[string]*Policy
	list   []*Policy
	gen    atomic.Uint64
}

// NewPolicySet returns a set holding ps; it fails on a duplicate id or name.
func NewPolicySet(ps ...*Policy) (*PolicySet, error) {
	s := &PolicySet{byID: map[string]*Policy{}, byName: map[string]*Policy{}}
	for _, p := range ps {
		if err := s.Add(p); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Add adds p; it fails if a policy with the same id or name is present.
func (s *PolicySet) Add(p *Policy) error {
	if p == nil {
		return errors.New("label: nil policy")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID, s.byName = map[string]*Policy{}, map[string]*Policy{}
	}
	if _, dup := s.byID[p.id]; dup {
		return fmt.Errorf("label: policy id %q already loaded", p.id)
	}
	n := strings.ToLower(p.name)
	if _, dup := s.byName[n]; dup {
		return fmt.Errorf("label: policy name %q already loaded", p.name)
	}
	s.byID[p.id] = p
	s.byName[n] = p
	s.list = append(s.list, p)
	s.gen.Add(1)
	return nil
}

// Generation returns a number that changes whenever a policy is added to
// s. A result a caller derived from s (a translation, say) may be reused
// while the generation stays the same.
func (s *PolicySet) Generation() uint64 { return s.gen.Load() }

// Policies returns the loaded policies in the order added.
func (s *PolicySet) Policies() []*Policy {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.list)
}

// Policy returns the policy with this OID (optionally "urn:oid:"-prefixed)
// or name (case-insensitive), or nil.
func (s *PolicySet) Policy(idOrName string) *Policy {
	if s == nil {
		return nil
	}
	k := strings.TrimSpace(idOrName)
	if len(k) > 8 && strings.EqualFold(k[:8], "urn:oid:") {
		k = k[8:]
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p := s.byID[k]; p != nil {
		return p
	}
	return s.byName[strings.ToLower(k)]
}

// resolved is a label bound to its policy: classification and categories
// in policy order, without duplicates.
type resolved struct {
	pol   *Policy
	cls   *classification
	cats  []*category
	valid error // validity, computed once
}

type resolveCache struct {
	p atomic.Pointer[resolveEntry]
}

type resolveEntry struct {
	set *PolicySet
	gen uint64
	r   *resolved
	err error
}

func (s *PolicySet) policyOf(oid, name string) (*Policy, error) {
	var p *Policy
	if oid != "" {
		p = s.Policy(oid)
		if p == nil {
			return nil, fmt.Errorf("%w: id %s", ErrUnknownPolicy, oid)
		}
		if name != "" && !strings.EqualFold(name, p.name) {
			return nil, fmt.Errorf("%w: %q names policy %q but its id %s is policy %q", ErrPolicyMismatch, name, name, oid, p.name)
		}
		return p, nil
	}
	if p = s.Policy(name); p == nil || !strings.EqualFold(p.name, name) {
		return nil, fmt.Errorf("%w: name %q", ErrUnknownPolicy, name)
	}
	return p, nil
}

func (p *Policy) lookupCategory(c Category) (*category, error) {
	var ts *tagSet
	if c.TagSetID != "" {
		ts = p.tagSetByID[c.TagSetID]
	}
	if ts == nil && c.TagSet != "" {
		ts = p.tagSetByName[strings.ToLower(c.TagSet)]
	}
	if ts == nil {
		return nil, fmt.Errorf("policy %q has no tag set %q", p.name, c.TagSet+c.TagSetID)
	}
	var cat *category
	if c.HasLACV {
		cat = ts.byKey[typeLACV{c.Type, c.LACV}]
		if cat == nil {
			return nil, fmt.Errorf("tag set %q has no %s category with lacv %d", ts.name, c.Type, c.LACV)
		}
	} else {
		cat = ts.byName[typeName{c.Type.kind(), strings.ToLower(c.Value)}]
		if cat == nil {
			return nil, fmt.Errorf("tag set %q has no %s category %q", ts.name, c.Type.Kind4774(), c.Value)
		}
	}
	return cat, nil
}

func sortCats(cs []*category) []*category {
	slices.SortFunc(cs, func(a, b *category) int { return a.ord - b.ord })
	return slices.CompactFunc(cs, func(a, b *category) bool { return a == b })
}

// resolve binds l to its policy in s, caching the result in l.
func (s *PolicySet) resolve(l *Label) (*resolved, error) {
	if l == nil {
		return nil, errors.New("label: no label")
	}
	gen := s.gen.Load()
	if e := l.cache.p.Load(); e != nil && e.set == s && e.gen == gen {
		return e.r, e.err
	}
	r, err := s.resolveSlow(l)
	l.cache.p.Store(&resolveEntry{set: s, gen: gen, r: r, err: err})
	return r, err
}

func (s *PolicySet) resolveSlow(l *Label) (*resolved, error) {
	p, err := s.policyOf(l.PolicyOID, l.PolicyName)
	if err != nil {
		return nil, err
	}
	r := &resolved{pol: p}
	switch {
	case l.HasClassLACV:
		r.cls = p.classByLACV[l.ClassLACV]
		if r.cls == nil {
			return nil, fmt.Errorf("label: policy %q has no classification with lacv %d", p.name, l.ClassLACV)
		}
	case l.Class != "":
		r.cls = p.classByName[strings.ToLower(l.Class)]
		if r.cls == nil {
			return nil, fmt.Errorf("label: policy %q has no classification %q", p.name, l.Class)
		}
	default:
		return nil, fmt.Errorf("label: no classification")
	}
	for _, c := range l.Categories {
		cat, err := p.lookupCategory(c)
		if err != nil {
			return nil, fmt.Errorf("label: %w", err)
		}
		r.cats = append(r.cats, cat)
	}
	r.cats = sortCats(r.cats)
	r.valid = validate(r, false)
	return r, nil
}

// Resolve returns a copy of l with policy, classification and category
// names and numbers filled in from its policy in s.
func (s *PolicySet) Resolve(l *Label) (*Label, error) {
	r, err := s.resolve(l)
	if err != nil {
		return nil, err
	}
	out := fromResolved(r)
	out.Kind, out.ID, out.PrivacyMark = l.Kind, l.ID, l.PrivacyMark
	out.OriginatorID, out.OriginatorType = l.OriginatorID, l.OriginatorType
	out.Created, out.Review, out.Format = l.Created, l.Review, l.Format
	return out, nil
}

func fromResolved(r *resolved) *Label {
	l := &Label{
		PolicyOID: r.pol.id, PolicyName: r.pol.name,
		Class: r.cls.name, ClassLACV: r.cls.lacv, HasClassLACV: true,
	}
	for _, c := range r.cats {
		l.Categories = append(l.Categories, Category{
			TagSet: c.tag.set.name, TagSetID: c.tag.set.id, Type: c.tag.typ,
			Value: c.name, LACV: c.lacv, HasLACV: true,
		})
	}
	return l
}

// PolicyOf returns the policy l resolves to in s.
func (s *PolicySet) PolicyOf(l *Label) (*Policy, error) {
	r, err := s.resolve(l)
	if err != nil {
		return nil, err
	}
	return r.pol, nil
}

// Marking returns the display marking of l in language lang ("" = default).
func (s *PolicySet) Marking(l *Label, lang string) (string, error) {
	r, err := s.resolve(l)
	if err != nil {
		return "", err
	}
	return r.pol.labelMarking(r.cls, r.cats, lang), nil
}

// Compare compares l's classification with the named classification of
// l's policy by hierarchy: -1 lower, 0 same, 1 higher.
func (s *PolicySet) Compare(l *Label, classification string) (int, error) {
	r, err := s.resolve(l)
	if err != nil {
		return 0, err
	}
	c := r.pol.classByName[strings.ToLower(strings.TrimSpace(classification))]
	if c == nil {
		return 0, fmt.Errorf("label: policy %q has no classification %q", r.pol.name, classification)
	}
	switch {
	case r.cls.hierarchy < c.hierarchy:
		return -1, nil
	case r.cls.hierarchy > c.hierarchy:
		return 1, nil
	}
	return 0, nil
}
