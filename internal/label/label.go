package label

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Namespaces of the label formats.
const (
	NS4774Label     = "urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"
	NS4774Clearance = "urn:nato:stanag:4774:confidentialityclearance:1:0"
	NSSpiffy        = "http://surevine.com/xmlns/spiffy"
	NSESS           = "urn:xmpp:sec-label:ess:0"
	NSXEP0258       = "urn:xmpp:sec-label:0"
)

// Sentinel errors.
var (
	ErrNoData         = errors.New("no data to parse")
	ErrUnknownPolicy  = errors.New("unknown policy")
	ErrInvalid        = errors.New("label invalid under its policy")
	ErrNoEquivalent   = errors.New("no equivalent under the target policy")
	ErrPolicyMismatch = errors.New("policy mismatch")
)

// Kind is the role of a STANAG 4774 label.
type Kind uint8

// Label kinds.
const (
	Originator Kind = iota
	Alternative
	Metadata
)

func (k Kind) element() string {
	switch k {
	case Alternative:
		return "alternativeConfidentialityLabel"
	case Metadata:
		return "metadataConfidentialityLabel"
	}
	return "originatorConfidentialityLabel"
}

// Category is one category value of a label or clearance. XML labels name
// it (TagSet, Value, folded Type); spiffy and ESS labels give the tag-set
// OID, the exact type and the lacv.
type Category struct {
	TagSet   string  // tag-set name ("" if only the id is known)
	TagSetID string  // tag-set OID ("" if only the name is known)
	Type     TagType // exact when HasLACV, else Restrictive, Permissive or Informative
	Value    string  // category name ("" if only the lacv is known)
	LACV     uint64
	HasLACV  bool
}

// Label is a security label as read, independent of any policy. Names and
// numbers are resolved against a PolicySet by its methods, which cache the
// resolution in the label: do not copy a Label or change its fields after
// first use (make a new one).
type Label struct {
	Kind           Kind
	ID             string // 4774 Id attribute
	PolicyOID      string // OID ("" if only the name is known)
	PolicyName     string
	Class          string // classification name ("" if only the lacv is known)
	ClassLACV      uint64
	HasClassLACV   bool
	NoClass        bool // ESS label without classification
	PrivacyMark    string
	Categories     []Category
	OriginatorID   string
	OriginatorType string
	Created        time.Time
	Review         time.Time
	Format         string // "4774", "spiffy" or "ess"

	cache resolveCache
}

// Clearance is a security clearance as read.
type Clearance struct {
	PolicyOID  string
	PolicyName string
	Classes    []ClassRef
	Categories []Category
	Format     string

	cache clearanceCache
}

// ClassRef names a classification by name or lacv.
type ClassRef struct {
	Name    string
	LACV    uint64
	HasLACV bool
}

// Classification returns the classification's name as read, or its lacv
// in decimal when only the number is known. Use PolicySet.Resolve to get names.
func (l *Label) Classification() string {
	if l.Class != "" || !l.HasClassLACV {
		return l.Class
	}
	return strconv.FormatUint(l.ClassLACV, 10)
}

// PolicyID returns the policy OID if known, else the policy name.
func (l *Label) PolicyID() string {
	if l.PolicyOID != "" {
		return l.PolicyOID
	}
	return l.PolicyName
}

// ParseLabel reads a label in STANAG 4774 XML, spiffy XML, XEP-0258 XML
// or ESS DER/BER (raw or base64).
func ParseLabel(data []byte) (*Label, error) {
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return nil, ErrNoData
	}
	if len(data) > MaxLabelSize {
		return nil, fmt.Errorf("label: %d bytes exceeds the limit of %d", len(data), MaxLabelSize)
	}
	if t[0] == '<' {
		root, err := parseXML(data, MaxLabelSize, false)
		if err != nil {
			return nil, fmt.Errorf("label: %w", err)
		}
		return labelFromXML(root)
	}
	if data[0] == 0x31 {
		l, err := parseESS(data)
		if err == nil {
			return l, nil
		}
		if _, b64err := decodeBase64(t); b64err != nil {
			return nil, err // DER, not base64 text starting with "1"
		}
	}
	der, err := decodeBase64(t)
	if err != nil {
		return nil, errors.New("label: neither XML, DER nor base64")
	}
	return parseESS(der)
}

func decodeBase64(t []byte) ([]byte, error) {
	s := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, string(t))
	s = strings.TrimRight(s, "=")
	return base64.RawStdEncoding.DecodeString(s)
}

func labelFromXML(root *node) (*Label, error) {
	switch {
	case root.ns == NSSpiffy && root.name == "label":
		return spiffyLabel(root)
	case root.ns == NSESS && root.name == "esssecuritylabel":
		der, err := decodeBase64([]byte(root.text))
		if err != nil {
			return nil, fmt.Errorf("label: esssecuritylabel: %w", err)
		}
		return parseESS(der)
	case root.ns == NSXEP0258 && root.name == "securitylabel":
		if lb := root.child("label"); lb != nil && len(lb.children) == 1 {
			return labelFromXML(lb.children[0])
		}
		return nil, errors.New("label: securitylabel without a single label child")
	case root.ns == NS4774Label:
		return label4774(root)
	}
	return nil, fmt.Errorf("label: root <%s> in namespace %q is not a known label", root.name, root.ns)
}

func parseTime(s, what string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if t2, err2 := time.Parse("2006-01-02T15:04:05.999999999", s); err2 == nil {
			return t2, nil
		}
		return time.Time{}, fmt.Errorf("label: %s %q is not an xs:dateTime", what, s)
	}
	return t, nil
}

func label4774(root *node) (*Label, error) {
	l := &Label{Format: "4774"}
	switch strings.ToLower(root.name) {
	case "originatorconfidentialitylabel", "confidentialitylabel":
		l.Kind = Originator
	case "alternativeconfidentialitylabel", "alternateconfidentialitylabel":
		l.Kind = Alternative
	case "metadataconfidentialitylabel":
		l.Kind = Metadata
	default:
		return nil, fmt.Errorf("label: <%s> is not a STANAG 4774 label", root.name)
	}
	l.ID, _ = root.attr("Id")
	var err error
	if rv, ok := root.attrFold("ReviewDateTime"); ok {
		if l.Review, err = parseTime(rv, "ReviewDateTime"); err != nil {
			return nil, err
		}
	}
	ci := root.child("ConfidentialityInformation")
	if ci == nil {
		return nil, errors.New("label: ConfidentialityInformation is missing")
	}
	pi := ci.child("PolicyIdentifier")
	if pi == nil {
		return nil, errors.New("label: PolicyIdentifier is missing")
	}
	l.PolicyName = strings.TrimSpace(pi.text)
	uri, ok := pi.attrFold("URI")
	if !ok {
		uri, _ = pi.attrFold("URL")
	}
	if uri = strings.TrimSpace(uri); uri != "" {
		id := strings.TrimPrefix(strings.TrimPrefix(uri, "urn:oid:"), "URN:OID:")
		if !validOID(id) {
			return nil, fmt.Errorf("label: PolicyIdentifier URI %q is not urn:oid:<oid>", uri)
		}
		l.PolicyOID = id
	}
	if l.PolicyName == "" && l.PolicyOID == "" {
		return nil, errors.New("label: PolicyIdentifier is empty")
	}
	cl := ci.child("Classification")
	if cl == nil || strings.TrimSpace(cl.text) == "" {
		return nil, errors.New("label: Classification is missing")
	}
	l.Class = strings.TrimSpace(cl.text)
	if pm := ci.child("PrivacyMark"); pm != nil {
		l.PrivacyMark = strings.TrimSpace(pm.text)
	}
	if l.Categories, err = categories4774(ci); err != nil {
		return nil, err
	}
	if o := root.child("OriginatorID"); o != nil {
		l.OriginatorID = strings.TrimSpace(o.text)
		l.OriginatorType, _ = o.attr("IDType")
	}
	cd := root.child("CreationDateTime")
	if cd == nil {
		cd = root.child("CreationDataTime")
	}
	if cd != nil {
		if l.Created, err = parseTime(cd.text, "CreationDateTime"); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func categories4774(parent *node) ([]Category, error) {
	var out []Category
	for _, c := range parent.children {
		if c.name != "Category" {
			continue
		}
		tn, _ := c.attrFold("TagName")
		tn = strings.TrimSpace(tn)
		if tn == "" {
			return nil, errors.New("label: Category without TagName")
		}
		ty, _ := c.attrFold("Type")
		var t TagType
		switch strings.ToUpper(strings.TrimSpace(ty)) {
		case "PERMISSIVE":
			t = Permissive
		case "RESTRICTIVE":
			t = Restrictive
		case "INFORMATIVE":
			t = Informative
		default:
			return nil, fmt.Errorf("label: Category %q has Type %q", tn, ty)
		}
		var id string
		if uri, ok := c.attrFold("URI"); ok {
			id = strings.TrimPrefix(strings.TrimSpace(uri), "urn:oid:")
		}
		for _, v := range c.children {
			switch v.name {
			case "GenericValue":
				val := strings.TrimSpace(v.text)
				if val == "" {
					return nil, fmt.Errorf("label: Category %q has an empty GenericValue", tn)
				}
				out = append(out, Category{TagSet: tn, TagSetID: id, Type: t, Value: val})
			case "IntegerValue", "BitStringValue":
				return nil, fmt.Errorf("label: Category %q uses %s, which is not supported", tn, v.name)
			}
		}
	}
	return out, nil
}

func spiffyType(s string) (TagType, error) {
	switch s {
	case "restrictive":
		return Restrictive, nil
	case "permissive":
		return Permissive, nil
	case "enumeratedPermissive":
		return EnumPermissive, nil
	case "enumeratedRestrictive":
		return EnumRestrictive, nil
	case "informative":
		return Informative, nil
	}
	return 0, fmt.Errorf("unsupported tag type %q", s)
}

func spiffyCommon(root *node, what string) (id string, cats []Category, err error) {
	pol := root.child("policy")
	if pol == nil {
		return "", nil, fmt.Errorf("%s: no policy", what)
	}
	id, _ = pol.attr("id")
	if !validOID(id) {
		return "", nil, fmt.Errorf("%s: policy id %q is not an OID", what, id)
	}
	for _, t := range root.all("tag") {
		ts, _ := t.attr("type")
		typ, err := spiffyType(ts)
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", what, err)
		}
		tid, _ := t.attr("id")
		if !validOID(tid) {
			return "", nil, fmt.Errorf("%s: tag id %q is not an OID", what, tid)
		}
		ls, _ := t.attr("lacv")
		lacv, err := strconv.ParseUint(strings.TrimSpace(ls), 10, 64)
		if err != nil {
			return "", nil, fmt.Errorf("%s: tag lacv %q is not a number", what, ls)
		}
		cats = append(cats, Category{TagSetID: tid, Type: typ, LACV: lacv, HasLACV: true})
	}
	return id, cats, nil
}

func spiffyLabel(root *node) (*Label, error) {
	id, cats, err := spiffyCommon(root, "label")
	if err != nil {
		return nil, err
	}
	l := &Label{Format: "spiffy", PolicyOID: id, Categories: cats}
	cl := root.child("classification")
	if cl == nil {
		l.NoClass = true
		return l, nil
	}
	ls, _ := cl.attr("lacv")
	if l.ClassLACV, err = strconv.ParseUint(strings.TrimSpace(ls), 10, 64); err != nil {
		return nil, fmt.Errorf("label: classification lacv %q is not a number", ls)
	}
	l.HasClassLACV = true
	return l, nil
}

// ParseClearance reads a clearance in STANAG 4774 clearance XML, spiffy
// XML or RFC 5755 DER (raw or base64).
func ParseClearance(data []byte) (*Clearance, error) {
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return nil, ErrNoData
	}
	if len(data) > MaxLabelSize {
		return nil, fmt.Errorf("clearance: %d bytes exceeds the limit of %d", len(data), MaxLabelSize)
	}
	if t[0] != '<' {
		der := data
		if data[0] != 0x30 {
			var err error
			if der, err = decodeBase64(t); err != nil {
				return nil, errors.New("clearance: neither XML, DER nor base64")
			}
		}
		return parseClearanceDER(der)
	}
	root, err := parseXML(data, MaxLabelSize, false)
	if err != nil {
		return nil, fmt.Errorf("clearance: %w", err)
	}
	switch {
	case root.ns == NSSpiffy && root.name == "clearance":
		id, cats, err := spiffyCommon(root, "clearance")
		if err != nil {
			return nil, err
		}
		c := &Clearance{Format: "spiffy", PolicyOID: id, Categories: cats}
		for _, cl := range root.all("classification") {
			ls, _ := cl.attr("lacv")
			v, err := strconv.ParseUint(strings.TrimSpace(ls), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("clearance: classification lacv %q is not a number", ls)
			}
			c.Classes = append(c.Classes, ClassRef{LACV: v, HasLACV: true})
		}
		return c, nil
	case root.ns == NS4774Clearance && root.name == "ConfidentialityClearance":
		c := &Clearance{Format: "4774"}
		pi := root.child("PolicyIdentifier")
		if pi == nil {
			return nil, errors.New("clearance: PolicyIdentifier is missing")
		}
		c.PolicyName = strings.TrimSpace(pi.text)
		if uri, ok := pi.attrFold("URI"); ok && strings.TrimSpace(uri) != "" {
			c.PolicyOID = strings.TrimPrefix(strings.TrimSpace(uri), "urn:oid:")
			if !validOID(c.PolicyOID) {
				return nil, fmt.Errorf("clearance: PolicyIdentifier URI %q is not urn:oid:<oid>", uri)
			}
		}
		if c.PolicyName == "" && c.PolicyOID == "" {
			return nil, errors.New("clearance: PolicyIdentifier is empty")
		}
		if cl := root.child("ClassificationList"); cl != nil {
			for _, x := range cl.all("Classification") {
				if n := strings.TrimSpace(x.text); n != "" {
					c.Classes = append(c.Classes, ClassRef{Name: n})
				}
			}
		}
		if c.Categories, err = categories4774(root); err != nil {
			return nil, fmt.Errorf("clearance: %w", err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("clearance: root <%s> in namespace %q is not a known clearance", root.name, root.ns)
}

// CheckSchema checks the STANAG 4774 rules that do not depend on a policy:
// CreationDateTime present, and ReviewDateTime present. Labels read from
// spiffy or ESS carry neither and pass.
func (l *Label) CheckSchema() error {
	if l.Format != "4774" {
		return nil
	}
	if l.Created.IsZero() {
		return errors.New("label: CreationDateTime is missing")
	}
	if l.Review.IsZero() {
		return errors.New("label: ReviewDateTime is missing")
	}
	return nil
}
