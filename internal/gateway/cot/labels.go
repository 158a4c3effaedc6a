package cot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Labeler maps CoT markings to STANAG 4774 labels and back. The node wires
// the label engine in; [MappingLabeler] is the config-driven stand-in.
type Labeler interface {
	// FromCoT returns the label for an event's markings on channel. It MUST
	// fail for a marking it cannot map; the gateway then applies the
	// channel's default label (fail closed).
	FromCoT(access, caveat string, releasableTo []string, channel string) (label []byte, err error)
	// ToCoT returns the markings to write for a label under this node's
	// policy.
	ToCoT(label []byte) (access, caveat string, releasableTo []string, err error)
}

// ErrUnmapped is wrapped by MappingLabeler errors for markings it has no
// mapping for.
var ErrUnmapped = errors.New("cot marking has no mapping")

// STANAG 4774 names used by MappingLabeler.
const (
	ns4774           = "urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"
	DefaultRelToTag  = "Releasable To"
	DefaultCaveatTag = "Caveat"
)

// MappingLabeler builds STANAG 4774 labels from a table. An event without
// an access marking, or with a value missing from Classifications, is not
// mapped (error), so the gateway falls back to the channel default.
type MappingLabeler struct {
	// PolicyID is the SPIF policy identifier (URI or OID) written into
	// every label; PolicyName is its display name.
	PolicyID, PolicyName string
	// Classifications maps a CoT access value (case-insensitive) to the
	// policy's classification name.
	Classifications map[string]string
	// RelToTag and CaveatTag name the permissive and restrictive tag sets
	// (defaults "Releasable To" and "Caveat").
	RelToTag, CaveatTag string
	// Parties, if set, lists the releasableTo values accepted; any other
	// value makes the marking unmappable.
	Parties []string
}

var _ Labeler = (*MappingLabeler)(nil)

// FromCoT implements Labeler.
func (m *MappingLabeler) FromCoT(access, caveat string, releasableTo []string, channel string) ([]byte, error) {
	if access == "" {
		return nil, fmt.Errorf("%w: no access marking", ErrUnmapped)
	}
	class := ""
	for k, v := range m.Classifications {
		if strings.EqualFold(k, strings.TrimSpace(access)) {
			class = v
		}
	}
	if class == "" {
		return nil, fmt.Errorf("%w: access %q", ErrUnmapped, access)
	}
	for _, p := range releasableTo {
		if len(m.Parties) > 0 && !slices.Contains(m.Parties, p) {
			return nil, fmt.Errorf("%w: releasableTo %q", ErrUnmapped, p)
		}
	}
	return m.build(class, strings.Fields(caveat), releasableTo), nil
}

func (m *MappingLabeler) relTo() string  { return cmp(m.RelToTag, DefaultRelToTag) }
func (m *MappingLabeler) caveat() string { return cmp(m.CaveatTag, DefaultCaveatTag) }

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Label builds a label directly; configurations use it for channel
// defaults.
func (m *MappingLabeler) Label(classification string, caveats, releasableTo []string) []byte {
	return m.build(classification, caveats, releasableTo)
}

func (m *MappingLabeler) build(class string, caveats, relTo []string) []byte {
	var b bytes.Buffer
	b.WriteString(`<originatorConfidentialityLabel xmlns="` + ns4774 + `"><ConfidentialityInformation><PolicyIdentifier URI="`)
	xml.EscapeText(&b, []byte(m.PolicyID))
	b.WriteString(`">`)
	xml.EscapeText(&b, []byte(m.PolicyName))
	b.WriteString(`</PolicyIdentifier><Classification>`)
	xml.EscapeText(&b, []byte(class))
	b.WriteString(`</Classification>`)
	cat := func(tag, typ string, vals []string) {
		if len(vals) == 0 {
			return
		}
		b.WriteString(`<Category TagName="`)
		xml.EscapeText(&b, []byte(tag))
		b.WriteString(`" Type="` + typ + `" URI="`)
		xml.EscapeText(&b, []byte(m.PolicyID))
		b.WriteString(`">`)
		for _, v := range vals {
			b.WriteString(`<GenericValue>`)
			xml.EscapeText(&b, []byte(v))
			b.WriteString(`</GenericValue>`)
		}
		b.WriteString(`</Category>`)
	}
	cat(m.caveat(), "RESTRICTIVE", caveats)
	cat(m.relTo(), "PERMISSIVE", relTo)
	b.WriteString(`</ConfidentialityInformation></originatorConfidentialityLabel>`)
	return b.Bytes()
}

// ParsedLabel is the part of a STANAG 4774 label the gateway reads.
type ParsedLabel struct {
	PolicyID       string
	Classification string
	Categories     map[string][]string // tag set name → values
}

type xmlLabel struct {
	Info struct {
		Policy struct {
			URI string `xml:"URI,attr"`
		} `xml:"PolicyIdentifier"`
		Class      string `xml:"Classification"`
		Categories []struct {
			Tag    string   `xml:"TagName,attr"`
			Values []string `xml:"GenericValue"`
		} `xml:"Category"`
	} `xml:"ConfidentialityInformation"`
}

// ParseLabel reads a STANAG 4774 label of the shape MappingLabeler writes.
// It refuses DTDs and is bounded by the message package's label limit.
func ParseLabel(label []byte) (*ParsedLabel, error) {
	if len(label) == 0 || len(label) > 64<<10 || bytes.Contains(label, []byte("<!")) {
		return nil, fmt.Errorf("label of %d bytes refused", len(label))
	}
	var x xmlLabel
	if err := xml.Unmarshal(label, &x); err != nil {
		return nil, fmt.Errorf("parse label: %w", err)
	}
	p := &ParsedLabel{PolicyID: x.Info.Policy.URI, Classification: strings.TrimSpace(x.Info.Class), Categories: map[string][]string{}}
	for _, c := range x.Info.Categories {
		for _, v := range c.Values {
			p.Categories[c.Tag] = append(p.Categories[c.Tag], strings.TrimSpace(v))
		}
	}
	return p, nil
}

// ToCoT implements Labeler: the classification maps back through the
// table (first access value whose classification matches).
func (m *MappingLabeler) ToCoT(label []byte) (access, caveat string, releasableTo []string, err error) {
	p, err := ParseLabel(label)
	if err != nil {
		return "", "", nil, err
	}
	keys := make([]string, 0, len(m.Classifications))
	for k := range m.Classifications {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if m.Classifications[k] == p.Classification {
			access = k
			break
		}
	}
	if access == "" {
		return "", "", nil, fmt.Errorf("%w: classification %q", ErrUnmapped, p.Classification)
	}
	return access, strings.Join(p.Categories[m.caveat()], " "), p.Categories[m.relTo()], nil
}
