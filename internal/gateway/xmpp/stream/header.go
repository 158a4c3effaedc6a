package stream

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// Header is an opening <stream:stream> tag.
type Header struct {
	To, From, ID, Version, Lang string
	// NS is the default (content) namespace: jabber:client or jabber:server.
	NS string
}

// Header reads the XML declaration (optional) and the opening stream tag,
// starting a fresh parser as RFC 6120 §4.3.3 requires on a stream restart.
func (r *Reader) Header() (Header, error) {
	r.err, r.started, r.closed = nil, false, false
	r.buf, r.ns, r.nsBase = r.buf[:0], r.ns[:0], 0
	h, err := r.header()
	if err != nil {
		r.fail(err)
		return Header{}, fmt.Errorf("reading stream header: %w", err)
	}
	r.started = true
	return h, nil
}

func (r *Reader) header() (Header, error) {
	for pos := 0; ; {
		kind, end, err := r.token(pos)
		if err != nil {
			return Header{}, eofIsUnexpected(err)
		}
		switch kind {
		case tokPI:
			// Only the XML declaration, and only as the very first thing.
			if err := xmlDecl(r.buf[pos:end], pos == 0); err != nil {
				return Header{}, err
			}
		case tokText, tokCDATA:
			if err := r.topText(r.buf[pos:end], kind); err != nil {
				return Header{}, errors.New("text before stream header")
			}
		case tokStart:
			return r.streamTag(r.buf[pos:end], end)
		case tokEnd:
			return Header{}, errors.New("end tag before stream header")
		default:
			return Header{}, forbidden(kind, nil)
		}
		pos = end
	}
}

// xmlDecl checks an XML declaration: version 1.0 and UTF-8 if it says.
func xmlDecl(pi []byte, first bool) error {
	body := pi[2 : len(pi)-2]
	i := 0
	for i < len(body) && nameByte(body[i]) {
		i++
	}
	target := string(body[:i])
	if !isName(body[:i]) {
		return errors.New("expected target name after <?")
	}
	if target != "xml" || !first {
		return forbidden(tokPI, body[:i])
	}
	content := string(body[spaceAt(body, i):])
	if v := procInst("version", content); v != "" && v != "1.0" {
		return fmt.Errorf("unsupported XML version %q", v)
	}
	if enc := procInst("encoding", content); enc != "" && !strings.EqualFold(enc, "utf-8") {
		return fmt.Errorf("unsupported encoding %q", enc)
	}
	return nil
}

// streamTag checks the stream's opening tag and keeps its namespace
// declarations in scope for every stanza.
func (r *Reader) streamTag(tag []byte, end int) (Header, error) {
	n, empty, err := r.startTag(tag)
	if err != nil {
		return Header{}, err
	}
	e, err := r.element(n)
	if err != nil {
		return Header{}, err
	}
	h, err := streamHeader(e.Name, e.Attr)
	if err != nil {
		return Header{}, err
	}
	r.stream, r.closed, r.nsBase = n, empty, len(r.ns)
	r.consume(end)
	r.elems.reset()
	r.attrList.reset()
	r.kidList.reset()
	return h, nil
}

// streamHeader checks that an opening stream tag is stream:stream in a
// namespace this package serves and returns its attributes as a Header.
func streamHeader(name xml.Name, attrs []xml.Attr) (Header, error) {
	if name.Local != "stream" || name.Space != NSStream {
		return Header{}, fmt.Errorf("expected stream:stream, got %q", name.Space+" "+name.Local)
	}
	var h Header
	for _, a := range attrs {
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
	return h, nil
}

// procInst returns the value of param="..." in an XML declaration, ""
// if absent. It is encoding/xml's function of the same name (Copyright
// 2009 The Go Authors, BSD-style licence), so that this reader accepts the
// same declarations.
func procInst(param, s string) string {
	param = param + "="
	lenp := len(param)
	i := 0
	var sep byte
	for i < len(s) {
		sub := s[i:]
		k := strings.Index(sub, param)
		if k < 0 || lenp+k >= len(sub) {
			return ""
		}
		i += lenp + k + 1
		if c := sub[lenp+k]; c == '\'' || c == '"' {
			sep = c
			break
		}
	}
	if sep == 0 {
		return ""
	}
	j := strings.IndexByte(s[i:], sep)
	if j < 0 {
		return ""
	}
	return s[i : i+j]
}
