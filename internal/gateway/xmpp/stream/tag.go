package stream

import (
	"encoding/xml"
	"errors"
	"fmt"
)

// Namespaces in XML 1.0 (which RFC 6120 §11.2 requires of a stream)
// forbids some things encoding/xml lets through. This reader refuses them,
// with these errors (wrapped), and FuzzDifferential accepts these as the
// only cases where it is stricter than encoding/xml.
var (
	// errPrefix: a prefix used on an element or attribute name with no
	// declaration in scope (§5, constraint Prefix Declared). encoding/xml
	// takes the prefix itself as the namespace.
	errPrefix = errors.New("undeclared namespace prefix")
	// errNSDecl: xmlns:p="" (§5, No Prefix Undeclaring, allowed only in
	// XML 1.1), a declaration of the prefix xmlns or of xml to another
	// namespace, or a declaration of the xml or xmlns namespace names for
	// another prefix or as the default (§3, Reserved Prefixes and Namespace
	// Names).
	errNSDecl = errors.New("forbidden namespace declaration")
	// errQName: a name with an empty prefix or local part (":a", "a:"),
	// which is not a QName (§4), or an element with the prefix xmlns (§3).
	errQName = errors.New("malformed qualified name")
	// errDupAttr: two attributes with the same name (XML 1.0 §3.1,
	// constraint Unique Att Spec), or the same local name in the same
	// namespace (Namespaces §6.3).
	errDupAttr = errors.New("duplicate attribute")
)

// The namespace names bound to the reserved prefixes.
const (
	xmlNS   = "http://www.w3.org/XML/1998/namespace"
	xmlnsNS = "http://www.w3.org/2000/xmlns/"
)

// A binding maps a prefix ("" for the default namespace) to a namespace.
type binding struct{ prefix, uri string }

// A qname is a name as written: prefix (maybe empty) and local part.
type qname struct{ prefix, local string }

// rawAttr is an attribute as written, before namespace resolution.
type rawAttr struct {
	name  qname
	value string
}

// name reads the name at b[i:] as encoding/xml does: up to the first ASCII
// byte that cannot be in a name, then checked against XML's Name
// production. ok is false when no name starts at i.
func (r *Reader) name(b []byte, i int) (n qname, next int, ok bool, err error) {
	j, colon, ascii := i, -1, true
	for ; j < len(b) && nameByte(b[j]); j++ {
		switch c := b[j]; {
		case c == ':':
			if colon >= 0 {
				// encoding/xml: "expected element name after <" and the like.
				return qname{}, j, false, nil
			}
			colon = j - i
		case c >= 0x80:
			ascii = false
		}
	}
	if j == i {
		return qname{}, i, false, nil
	}
	s := b[i:j]
	if ascii && !asciiNameChar(s[0], true) || !ascii && !isName(s) {
		return qname{}, j, false, fmt.Errorf("invalid XML name %q", s)
	}
	switch {
	case colon < 0:
		n.local = r.intern(s)
	case colon == 0 || colon == len(s)-1:
		return qname{}, j, false, fmt.Errorf("%w: %q", errQName, s)
	default:
		n.prefix, n.local = r.intern(s[:colon]), r.intern(s[colon+1:])
	}
	return n, j, true, nil
}

// spaceAt skips XML white space from b[i:].
func spaceAt(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// startTag parses a start tag b ("<name attr='v'...>" or ".../>") into the
// element's name and attributes as written. As encoding/xml does in strict
// mode, it wants every attribute to have a quoted value and accepts
// attributes with no space between them.
func (r *Reader) startTag(b []byte) (name qname, empty bool, err error) {
	name, i, ok, err := r.name(b, 1)
	if !ok {
		return name, false, orErr(err, "expected element name after <")
	}
	r.attrs = r.attrs[:0]
	for {
		i = spaceAt(b, i)
		if i >= len(b) {
			return name, false, errors.New("unexpected end of tag")
		}
		switch b[i] {
		case '/':
			if i+1 >= len(b) || b[i+1] != '>' {
				return name, false, errors.New("expected /> in element")
			}
			return name, true, nil
		case '>':
			return name, false, nil
		}
		var a rawAttr
		if a.name, i, ok, err = r.name(b, i); !ok {
			return name, false, orErr(err, "expected attribute name in element")
		}
		i = spaceAt(b, i)
		if i >= len(b) || b[i] != '=' {
			return name, false, errors.New("attribute name without = in element")
		}
		i = spaceAt(b, i+1)
		if i >= len(b) || (b[i] != '\'' && b[i] != '"') {
			return name, false, errors.New("unquoted or missing attribute value in element")
		}
		end := i + 1
		for end < len(b) && b[end] != b[i] {
			end++
		}
		if end >= len(b) {
			return name, false, errors.New("unterminated attribute value")
		}
		if a.value, err = r.attrValue(b[i+1:end], a.name); err != nil {
			return name, false, err
		}
		r.attrs = append(r.attrs, a)
		i = end + 1
	}
}

func orErr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// attrValue decodes a quoted attribute value. Values that need no decoding
// are copied once; namespace names are interned, since they repeat.
func (r *Reader) attrValue(raw []byte, n qname) (string, error) {
	simple := true
	for _, c := range raw {
		if !plain[c] {
			simple = false
			break
		}
	}
	if !simple {
		var err error
		if r.tmp, err = appendText(r.tmp[:0], raw, inAttr); err != nil {
			return "", err
		}
		raw = r.tmp
	}
	if n.prefix == "xmlns" || n.prefix == "" && n.local == "xmlns" {
		return r.intern(raw), nil
	}
	return string(raw), nil
}

// declare puts in scope the namespace declarations among r.attrs, which
// (as encoding/xml has it) apply to the element's own name and attributes.
func (r *Reader) declare() error {
	for _, a := range r.attrs {
		switch {
		case a.name.prefix == "" && a.name.local == "xmlns":
			if a.value == xmlNS || a.value == xmlnsNS {
				return fmt.Errorf("%w: default namespace %q", errNSDecl, a.value)
			}
			r.ns = append(r.ns, binding{"", a.value})
		case a.name.prefix == "xmlns":
			p := a.name.local
			switch {
			case p == "xml" && a.value == xmlNS:
				continue // allowed, and changes nothing
			case p == "xml" || p == "xmlns" || a.value == "" || a.value == xmlNS || a.value == xmlnsNS:
				return fmt.Errorf("%w: xmlns:%s=%q", errNSDecl, p, a.value)
			}
			r.ns = append(r.ns, binding{p, a.value})
		}
	}
	return nil
}

// lookup returns the namespace bound to prefix in the innermost scope.
func (r *Reader) lookup(prefix string) (string, bool) {
	for i := len(r.ns) - 1; i >= 0; i-- {
		if r.ns[i].prefix == prefix {
			return r.ns[i].uri, true
		}
	}
	return "", false
}

// elementName resolves an element name as encoding/xml's translate does:
// an unprefixed name takes the default namespace ("" if none; and, a quirk
// kept, always "" for an element named xmlns), the prefix xml its fixed
// namespace, any other prefix its declaration.
func (r *Reader) elementName(n qname) (xml.Name, error) {
	switch {
	case n.prefix == "xmlns":
		return xml.Name{}, fmt.Errorf("%w: element %s:%s", errQName, n.prefix, n.local)
	case n.prefix == "" && n.local == "xmlns":
		return xml.Name{Local: n.local}, nil
	case n.prefix == "":
		ns, _ := r.lookup("")
		return xml.Name{Space: ns, Local: n.local}, nil
	}
	return r.prefixed(n)
}

// attrName resolves an attribute name: unprefixed attributes (xmlns among
// them) are in no namespace, xmlns:p declarations keep "xmlns" as their
// space, as encoding/xml reports them.
func (r *Reader) attrName(n qname) (xml.Name, error) {
	if n.prefix == "" || n.prefix == "xmlns" {
		return xml.Name{Space: n.prefix, Local: n.local}, nil
	}
	return r.prefixed(n)
}

func (r *Reader) prefixed(n qname) (xml.Name, error) {
	if n.prefix == "xml" {
		return xml.Name{Space: xmlNS, Local: n.local}, nil
	}
	ns, ok := r.lookup(n.prefix)
	if !ok {
		return xml.Name{}, fmt.Errorf("%w %q", errPrefix, n.prefix)
	}
	return xml.Name{Space: ns, Local: n.local}, nil
}

// element builds the Element for a parsed start tag: declarations first,
// then the element's and attributes' names, and no attribute twice.
func (r *Reader) element(n qname) (*Element, error) {
	if err := r.declare(); err != nil {
		return nil, err
	}
	e := r.elems.one()
	var err error
	if e.Name, err = r.elementName(n); err != nil {
		return nil, err
	}
	if len(r.attrs) == 0 {
		return e, nil
	}
	e.Attr = r.attrList.take(len(r.attrs))
	for i, a := range r.attrs {
		if e.Attr[i].Name, err = r.attrName(a.name); err != nil {
			return nil, err
		}
		e.Attr[i].Value = a.value
	}
	return e, uniqueAttrs(e.Attr)
}

// uniqueAttrs checks that no two attributes share a namespace and local
// name (which also rules out the same name written twice).
func uniqueAttrs(as []xml.Attr) error {
	if len(as) <= 16 {
		for i := 1; i < len(as); i++ {
			for _, b := range as[:i] {
				if b.Name == as[i].Name {
					return fmt.Errorf("%w %q", errDupAttr, as[i].Name.Local)
				}
			}
		}
		return nil
	}
	seen := make(map[xml.Name]bool, len(as))
	for _, a := range as {
		if seen[a.Name] {
			return fmt.Errorf("%w %q", errDupAttr, a.Name.Local)
		}
		seen[a.Name] = true
	}
	return nil
}

// endTag parses an end tag b ("</name>", white space allowed before '>').
func (r *Reader) endTag(b []byte) (qname, error) {
	n, i, ok, err := r.name(b, 2)
	if !ok {
		return n, orErr(err, "expected element name after </")
	}
	if i = spaceAt(b, i); i != len(b)-1 {
		return n, fmt.Errorf("invalid characters between </%s and >", n.local)
	}
	return n, nil
}

// intern returns b as a string, shared with an earlier copy if there is
// one in a small cache: element, attribute and prefix names and namespace
// names repeat from stanza to stanza. The cache is two-way set-associative
// with a fixed size, so a peer sending ever new names cannot grow it.
func (r *Reader) intern(b []byte) string {
	if len(b) > maxInterned || len(b) == 0 {
		return string(b)
	}
	// A hash of the length and three bytes is cheap, and spreads the few
	// dozen names a stream uses well enough; a miss costs an allocation.
	n := len(b)
	h := uint32(n)*0x9E3779B1 ^ uint32(b[0])<<16 ^ uint32(b[n/2])<<8 ^ uint32(b[n-1])
	i := (h * 0x85EBCA6B) >> (32 - nameSetBits) * 2
	set := r.names[i : i+2]
	if string(b) == set[0] {
		return set[0]
	}
	if string(b) == set[1] {
		set[0], set[1] = set[1], set[0]
		return set[0]
	}
	set[1], set[0] = set[0], string(b)
	return set[0]
}

// The name cache has 1<<nameSetBits sets of two names each, and keeps
// names of up to maxInterned bytes.
const (
	nameSetBits = 6
	maxInterned = 64
)
