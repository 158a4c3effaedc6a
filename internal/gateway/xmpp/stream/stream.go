// Package stream reads XMPP streams (RFC 6120 §4) incrementally and in
// bounded memory, one top-level stanza at a time, keeping the exact bytes of
// each stanza beside a small parsed view of it.
//
// The raw bytes matter: re-encoding a stanza through encoding/xml duplicates
// xmlns attributes and rewrites prefixes, which corrupts namespaced payloads
// such as XEP-0258 security labels. A gateway forwards or stores the bytes
// that [Reader.Next] returns (or byte ranges of them, see [Element.Raw]) and
// uses the parsed [Element] only to decide.
//
// The reader refuses what an XMPP stream must not contain (RFC 6120 §11.1):
// DTDs and entity declarations, processing instructions after the XML
// declaration, comments, undeclared entities, and stanzas larger or deeper
// than the configured bounds. It never panics on input.
//
// It is its own parser for that restricted XML, not encoding/xml: it
// copies input in chunks from a bufio.Reader (input.go), finds each token
// whole, then parses it from memory (tag.go, text.go). It accepts what
// encoding/xml in strict mode accepts and reports the same names, attributes
// and text, except for a few constructs that Namespaces in XML forbids and
// encoding/xml lets through (listed in tag.go); FuzzDifferential holds it
// to that against the encoding/xml reader it replaced.
//
// Start with [NewReader], then [Reader.Header] once per stream (re)start
// and [Reader.Next] in a loop.
package stream

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// Stream namespaces.
const (
	NSStream = "http://etherx.jabber.org/streams"
	NSClient = "jabber:client"
	NSServer = "jabber:server"
)

// Default bounds. Prosody allows 10,000 bytes before authentication and
// 512 KiB after; a gateway tightens [Reader.SetLimit] after SASL success.
const (
	DefaultMaxStanza = 256 << 10
	DefaultMaxDepth  = 32
	PreAuthMaxStanza = 10000
)

// ErrTooLarge is returned (wrapped) when a stanza exceeds the size limit.
var ErrTooLarge = errors.New("stanza too large")

// ErrForbidden is returned (wrapped) for XML constructs an XMPP stream must
// not carry: DTDs, entity declarations, comments, processing instructions.
var ErrForbidden = errors.New("restricted xml")

// ErrStreamEnd is returned by Next when the peer closed its stream with
// </stream:stream>.
var ErrStreamEnd = errors.New("stream closed by peer")

// Element is a parsed element of a stanza. Raw byte offsets refer to the
// stanza's raw bytes as returned by Next.
type Element struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []*Element
	// Text is the concatenated character data directly inside the element.
	Text string
	// Start and End delimit the element in the stanza's raw bytes.
	Start, End int
}

// Raw returns the bytes of e inside raw, the stanza bytes e came from.
func (e *Element) Raw(raw []byte) []byte {
	if e == nil || e.Start < 0 || e.End > len(raw) || e.Start > e.End {
		return nil
	}
	return raw[e.Start:e.End]
}

// AttrValue returns the value of the unqualified or any-namespace attribute local.
func (e *Element) AttrValue(local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == "xml") {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child with the given namespace and local name.
// An empty space matches any namespace.
func (e *Element) Child(space, local string) *Element {
	for _, c := range e.Children {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			return c
		}
	}
	return nil
}

// ChildrenNamed returns every child with the given namespace and local name.
func (e *Element) ChildrenNamed(space, local string) []*Element {
	var out []*Element
	for _, c := range e.Children {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			out = append(out, c)
		}
	}
	return out
}

// Reader reads one XMPP stream. It is not safe for concurrent use.
type Reader struct {
	src       *bufio.Reader
	maxStanza int
	maxDepth  int

	buf    []byte // the stanza (or header) being read; see input.go
	peeked int    // bytes at the end of buf still unconsumed in src
	err    error  // sticky: once Next fails it keeps failing

	started bool  // Header succeeded
	closed  bool  // the stream header was an empty element
	stream  qname // the stream element's name as written, which its end tag repeats

	ns     []binding                // namespaces in scope, the stream header's first
	nsBase int                      // how many of ns the stream header declared
	frames []frame                  // open elements of the stanza being read
	root   *Element                 // the stanza's top-level element
	text   []byte                   // character data of the open elements, innermost last
	attrs  []rawAttr                // attributes of the tag being parsed
	tmp    []byte                   // scratch for decoding
	kids   []*Element               // children of the open elements, innermost last
	names  [2 << nameSetBits]string // see intern

	elems    slab[Element]
	attrList slab[xml.Attr]
	kidList  slab[*Element]
}

// A frame is an open element.
type frame struct {
	e      *Element
	name   qname // as written in the start tag, which the end tag repeats
	nsMark int   // len(ns) before the element's declarations
	text   int   // where the element's character data starts in Reader.text
	kids   int   // where the element's children start in Reader.kids
}

// NewReader returns a Reader on src. The caller keeps ownership of src; on
// a STARTTLS upgrade make a new Reader on the TLS connection.
func NewReader(src io.Reader) *Reader {
	br, ok := src.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(src, 4096)
	}
	return &Reader{src: br, maxStanza: DefaultMaxStanza, maxDepth: DefaultMaxDepth}
}

// SetLimit sets the largest stanza accepted, in bytes. The same bound
// applies to the stream header and to white space between stanzas.
func (r *Reader) SetLimit(n int) {
	if n > 0 {
		r.maxStanza = n
	}
}

// fail makes err sticky and gives up the input looked at.
func (r *Reader) fail(err error) error {
	r.err = err
	r.consume(len(r.buf))
	return err
}

// Next reads the next top-level stanza (or stream-level element such as
// <starttls/>, <auth/> or an XEP-0198 <r/>). It returns the parsed element
// and a fresh copy of its exact bytes. At the peer's </stream:stream> it
// returns ErrStreamEnd; at the end of input between stanzas, io.EOF.
func (r *Reader) Next() (*Element, []byte, error) {
	if r.err != nil {
		return nil, nil, r.err
	}
	if !r.started {
		return nil, nil, errors.New("stream: Next before Header")
	}
	if r.closed {
		r.err = ErrStreamEnd
		return nil, nil, ErrStreamEnd
	}
	r.buf = r.buf[:0]
	e, end, err := r.stanza()
	if err != nil {
		if err != io.EOF && err != ErrStreamEnd {
			err = fmt.Errorf("reading stanza: %w", err)
		}
		return nil, nil, r.fail(err)
	}
	raw := bytes.Clone(r.buf[:end])
	r.consume(end)
	r.root = nil
	clear(r.frames[:cap(r.frames)])
	r.elems.reset()
	r.attrList.reset()
	r.kidList.reset()
	r.shrink()
	return e, raw, nil
}

// shrink lets go of scratch space a large stanza left behind, so that an
// idle session holds little memory.
func (r *Reader) shrink() {
	const keep = 16 << 10
	if cap(r.buf) > keep {
		r.buf = nil
	}
	if cap(r.text) > keep {
		r.text = nil
	}
	if cap(r.tmp) > keep {
		r.tmp = nil
	}
}

// stanza parses tokens until a top-level element ends at r.buf[end]; on
// return, r.buf starts with it. Between stanzas only white space may
// appear (RFC 6120 §11.7), and the stream's end tag.
func (r *Reader) stanza() (*Element, int, error) {
	r.frames, r.text, r.ns, r.kids = r.frames[:0], r.text[:0], r.ns[:r.nsBase], r.kids[:0]
	for pos := 0; ; {
		kind, end, err := r.token(pos)
		if err != nil {
			if len(r.frames) > 0 {
				err = eofIsUnexpected(err)
			}
			return nil, 0, err
		}
		tok := r.buf[pos:end]
		switch {
		case len(r.frames) == 0 && (kind == tokText || kind == tokCDATA):
			if err := r.topText(tok, kind); err != nil {
				return nil, 0, err
			}
			r.drop(end)
			end = 0
		case kind == tokText || kind == tokCDATA:
			if r.text, err = appendText(r.text, textOf(tok, kind), modeOf(kind)); err != nil {
				return nil, 0, err
			}
		case kind == tokStart:
			if err := r.open(tok, pos, end); err != nil {
				return nil, 0, err
			}
		case kind == tokEnd:
			if err := r.close(tok, end); err != nil {
				return nil, 0, err
			}
		default:
			return nil, 0, forbidden(kind, nil)
		}
		if kind != tokText && kind != tokCDATA && len(r.frames) == 0 {
			return r.root, end, nil
		}
		pos = end
	}
}

// open starts the element whose start tag is r.buf[pos:end].
func (r *Reader) open(tag []byte, pos, end int) error {
	n, empty, err := r.startTag(tag)
	if err != nil {
		return err
	}
	if len(r.frames) >= r.maxDepth {
		return fmt.Errorf("%w: deeper than %d elements", ErrTooLarge, r.maxDepth)
	}
	mark := len(r.ns)
	e, err := r.element(n)
	if err != nil {
		return err
	}
	e.Start = pos
	if len(r.frames) > 0 {
		r.kids = append(r.kids, e)
	} else {
		r.root = e
	}
	if empty {
		e.End = end
		r.ns = r.ns[:mark]
		return nil
	}
	r.frames = append(r.frames, frame{e: e, name: n, nsMark: mark, text: len(r.text), kids: len(r.kids)})
	return nil
}

// close ends the innermost open element with the end tag r.buf[pos:end],
// which must repeat its name as written (XML 1.0 §3, constraint Element
// Type Match). Outside any stanza, only the stream's own end tag may come.
func (r *Reader) close(tag []byte, end int) error {
	n, err := r.endTag(tag)
	if err != nil {
		return err
	}
	if len(r.frames) == 0 {
		if n != r.stream {
			return fmt.Errorf("element <%s> closed by </%s>", r.stream, n)
		}
		r.consume(end)
		return ErrStreamEnd
	}
	f := r.frames[len(r.frames)-1]
	if n != f.name {
		return fmt.Errorf("element <%s> closed by </%s>", f.name, n)
	}
	f.e.End = end
	if len(r.text) > f.text {
		f.e.Text = string(r.text[f.text:])
		r.text = r.text[:f.text]
	}
	if len(r.kids) > f.kids {
		f.e.Children = r.kidList.take(len(r.kids) - f.kids)
		copy(f.e.Children, r.kids[f.kids:])
		clear(r.kids[f.kids:])
		r.kids = r.kids[:f.kids]
	}
	r.ns = r.ns[:f.nsMark]
	r.frames = r.frames[:len(r.frames)-1]
	return nil
}

func (n qname) String() string {
	if n.prefix == "" {
		return n.local
	}
	return n.prefix + ":" + n.local
}

// topText checks character data outside any element: once decoded, it
// must be white space.
func (r *Reader) topText(tok []byte, kind tokKind) error {
	if kind == tokText && isSpace(tok) {
		return nil
	}
	var err error
	if r.tmp, err = appendText(r.tmp[:0], textOf(tok, kind), modeOf(kind)); err != nil {
		return err
	}
	if !isSpace(r.tmp) {
		return errors.New("text between stanzas")
	}
	return nil
}

// textOf is the character data of a text or CDATA token.
func textOf(tok []byte, kind tokKind) []byte {
	if kind == tokCDATA {
		return tok[len("<![CDATA[") : len(tok)-len("]]>")]
	}
	return tok
}

func modeOf(kind tokKind) textMode {
	if kind == tokCDATA {
		return inCDATA
	}
	return inContent
}

// forbidden is the error for markup an XMPP stream must not carry.
func forbidden(kind tokKind, target []byte) error {
	switch kind {
	case tokComment:
		return fmt.Errorf("%w: comment", ErrForbidden)
	case tokPI:
		if target == nil {
			return fmt.Errorf("%w: processing instruction", ErrForbidden)
		}
		return fmt.Errorf("%w: processing instruction %q", ErrForbidden, target)
	}
	return fmt.Errorf("%w: directive (DTD or entity declaration)", ErrForbidden)
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return fmt.Errorf("unexpected end of input: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// Parse reads one self-contained element (with its own namespace
// declarations) from b, under the same rules and bounds as a stream. It is
// for payloads kept as raw bytes, such as a stored security label.
//
// It returns the element and the bytes its offsets refer to.
func Parse(b []byte, defaultNS string) (*Element, []byte, error) {
	return parseWith(b, defaultNS, func(src io.Reader) elementReader { return NewReader(src) })
}

// elementReader is what Parse needs of a stream reader.
type elementReader interface {
	Header() (Header, error)
	Next() (*Element, []byte, error)
}

// parseWith is Parse with the stream reader open makes: b is read as the
// one stanza of a stream whose header declares defaultNS.
func parseWith(b []byte, defaultNS string, open func(io.Reader) elementReader) (*Element, []byte, error) {
	if len(b) > DefaultMaxStanza {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	ns := defaultNS
	if ns == "" {
		ns = NSClient
	}
	hdr := `<stream:stream xmlns:stream="` + NSStream + `" xmlns="` + ns + `">`
	r := open(io.MultiReader(stringsReader(hdr), bytesReader(b), stringsReader("</stream:stream>")))
	if _, err := r.Header(); err != nil {
		return nil, nil, err
	}
	e, raw, err := r.Next()
	if err != nil {
		return nil, nil, err
	}
	if _, _, err := r.Next(); err != ErrStreamEnd {
		return nil, nil, errors.New("trailing data after element")
	}
	return e, raw, nil
}
