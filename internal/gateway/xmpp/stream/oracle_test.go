package stream

// The encoding/xml-based reader this package used before its own scanner,
// kept verbatim (renamed) as the oracle for FuzzDifferential.

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// oracleReader reads one XMPP stream. It is not safe for concurrent use.
type oracleReader struct {
	src       *bufio.Reader
	rec       oracleRecorder
	dec       *xml.Decoder
	maxStanza int
	maxDepth  int
}

// oracleRecorder is the io.ByteReader the decoder reads from: it keeps the bytes
// of the stanza being read and enforces the size limit while they arrive,
// so that no token can grow past the bound.
type oracleRecorder struct {
	src    *bufio.Reader
	buf    []byte
	base   int64 // stream offset of buf[0]
	off    int64 // bytes handed to the decoder since the decoder started
	active bool  // recording a stanza
	limit  int
	err    error
}

func (r *oracleRecorder) ReadByte() (byte, error) {
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

func (r *oracleRecorder) Read(p []byte) (int, error) {
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

// newOracleReader returns a oracleReader on src. The caller keeps ownership of src; on
// a STARTTLS upgrade make a new oracleReader on the TLS connection.
func newOracleReader(src io.Reader) *oracleReader {
	br, ok := src.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(src, 4096)
	}
	r := &oracleReader{src: br, maxStanza: DefaultMaxStanza, maxDepth: DefaultMaxDepth}
	r.rec = oracleRecorder{src: br, limit: DefaultMaxStanza}
	return r
}

// SetLimit sets the largest stanza accepted, in bytes.
func (r *oracleReader) SetLimit(n int) {
	if n > 0 {
		r.maxStanza = n
		r.rec.limit = n
	}
}

// Header reads the XML declaration (optional) and the opening stream tag,
// starting a fresh parser as RFC 6120 §4.3.3 requires on a stream restart.
func (r *oracleReader) Header() (Header, error) {
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
			h, err := streamHeader(t.Name, t.Attr)
			if err != nil {
				return Header{}, err
			}
			r.rec.base = r.rec.off
			return h, nil
		default:
			return Header{}, fmt.Errorf("%w: %T before stream header", ErrForbidden, tok)
		}
		first = false
	}
}

// Next reads the next top-level stanza (or stream-level element such as
// <starttls/>, <auth/> or an XEP-0198 <r/>). It returns the parsed element
// and a fresh copy of its exact bytes. At the peer's </stream:stream> it
// returns ErrStreamEnd.
func (r *oracleReader) Next() (*Element, []byte, error) {
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
func oracleParse(b []byte, defaultNS string) (*Element, []byte, error) {
	return parseWith(b, defaultNS, func(src io.Reader) elementReader { return newOracleReader(src) })
}
