package label

import (
	"strings"
)

// Marking codes (Open XML SPIF 2.1). Only the codes that change a display
// marking have their own bit; every other 2.1 code is accepted and kept as
// a location.
const (
	mcPageTop = 1 << iota
	mcPageBottom
	mcDocumentEnd
	mcNoNameDisplay
	mcNoMarkingDisplay
	mcDocumentStart
	mcSuppressClassName
	mcReplacePolicy
	mcOther // firstLineOfText, lastLineOfText, subject, xHeader, portionMarking, inputTitle, waterMark
)

var markingCodes = map[string]int{
	"pageTop":           mcPageTop,
	"pageBottom":        mcPageBottom,
	"pageTopBottom":     mcPageTop | mcPageBottom,
	"documentStart":     mcDocumentStart,
	"documentEnd":       mcDocumentEnd,
	"noNameDisplay":     mcNoNameDisplay,
	"noMarkingDisplay":  mcNoMarkingDisplay,
	"suppressClassName": mcSuppressClassName,
	"replacePolicy":     mcReplacePolicy,
	"firstLineOfText":   mcOther,
	"lastLineOfText":    mcOther,
	"subject":           mcOther,
	"xHeader":           mcOther,
	"portionMarking":    mcOther,
	"inputTitle":        mcOther,
	"waterMark":         mcOther,
}

// locationCodes are the codes that say where a phrase goes; a markingData
// with none of them applies at the page bottom (the default display).
const locationCodes = mcPageTop | mcPageBottom | mcDocumentStart | mcDocumentEnd | mcNoMarkingDisplay | mcOther

// displayLoc is the location display markings are rendered for.
const displayLoc = mcPageBottom

type phrase struct {
	loc  int
	text string
	has  bool
}

// marking is the marking data and qualifiers of one element in one language.
type marking struct {
	prefix, suffix, sep string
	phrases             []phrase
}

// markings maps a lower-case language tag ("" = no xml:lang) to its marking.
type markings map[string]*marking

// get returns the marking for lang: exact tag, then primary subtag, then
// the unqualified one.
func (m markings) get(lang string) *marking {
	if m == nil {
		return nil
	}
	lang = strings.ToLower(lang)
	if x := m[lang]; x != nil {
		return x
	}
	if i := strings.IndexAny(lang, "-_"); i > 0 {
		if x := m[lang[:i]]; x != nil {
			return x
		}
	}
	return m[""]
}

func parseMarkings(n *node, elem string) (markings, error) {
	var m markings
	get := func(lang string) *marking {
		if m == nil {
			m = markings{}
		}
		x := m[lang]
		if x == nil {
			x = &marking{}
			m[lang] = x
		}
		return x
	}
	type qual struct{ code, text string }
	var fallback []qual
	for _, mq := range n.all("markingQualifier") {
		for _, q := range mq.all("qualifier") {
			txt, ok := q.attr("markingQualifier")
			if !ok {
				continue
			}
			code, _ := q.attr("qualifierCode")
			code = strings.TrimSpace(code)
			if code != "prefix" && code != "suffix" && code != "separator" {
				return nil, spifErr(elem+" qualifier", "qualifierCode %q is not prefix, suffix or separator", code)
			}
			lang := strings.ToLower(q.lang())
			if lang == "" {
				fallback = append(fallback, qual{code, txt})
			}
			x := get(lang)
			switch code {
			case "prefix":
				x.prefix = txt
			case "suffix":
				x.suffix = txt
			case "separator":
				x.sep = txt
			}
		}
	}
	for _, md := range n.all("markingData") {
		lang := strings.ToLower(md.lang())
		x := get(lang)
		loc := 0
		for _, c := range md.all("code") {
			v, ok := markingCodes[strings.TrimSpace(c.text)]
			if !ok {
				return nil, spifErr(elem+" markingData", "unknown marking code %q", strings.TrimSpace(c.text))
			}
			loc |= v
		}
		if loc&locationCodes == 0 {
			loc |= mcPageBottom
		}
		ph, has := md.attr("phrase")
		x.phrases = append(x.phrases, phrase{loc: loc, text: ph, has: has})
	}
	// Language-specific markings fall back to the unqualified qualifiers.
	for lang, x := range m {
		if lang == "" {
			continue
		}
		if len(x.phrases) == 0 && m[""] != nil {
			x.phrases = m[""].phrases
		}
		for _, q := range fallback {
			switch {
			case q.code == "prefix" && x.prefix == "":
				x.prefix = q.text
			case q.code == "suffix" && x.suffix == "":
				x.suffix = q.text
			case q.code == "separator" && x.sep == "":
				x.sep = q.text
			}
		}
	}
	return m, nil
}

// phrase returns the text shown for an element named name.
func (m *marking) phrase(loc int, name string) string {
	for _, p := range m.phrases {
		if p.loc&(loc|mcNoMarkingDisplay) != 0 {
			switch {
			case p.loc&(mcNoNameDisplay|mcNoMarkingDisplay) != 0:
				return ""
			case p.loc&mcReplacePolicy != 0 || !p.has:
				return name
			default:
				return p.text
			}
		}
	}
	return name
}

func (m *marking) policyPhrase(loc int, name string) string {
	for _, p := range m.phrases {
		if p.loc&(loc|mcReplacePolicy) != 0 {
			if !p.has {
				return name
			}
			return p.text
		}
	}
	return name
}

func (m *marking) flag(loc, bit int) bool {
	for _, p := range m.phrases {
		if p.loc&loc != 0 {
			return p.loc&bit != 0
		}
	}
	return false
}

// categoryMarkings appends the category part of a marking; cats are in
// policy order.
func categoryMarkings(b *strings.Builder, lang string, cats []*category, sep string) {
	var cur *tag
	var tagSep, tagSuffix string
	for _, c := range cats {
		md := c.marks.get(lang)
		if md == nil {
			md = c.tag.marks.get(lang)
		}
		ph := c.name
		if md != nil {
			ph = md.phrase(displayLoc, c.name)
		}
		if ph == "" {
			continue
		}
		if c.tag != cur {
			cur = c.tag
			b.WriteString(tagSuffix)
			if b.Len() > 0 {
				b.WriteString(sep)
			}
			tagSep, tagSuffix = "/", ""
			if tm := c.tag.marks.get(lang); tm != nil {
				tagSuffix = tm.suffix
				if tm.sep != "" {
					tagSep = tm.sep
				}
				b.WriteString(tm.prefix)
			}
		} else {
			b.WriteString(tagSep)
		}
		b.WriteString(ph)
	}
	b.WriteString(tagSuffix)
}

func (p *Policy) labelMarking(cls *classification, cats []*category, lang string) string {
	loc := displayLoc
	suppress := false
	for _, c := range cats {
		if m := c.marks.get(lang); m != nil && m.flag(loc, mcSuppressClassName) {
			suppress = true
			break
		}
	}
	pm := p.marks.get(lang)
	sep := ""
	if pm != nil {
		sep = pm.sep
	}
	if sep == "" {
		sep = " "
	}
	var b strings.Builder
	cm := cls.marks.get(lang)
	switch {
	case pm != nil && pm.flag(loc, mcReplacePolicy):
		b.WriteString(pm.policyPhrase(loc, p.name))
	case cm != nil && cm.flag(loc, mcReplacePolicy):
		b.WriteString(cm.policyPhrase(loc, cls.name))
	default:
		replaced := false
		for _, c := range cats {
			if m := c.marks.get(lang); m != nil && m.flag(loc, mcReplacePolicy) {
				b.WriteString(m.policyPhrase(loc, c.name))
				replaced = true
				break
			}
		}
		if !replaced {
			b.WriteString(p.name)
		}
	}
	if !suppress {
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		switch {
		case cm != nil:
			b.WriteString(cm.phrase(loc, cls.name))
		case pm != nil:
			b.WriteString(pm.phrase(loc, cls.name))
		default:
			b.WriteString(cls.name)
		}
	}
	categoryMarkings(&b, lang, cats, sep)
	if pm != nil {
		return pm.prefix + b.String() + pm.suffix
	}
	return b.String()
}

func (p *Policy) clearanceMarking(classes []*classification, cats []*category, lang string) string {
	pm := p.marks.get(lang)
	sep := ""
	var b strings.Builder
	if pm != nil {
		b.WriteString(pm.prefix)
		sep = pm.sep
	}
	if sep == "" {
		sep = " "
	}
	b.WriteString("{")
	for i, c := range classes {
		if i > 0 {
			b.WriteString("|")
		}
		b.WriteString(c.name)
	}
	b.WriteString("}")
	categoryMarkings(&b, lang, cats, sep)
	if pm != nil {
		b.WriteString(pm.suffix)
	}
	return b.String()
}
