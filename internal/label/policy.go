package label

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SPIFNamespace is the Open XML SPIF namespace.
const SPIFNamespace = "http://www.xmlspif.org/spif"

// TagType is the type of a security category tag.
type TagType uint8

// Tag types, as SPIF tagType/enumType name them.
const (
	Restrictive TagType = iota + 1
	Permissive
	EnumRestrictive
	EnumPermissive
	Informative
)

func (t TagType) String() string {
	switch t {
	case Restrictive:
		return "restrictive"
	case Permissive:
		return "permissive"
	case EnumRestrictive:
		return "enumeratedRestrictive"
	case EnumPermissive:
		return "enumeratedPermissive"
	case Informative:
		return "informative"
	}
	return "unknown"
}

// kind folds enumerated types into the STANAG 4774 Type they display as.
func (t TagType) kind() TagType {
	switch t {
	case EnumRestrictive:
		return Restrictive
	case EnumPermissive:
		return Permissive
	}
	return t
}

// Kind4774 is the STANAG 4774 Type attribute of the tag type.
func (t TagType) Kind4774() string {
	switch t.kind() {
	case Restrictive:
		return "RESTRICTIVE"
	case Permissive:
		return "PERMISSIVE"
	case Informative:
		return "INFORMATIVE"
	}
	return ""
}

// Policy is one parsed security policy (SPIF). It is immutable.
type Policy struct {
	id, name      string
	digest        [32]byte
	schemaVersion string
	defaultID     string
	classes       []*classification
	classByName   map[string]*classification
	classByLACV   map[uint64]*classification
	tagSets       []*tagSet
	tagSetByID    map[string]*tagSet
	tagSetByName  map[string]*tagSet
	cats          []*category
	marks         markings
	equivPolicies []*equivPolicy
	equivByName   map[string]*equivPolicy
}

type classification struct {
	name      string
	lacv      uint64
	hierarchy int64
	obsolete  bool
	required  []*catGroup
	equivs    []*equivClass
	marks     markings
	idx       int
}

type tagSet struct {
	name, id string
	tags     []*tag
	byKey    map[typeLACV]*category
	byName   map[typeName]*category
	marks    markings
}

type typeLACV struct {
	t TagType
	l uint64
}

type typeName struct {
	t TagType // folded kind
	n string  // lower case
}

type tag struct {
	name     string
	set      *tagSet
	typ      TagType
	single   bool
	min, max int
	cats     []*category
	marks    markings
	t7enc    string
	ordinal  int
}

type category struct {
	name          string
	lacv          uint64
	tag           *tag
	ord           int
	obsolete      bool
	requiredClass *classification
	excludedClass []*classification
	required      []*catGroup
	excluded      []*catData
	equivs        []*equivCat
	marks         markings
}

type op uint8

const (
	opOnlyOne op = iota
	opOneOrMore
	opAll
)

type catData struct {
	tagSetRef string
	typ       TagType
	lacv      uint64
	all       bool
	cats      []*category
}

type catGroup struct {
	op   op
	data []*catData
}

const (
	appliedEncrypt = 1
	appliedDecrypt = 2
)

type equivPolicy struct {
	name, id string
	required []*catGroup // refers to the foreign policy's tag sets
}

type equivClass struct {
	policyID string
	lacv     uint64
	applied  int
	required []*catGroup // refers to the foreign policy's tag sets
}

type equivCat struct {
	policyID string
	tagSetID string
	typ      TagType
	lacv     uint64
	applied  int
	discard  bool
	hasLACV  bool // for a discard: lacv given
}

// ID returns the policy's OID.
func (p *Policy) ID() string { return p.id }

// Name returns the policy's name.
func (p *Policy) Name() string { return p.name }

// Digest returns the SHA-256 of the exact bytes parsed.
func (p *Policy) Digest() [32]byte { return p.digest }

// SchemaVersion returns the SPIF schemaVersion attribute ("" if absent).
func (p *Policy) SchemaVersion() string { return p.schemaVersion }

func spifErr(elem, format string, a ...any) error {
	return fmt.Errorf("spif: %s: %s", elem, fmt.Sprintf(format, a...))
}

// ParsePolicy parses an Open XML SPIF. It accepts schema versions 1.0, 2.0
// and 2.1, and a root SPIF element without namespace (older spiffing
// fixtures); it refuses version 3.0, DTDs and inconsistent policies.
func ParsePolicy(data []byte) (*Policy, error) {
	root, err := parseXML(data, MaxPolicySize, true)
	if err != nil {
		return nil, fmt.Errorf("spif: %w", err)
	}
	if root.name != "SPIF" || (root.ns != "" && root.ns != SPIFNamespace) {
		return nil, fmt.Errorf("spif: root element is <%s> in %q, not SPIF", root.name, root.ns)
	}
	p := &Policy{
		digest:       sha256.Sum256(data),
		classByName:  map[string]*classification{},
		classByLACV:  map[uint64]*classification{},
		tagSetByID:   map[string]*tagSet{},
		tagSetByName: map[string]*tagSet{},
		equivByName:  map[string]*equivPolicy{},
	}
	p.schemaVersion, _ = root.attr("schemaVersion")
	switch p.schemaVersion {
	case "", "1.0", "2.0", "2.1":
	default:
		return nil, fmt.Errorf("spif: schemaVersion %q is not supported", p.schemaVersion)
	}
	sp := root.child("securityPolicyId")
	if sp == nil {
		return nil, errors.New("spif: securityPolicyId is missing")
	}
	p.name, _ = sp.attr("name")
	p.id, _ = sp.attr("id")
	p.name = strings.TrimSpace(p.name)
	p.id = strings.TrimPrefix(strings.TrimSpace(p.id), "urn:oid:")
	if p.name == "" || !validOID(p.id) {
		return nil, fmt.Errorf("spif: securityPolicyId: name %q / id %q invalid", p.name, p.id)
	}
	if d := root.child("defaultSecurityPolicyId"); d != nil {
		p.defaultID, _ = d.attr("id")
	}
	if eps := root.child("equivalentPolicies"); eps != nil {
		for _, e := range eps.all("equivalentPolicy") {
			name, _ := e.attr("name")
			id, _ := e.attr("id")
			if name == "" || !validOID(id) {
				return nil, spifErr("equivalentPolicy", "name %q / id %q invalid", name, id)
			}
			if _, dup := p.equivByName[name]; dup {
				return nil, spifErr("equivalentPolicy", "duplicate name %q", name)
			}
			ep := &equivPolicy{name: name, id: id}
			if ep.required, err = parseGroups(e, "equivalentPolicy "+name); err != nil {
				return nil, err
			}
			p.equivPolicies = append(p.equivPolicies, ep)
			p.equivByName[name] = ep
		}
	}
	scs := root.child("securityClassifications")
	if scs == nil {
		return nil, errors.New("spif: securityClassifications is missing")
	}
	for _, c := range scs.all("securityClassification") {
		cl, err := p.parseClassification(c)
		if err != nil {
			return nil, err
		}
		cl.idx = len(p.classes)
		p.classes = append(p.classes, cl)
	}
	if len(p.classes) == 0 {
		return nil, errors.New("spif: securityClassifications: no classification")
	}
	if sets := root.child("securityCategoryTagSets"); sets != nil {
		for _, ts := range sets.all("securityCategoryTagSet") {
			if err := p.parseTagSet(ts); err != nil {
				return nil, err
			}
		}
	}
	if p.marks, err = parseMarkings(root, "SPIF"); err != nil {
		return nil, err
	}
	if err := p.compile(); err != nil {
		return nil, err
	}
	return p, nil
}

func validOID(s string) bool {
	if s == "" {
		return false
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return false
	}
	for _, x := range parts {
		if x == "" || len(x) > 39 {
			return false
		}
		for _, r := range x {
			if r < '0' || r > '9' {
				return false
			}
		}
	}
	return true
}

func parseLACV(s, elem string) (uint64, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, spifErr(elem, "lacv %q is not a non-negative integer", s)
	}
	return v, nil
}

func parseBool(s string) bool { s = strings.TrimSpace(s); return s == "true" || s == "1" }
