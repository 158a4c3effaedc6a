package label

import (
	"fmt"
	"slices"
)

// Validate reports whether l is valid under its policy in s: nil if valid,
// else an error naming the broken rule (wrapping ErrInvalid), or the
// resolution error (ErrUnknownPolicy, unknown classification or category).
// Obsolete classifications and categories are accepted (stored labels).
func (s *PolicySet) Validate(l *Label) error {
	r, err := s.resolve(l)
	if err != nil {
		return err
	}
	return r.valid
}

// ValidateNew is Validate for a label being created: obsolete
// classifications and categories are refused too.
func (s *PolicySet) ValidateNew(l *Label) error {
	r, err := s.resolve(l)
	if err != nil {
		return err
	}
	return validate(r, true)
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

func hasAny(cats []*category, want []*category) bool {
	for _, w := range want {
		if slices.Contains(cats, w) {
			return true
		}
	}
	return false
}

func groupMatches(g *catGroup, cats []*category) bool {
	found := false
	for _, cd := range g.data {
		if hasAny(cats, cd.cats) {
			switch g.op {
			case opOnlyOne:
				if found {
					return false
				}
			case opOneOrMore:
				return true
			}
			found = true
		} else if g.op == opAll {
			return false
		}
	}
	return found
}

func (o op) String() string {
	switch o {
	case opOnlyOne:
		return "onlyOne"
	case opOneOrMore:
		return "oneOrMore"
	}
	return "all"
}

func validate(r *resolved, strictNew bool) error {
	cls := r.cls
	if strictNew && cls.obsolete {
		return invalid("classification %q is obsolete", cls.name)
	}
	for _, g := range cls.required {
		if !groupMatches(g, r.cats) {
			return invalid("classification %q requiredCategory (%s) not met", cls.name, g.op)
		}
	}
	var cur *tag
	n := 0
	checkSel := func() error {
		if cur == nil {
			return nil
		}
		if cur.single && n > 1 {
			return invalid("tag %q allows a single selection, label has %d", cur.name, n)
		}
		if cur.max > 0 && n > cur.max {
			return invalid("tag %q allows at most %d values (maxSelection), label has %d", cur.name, cur.max, n)
		}
		if cur.min > 0 && n < cur.min {
			return invalid("tag %q needs at least %d values (minSelection), label has %d", cur.name, cur.min, n)
		}
		return nil
	}
	for _, c := range r.cats {
		if c.tag != cur {
			if err := checkSel(); err != nil {
				return err
			}
			cur, n = c.tag, 0
		}
		n++
		if strictNew && c.obsolete {
			return invalid("category %q is obsolete", c.name)
		}
		if c.requiredClass != nil && c.requiredClass != cls {
			return invalid("category %q requires classification %q (requiredClass)", c.name, c.requiredClass.name)
		}
		if slices.Contains(c.excludedClass, cls) {
			return invalid("category %q is excluded at classification %q (excludedClass)", c.name, cls.name)
		}
		for _, ex := range c.excluded {
			for _, o := range ex.cats {
				if slices.Contains(r.cats, o) {
					return invalid("category %q excludes category %q (excludedCategory)", c.name, o.name)
				}
			}
		}
		for _, g := range c.required {
			if !groupMatches(g, r.cats) {
				return invalid("category %q requiredCategory (%s) not met", c.name, g.op)
			}
		}
	}
	return checkSel()
}
