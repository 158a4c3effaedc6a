package label

// ClassInfo describes one classification of a policy.
type ClassInfo struct {
	Name      string `json:"name"`
	LACV      uint64 `json:"lacv"`
	Hierarchy int64  `json:"hierarchy"`
	Obsolete  bool   `json:"obsolete,omitempty"`
}

// TagInfo describes one security category tag.
type TagInfo struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Values []string `json:"values"`
}

// TagSetInfo describes one tag set.
type TagSetInfo struct {
	Name string    `json:"name"`
	ID   string    `json:"id"`
	Tags []TagInfo `json:"tags"`
}

// EquivInfo counts the equivalences a policy declares towards another.
type EquivInfo struct {
	Name            string `json:"name"`
	ID              string `json:"id"`
	Classifications int    `json:"classifications"`
	Categories      int    `json:"categories"`
}

// PolicySummary is a description of a policy for people and tools.
type PolicySummary struct {
	Classifications []ClassInfo
	TagSets         []TagSetInfo
	Equivalences    []EquivInfo
}

// Summary describes p.
func (p *Policy) Summary() PolicySummary {
	var s PolicySummary
	for _, c := range p.classes {
		s.Classifications = append(s.Classifications, ClassInfo{Name: c.name, LACV: c.lacv, Hierarchy: c.hierarchy, Obsolete: c.obsolete})
	}
	for _, ts := range p.tagSets {
		ti := TagSetInfo{Name: ts.name, ID: ts.id}
		for _, t := range ts.tags {
			tg := TagInfo{Name: t.name, Type: t.typ.String()}
			for _, c := range t.cats {
				tg.Values = append(tg.Values, c.name)
			}
			ti.Tags = append(ti.Tags, tg)
		}
		s.TagSets = append(s.TagSets, ti)
	}
	for _, ep := range p.equivPolicies {
		e := EquivInfo{Name: ep.name, ID: ep.id}
		for _, c := range p.classes {
			for _, q := range c.equivs {
				if q.policyID == ep.id {
					e.Classifications++
				}
			}
		}
		for _, c := range p.cats {
			for _, q := range c.equivs {
				if q.policyID == ep.id {
					e.Categories++
				}
			}
		}
		s.Equivalences = append(s.Equivalences, e)
	}
	return s
}
