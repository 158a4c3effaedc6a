package label

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// PartyClearance returns the clearance of a partner across a link under
// policy: every classification whose hierarchy is at most ceiling's (""
// = the highest), and in each permissive tag the value named party and
// any value named in groups (case-insensitive); no restrictive values.
func (s *PolicySet) PartyClearance(policy, party string, ceiling string, groups ...string) (*Clearance, error) {
	p := s.Policy(policy)
	if p == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPolicy, policy)
	}
	return p.partyClearance(party, ceiling, groups)
}

func (p *Policy) highest() *classification {
	h := p.classes[0]
	for _, c := range p.classes {
		if c.hierarchy > h.hierarchy {
			h = c
		}
	}
	return h
}

func (p *Policy) partyClearance(party, ceiling string, groups []string) (*Clearance, error) {
	if strings.TrimSpace(party) == "" {
		return nil, errors.New("label: empty party")
	}
	top := p.highest()
	if ceiling != "" {
		top = p.classByName[strings.ToLower(strings.TrimSpace(ceiling))]
		if top == nil {
			return nil, fmt.Errorf("label: policy %q has no classification %q", p.name, ceiling)
		}
	}
	c := &Clearance{PolicyOID: p.id, PolicyName: p.name, Format: "party"}
	for _, cl := range p.classes {
		if cl.hierarchy <= top.hierarchy {
			c.Classes = append(c.Classes, ClassRef{Name: cl.name, LACV: cl.lacv, HasLACV: true})
		}
	}
	names := append([]string{party}, groups...)
	for _, cat := range p.cats {
		if cat.tag.typ != Permissive && cat.tag.typ != EnumPermissive {
			continue
		}
		if slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(strings.TrimSpace(n), cat.name) }) {
			c.Categories = append(c.Categories, Category{
				TagSet: cat.tag.set.name, TagSetID: cat.tag.set.id, Type: cat.tag.typ,
				Value: cat.name, LACV: cat.lacv, HasLACV: true,
			})
		}
	}
	return c, nil
}

// ReleasableTo decides whether l may be released to party (a member of
// groups): the ACDF against the party's clearance at the highest
// classification of l's policy.
func (s *PolicySet) ReleasableTo(l *Label, party string, groups ...string) Decision {
	r, err := s.resolve(l)
	if err != nil {
		return Decision{Reason: "deny: " + err.Error()}
	}
	c, err := r.pol.partyClearance(party, "", groups)
	if err != nil {
		return Decision{Reason: "deny: " + err.Error()}
	}
	return s.ACDF(l, c)
}

// Dominant returns the label that dominates every label in ls, which must
// share one policy (translate first): the highest classification, the
// union of restrictive and informative values, and per permissive tag the
// intersection of the values of the labels that carry the tag. An empty
// intersection is an error (nothing could be released), as is a result
// that is invalid under the policy.
func (s *PolicySet) Dominant(ls ...*Label) (*Label, error) {
	if len(ls) == 0 {
		return nil, errors.New("label: no labels to combine")
	}
	var rs []*resolved
	for _, l := range ls {
		r, err := s.resolve(l)
		if err != nil {
			return nil, err
		}
		if len(rs) > 0 && r.pol != rs[0].pol {
			return nil, fmt.Errorf("%w: labels under %q and %q; translate to one policy first", ErrPolicyMismatch, rs[0].pol.name, r.pol.name)
		}
		rs = append(rs, r)
	}
	out := &resolved{pol: rs[0].pol, cls: rs[0].cls}
	perm := map[*tag][]*category{}
	var permOrder []*tag
	for i, r := range rs {
		if r.cls.hierarchy > out.cls.hierarchy {
			out.cls = r.cls
		}
		byTag := map[*tag][]*category{}
		for _, c := range r.cats {
			switch c.tag.typ {
			case Permissive, EnumPermissive:
				byTag[c.tag] = append(byTag[c.tag], c)
			default:
				out.cats = append(out.cats, c)
			}
		}
		for t, vals := range byTag {
			prev, seen := perm[t]
			if !seen {
				permOrder = append(permOrder, t)
				perm[t] = vals
				continue
			}
			_ = i
			var keep []*category
			for _, v := range prev {
				if slices.Contains(vals, v) {
					keep = append(keep, v)
				}
			}
			perm[t] = keep
		}
	}
	for _, t := range permOrder {
		if len(perm[t]) == 0 {
			return nil, fmt.Errorf("label: no common value of permissive tag %q", t.name)
		}
		out.cats = append(out.cats, perm[t]...)
	}
	out.cats = sortCats(out.cats)
	if err := validate(out, false); err != nil {
		return nil, fmt.Errorf("label: dominant label: %w", err)
	}
	nl := fromResolved(out)
	nl.Format = "4774"
	for _, l := range ls {
		if l.Created.After(nl.Created) {
			nl.Created = l.Created
		}
		if !l.Review.IsZero() && (nl.Review.IsZero() || l.Review.After(nl.Review)) {
			nl.Review = l.Review
		}
	}
	return nl, nil
}
