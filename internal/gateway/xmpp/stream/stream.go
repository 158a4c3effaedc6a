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
// Start with [NewReader], then [Reader.Header] once per stream (re)start
// and [Reader.Next] in a loop.
package stream

import (
	"bufio"
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

// Header is an opening <stream:stream> tag.
type Header struct {
	To, From, ID, Version, Lang string
	// NS is the default (content) namespace: jabber:client or jabber:server.
	NS string
}

// Reader reads one XMPP stream. It is not safe for concurrent use.
type Reader struct {
	src       *bufio.Reader
	rec       recorder
	dec       *xml.Decoder
	maxStanza int
	maxDepth  int
}

// recorder is the io.ByteReader the decoder reads from: it keeps the bytes
// of the stanza being read and enforces the size limit while they arrive,
// so that no token can grow past the bound.
type recorder struct {
	src    *bufio.Reader
	buf    []byte
	base   int64 // stream offset of buf[0]
	off    int64 // bytes handed to the decoder since the decoder started
	active bool  // recording a stanza
	limit  int
	err    error
}

func (r *recorder) ReadByte() (byte, error) {
	if r.err != nil {
		return 0, r.err
	}
	c, err := r.src.ReadByte()
	if err != nil {
		return 0, err
	}
	r.off++
	if r.active {
		r.buf = append(r.buf, c)
		if len(r.buf) > r.limit {
			r.err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, r.limit)
			return 0, r.err
		}
	} else if r.off-r.base > int64(r.limit) {
		// Bytes between stanzas (whitespace keepalives) are bounded too.
		r.err = fmt.Errorf("%w: %d bytes between stanzas", ErrTooLarge, r.off-r.base)
		return 0, r.err
	}
	return c, nil
}

func (r *recorder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = c
	return 1, nil
}

// NewReader returns a Reader on src. The caller keeps ownership of src; on
// a STARTTLS upgrade make a new Reader on the TLS connection.
func NewReader(src io.Reader) *Reader {
	br, ok := src.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(src, 4096)
	}
	r := &Reader{src: br, maxStanza: DefaultMaxStanza, maxDepth: DefaultMaxDepth}
	r.rec = recorder{src: br, limit: DefaultMaxStanza}
	return r
}

// SetLimit sets the largest stanza accepted, in bytes.
func (r *Reader) SetLimit(n int) {
	if n > 0 {
		r.maxStanza = n
		r.rec.limit = n
	}
}

// Header reads the XML declaration (optional) and the opening stream tag,
// starting a fresh parser as RFC 6120 §4.3.3 requires on a stream restart.
func (r *Reader) Header() (Header, error) {
	r.rec.off, r.rec.base, r.rec.err, r.rec.active = 0, 0, nil, false
	r.rec.buf = r.rec.buf[:0]
	d := xml.NewDecoder(&r.rec)
	d.Strict = true
	r.dec = d
	first := true
	for {
		tok, err := d.Token()
		if err != nil {
			return Header{}, fmt.Errorf("reading stream header: %w", err)
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if !first || t.Target != "xml" {
				return Header{}, fmt.Errorf("%w: processing instruction %q", ErrForbidden, t.Target)
			}
		case xml.CharData:
			if !isSpace(t) {
				return Header{}, errors.New("text before stream header")
			}
		case xml.StartElement:
			if t.Name.Local != "stream" || t.Name.Space != NSStream {
				return Header{}, fmt.Errorf("expected stream:stream, got %q", t.Name.Space+" "+t.Name.Local)
			}
			var h Header
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "" && a.Name.Local == "to":
					h.To = a.Value
				case a.Name.Space == "" && a.Name.Local == "from":
					h.From = a.Value
				case a.Name.Space == "" && a.Name.Local == "id":
					h.ID = a.Value
				case a.Name.Space == "" && a.Name.Local == "version":
					h.Version = a.Value
				case a.Name.Space == xmlNS && a.Name.Local == "lang":
					h.Lang = a.Value
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					h.NS = a.Value
				}
			}
			if h.NS != NSClient && h.NS != NSServer {
				return Header{}, fmt.Errorf("unsupported stream namespace %q", h.NS)
			}
			r.rec.base = r.rec.off
			return h, nil
		default:
			return Header{}, fmt.Errorf("%w: %T before stream header", ErrForbidden, tok)
		}
		first = false
	}
}

const xmlNS = "http://www.w3.org/XML/1998/namespace"

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// Next reads the next top-level stanza (or stream-level element such as
// <starttls/>, <auth/> or an XEP-0198 <r/>). It returns the parsed element
// and a fresh copy of its exact bytes. At the peer's </stream:stream> it
// returns ErrStreamEnd.
func (r *Reader) Next() (*Element, []byte, error) {
	if r.dec == nil {
		return nil, nil, errors.New("stream: Next before Header")
	}
	d := r.dec
	rec := &r.rec
	var stack []*Element
	var root *Element
	pendingLT := false
	// Start recording: between stanzas only whitespace may appear.
	rec.active = true
	rec.buf = rec.buf[:0]
	for {
		pos := len(rec.buf)
		tok, err := d.Token()
		if err != nil {
			rec.active = false
			if errors.Is(err, io.EOF) && len(stack) == 0 {
				return nil, nil, io.EOF
			}
			return nil, nil, fmt.Errorf("reading stanza: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= r.maxDepth {
				return nil, nil, fmt.Errorf("%w: deeper than %d elements", ErrTooLarge, r.maxDepth)
			}
			start := pos
			if pendingLT {
				start = pos - 1
			}
			if len(stack) == 0 {
				// Drop any whitespace recorded before this stanza.
				rec.buf = append(rec.buf[:0], rec.buf[start:]...)
				start = 0
			}
			e := &Element{Name: t.Name, Attr: t.Attr, Start: start}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, e)
			} else {
				root = e
			}
			stack = append(stack, e)
			pendingLT = false
		case xml.EndElement:
			if len(stack) == 0 {
				rec.active = false
				if t.Name.Space == NSStream && t.Name.Local == "stream" {
					return nil, nil, ErrStreamEnd
				}
				return nil, nil, fmt.Errorf("unexpected end element %q", t.Name.Local)
			}
			e := stack[len(stack)-1]
			e.End = len(rec.buf)
			stack = stack[:len(stack)-1]
			pendingLT = false
			if len(stack) == 0 {
				raw := make([]byte, len(rec.buf))
				copy(raw, rec.buf)
				rec.buf = rec.buf[:0]
				rec.active = false
				rec.base = rec.off
				return root, raw, nil
			}
		case xml.CharData:
			if len(stack) == 0 {
				if !isSpace(t) {
					return nil, nil, errors.New("text between stanzas")
				}
				// Keep only the '<' the decoder read ahead.
				if n := len(rec.buf); n > 0 && rec.buf[n-1] == '<' {
					rec.buf = append(rec.buf[:0], '<')
					pendingLT = true
				} else {
					rec.buf = rec.buf[:0]
					pendingLT = false
				}
				rec.base = rec.off
				continue
			}
			e := stack[len(stack)-1]
			e.Text += string(t)
			n := len(rec.buf)
			pendingLT = n > 0 && rec.buf[n-1] == '<'
		case xml.Comment:
			return nil, nil, fmt.Errorf("%w: comment", ErrForbidden)
		case xml.ProcInst:
			return nil, nil, fmt.Errorf("%w: processing instruction %q", ErrForbidden, t.Target)
		case xml.Directive:
			return nil, nil, fmt.Errorf("%w: directive (DTD or entity declaration)", ErrForbidden)
		}
	}
}

// Parse reads one self-contained element (with its own namespace
// declarations) from b, under the same rules and bounds as a stream. It is
// for payloads kept as raw bytes, such as a stored security label.
//
// It returns the element and the bytes its offsets refer to.
func Parse(b []byte, defaultNS string) (*Element, []byte, error) {
	if len(b) > DefaultMaxStanza {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	ns := defaultNS
	if ns == "" {
		ns = NSClient
	}
	hdr := `<stream:stream xmlns:stream="` + NSStream + `" xmlns="` + ns + `">`
	r := NewReader(io.MultiReader(stringsReader(hdr), bytesReader(b), stringsReader("</stream:stream>")))
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
