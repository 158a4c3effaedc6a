package label

import (
	"fmt"
	"strings"
)

// Direction selects which equivalences a translation uses.
type Direction uint8

// Directions: Encrypt maps with the source policy's equivalences (the
// sender, at egress); Decrypt with the target policy's (the receiver).
const (
	Encrypt Direction = iota
	Decrypt
)

// ParseDirection reads "encrypt" or "decrypt".
func ParseDirection(s string) (Direction, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "encrypt", "":
		return Encrypt, nil
	case "decrypt":
		return Decrypt, nil
	}
	return 0, fmt.Errorf("label: direction %q is not encrypt or decrypt", s)
}

// Translate returns the alternative label for l under policy toPolicy (id
// or name), by the equivalences of dir. l is not modified. A category
// without an equivalent is an error unless the policy says discard; the
// result must be valid under the target policy.
func (s *PolicySet) Translate(l *Label, toPolicy string, dir Direction) (*Label, error) {
	r, err := s.resolve(l)
	if err != nil {
		return nil, err
	}
	q := s.Policy(toPolicy)
	if q == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPolicy, toPolicy)
	}
	var out *resolved
	if q == r.pol {
		out = &resolved{pol: q, cls: r.cls, cats: append([]*category(nil), r.cats...)}
	} else if dir == Encrypt {
		out, err = encrypt(r, q)
	} else {
		out, err = decrypt(r, q)
	}
	if err != nil {
		return nil, err
	}
	out.cats = sortCats(out.cats)
	if err := validate(out, false); err != nil {
		return nil, fmt.Errorf("label: translated label invalid under %q: %w", q.name, err)
	}
	nl := fromResolved(out)
	nl.Kind = Alternative
	nl.Format = "4774"
	nl.Created, nl.Review = l.Created, l.Review
	nl.OriginatorID, nl.OriginatorType = l.OriginatorID, l.OriginatorType
	return nl, nil
}

func encrypt(r *resolved, q *Policy) (*resolved, error) {
	p := r.pol
	var ec *equivClass
	for _, e := range r.cls.equivs {
		if e.policyID == q.id && e.applied&appliedEncrypt != 0 {
			ec = e
			break
		}
	}
	if ec == nil {
		return nil, fmt.Errorf("%w: classification %q has no encrypt equivalent in %q", ErrNoEquivalent, r.cls.name, q.name)
	}
	out := &resolved{pol: q, cls: q.classByLACV[ec.lacv]}
	if out.cls == nil {
		return nil, fmt.Errorf("%w: policy %q has no classification with lacv %d (equivalent of %q)", ErrNoEquivalent, q.name, ec.lacv, r.cls.name)
	}
	fix, err := compileForeign(q, ec.required, "equivalentClassification requiredCategory")
	if err != nil {
		return nil, err
	}
	out.cats = append(out.cats, fix...)
	for _, c := range r.cats {
		found := false
		for _, e := range c.equivs {
			if e.policyID != q.id || e.applied&appliedEncrypt == 0 {
				continue
			}
			found = true
			if e.discard {
				continue
			}
			ts := q.tagSetByID[e.tagSetID]
			if ts == nil {
				return nil, fmt.Errorf("%w: policy %q has no tag set %s (equivalent of %q)", ErrNoEquivalent, q.name, e.tagSetID, c.name)
			}
			qc := ts.byKey[typeLACV{e.typ, e.lacv}]
			if qc == nil {
				return nil, fmt.Errorf("%w: tag set %q has no %s lacv %d (equivalent of %q)", ErrNoEquivalent, ts.name, e.typ, e.lacv, c.name)
			}
			out.cats = append(out.cats, qc)
		}
		if !found {
			return nil, fmt.Errorf("%w: category %q has no encrypt equivalent in %q", ErrNoEquivalent, c.name, q.name)
		}
	}
	for _, ep := range p.equivPolicies {
		if ep.id == q.id {
			fix, err := compileForeign(q, ep.required, "equivalentPolicy requiredCategory")
			if err != nil {
				return nil, err
			}
			out.cats = append(out.cats, fix...)
		}
	}
	return out, nil
}

func decrypt(r *resolved, q *Policy) (*resolved, error) {
	p := r.pol
	out := &resolved{pol: q}
	for _, cl := range q.classes {
		for _, e := range cl.equivs {
			if e.policyID == p.id && e.applied&appliedDecrypt != 0 && e.lacv == r.cls.lacv {
				if out.cls == nil || cl.hierarchy > out.cls.hierarchy {
					out.cls = cl // the highest equivalent, failing safe
				}
			}
		}
	}
	if out.cls == nil {
		return nil, fmt.Errorf("%w: policy %q has no decrypt equivalent of %q classification %q", ErrNoEquivalent, q.name, p.name, r.cls.name)
	}
	for _, c := range r.cats {
		found, discard := false, false
		for _, qc := range q.cats {
			for _, e := range qc.equivs {
				if e.policyID != p.id || e.applied&appliedDecrypt == 0 {
					continue
				}
				if e.discard {
					// A decrypt discard names the foreign value to drop.
					if e.tagSetID == c.tag.set.id && (e.typ == 0 || e.typ == c.tag.typ) && (!e.hasLACV || e.lacv == c.lacv) {
						discard = true
					}
					continue
				}
				if e.tagSetID == c.tag.set.id && e.typ == c.tag.typ && e.lacv == c.lacv {
					out.cats = append(out.cats, qc)
					found = true
				}
			}
		}
		if !found && !discard {
			return nil, fmt.Errorf("%w: policy %q has no decrypt equivalent of %q category %q", ErrNoEquivalent, q.name, p.name, c.name)
		}
	}
	return out, nil
}
