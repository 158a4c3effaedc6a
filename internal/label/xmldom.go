package label

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Size bounds for the inputs this package parses.
const (
	MaxPolicySize = 4 << 20  // largest SPIF accepted
	MaxLabelSize  = 64 << 10 // largest label or clearance accepted
	maxDepth      = 64
	maxElements   = 200000
)

// node is a minimal element tree built from encoding/xml raw tokens. Names
// are local names; ns is the resolved namespace URI.
type node struct {
	name     string
	ns       string
	attrs    []xml.Attr // Name.Space holds the prefix as written ("xml" for xml:lang)
	children []*node
	text     string
}

func (n *node) attr(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Local == name && (a.Name.Space == "" || a.Name.Space == "xml" && name == "lang") {
			return a.Value, true
		}
	}
	return "", false
}

// attrFold returns an unprefixed attribute matched case-insensitively.
func (n *node) attrFold(name string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Space == "" && strings.EqualFold(a.Name.Local, name) {
			return a.Value, true
		}
	}
	return "", false
}

func (n *node) lang() string {
	for _, a := range n.attrs {
		if a.Name.Space == "xml" && a.Name.Local == "lang" {
			return a.Value
		}
	}
	return ""
}

func (n *node) child(name string) *node {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (n *node) all(name string) []*node {
	var out []*node
	for _, c := range n.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

var errDTD = errors.New("xml: DTDs and entity declarations are refused")

// parseXML builds a tree from data, refusing DTDs, entity declarations,
// inputs above limit and excessive nesting. When lenient is set, an end tag
// whose name differs from the open element closes it anyway (old spiffing
// SPIFs carry such typos).
func parseXML(data []byte, limit int, lenient bool) (*node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrNoData
	}
	if len(data) > limit {
		return nil, fmt.Errorf("xml: input of %d bytes exceeds the limit of %d", len(data), limit)
	}
	if bytes.Contains(data, []byte("<!DOCTYPE")) || bytes.Contains(data, []byte("<!ENTITY")) {
		return nil, errDTD
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.Entity = nil
	type frame struct {
		n    *node
		nsm  map[string]string
		text strings.Builder
	}
	var stack []*frame
	var root *node
	count := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			count++
			if count > maxElements {
				return nil, errors.New("xml: too many elements")
			}
			if len(stack) >= maxDepth {
				return nil, errors.New("xml: nesting too deep")
			}
			if root != nil && len(stack) == 0 {
				return nil, errors.New("xml: more than one root element")
			}
			nsm := map[string]string{}
			if len(stack) > 0 {
				nsm = stack[len(stack)-1].nsm
			}
			copied := false
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					if !copied {
						m := make(map[string]string, len(nsm)+1)
						for k, v := range nsm {
							m[k] = v
						}
						nsm, copied = m, true
					}
					if a.Name.Space == "" {
						nsm[""] = a.Value
					} else {
						nsm[a.Name.Local] = a.Value
					}
				}
			}
			n := &node{name: t.Name.Local, ns: nsm[t.Name.Space], attrs: t.Attr}
			if len(stack) > 0 {
				p := stack[len(stack)-1].n
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, &frame{n: n, nsm: nsm})
		case xml.EndElement:
			if len(stack) == 0 {
				return nil, fmt.Errorf("xml: unexpected end element </%s>", t.Name.Local)
			}
			f := stack[len(stack)-1]
			if f.n.name != t.Name.Local && !lenient {
				return nil, fmt.Errorf("xml: element <%s> closed by </%s>", f.n.name, t.Name.Local)
			}
			f.n.text = f.text.String()
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("xml: text outside the root element")
			}
		case xml.Directive:
			return nil, errDTD
		}
	}
	if root == nil {
		return nil, ErrNoData
	}
	if len(stack) != 0 {
		return nil, fmt.Errorf("xml: element <%s> not closed", stack[len(stack)-1].n.name)
	}
	return root, nil
}
