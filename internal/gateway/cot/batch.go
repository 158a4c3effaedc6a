package cot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// BatchContentType is the core message content type for several CoT
// events that share a channel, a label and a precedence: one <events>
// element wrapping the <event> elements, in the order they were received.
// Its base type is [ContentType], so a channel whose agreement allows CoT
// carries batches, and the guard checks a batch as CoT XML (one root, no
// DTD, the channel's size limit and dirty words over the whole body).
const BatchContentType = ContentType + "; batch=events"

// Batching defaults: see [Config].
const (
	DefaultMinBatch      = 4
	DefaultMaxBatch      = 256
	DefaultMaxBatchBytes = 128 << 10
	DefaultBatchQueue    = 1024
)

// ErrBadBatch is wrapped by every error ParseBatch returns.
var ErrBadBatch = errors.New("malformed cot event batch")

var (
	batchOpen  = []byte("<events>")
	batchClose = []byte("</events>")
)

// appendBatch wraps events (each one bare <event> element) in <events>.
func appendBatch(b []byte, events [][]byte) []byte {
	b = append(b, batchOpen...)
	for _, e := range events {
		b = append(b, e...)
	}
	return append(b, batchClose...)
}

// batchSize is the body size of a batch of events totalling n bytes.
func batchSize(n int) int { return n + len(batchOpen) + len(batchClose) }

// bareEvent returns raw from its <event> start tag, without an XML
// declaration or leading space, or nil if anything else precedes it
// (such an event travels alone, byte for byte).
func bareEvent(raw []byte) []byte {
	b := bytes.TrimLeft(raw, " \t\r\n")
	if bytes.HasPrefix(b, []byte("<?xml")) {
		i := bytes.Index(b, []byte("?>"))
		if i < 0 {
			return nil
		}
		b = bytes.TrimLeft(b[i+2:], " \t\r\n")
	}
	if findOpen(b) != 0 {
		return nil
	}
	return b
}

// maxXMLDepth is the guard's bound on XML nesting; a batch adds one level
// to its events, so only events at most maxXMLDepth-1 deep are batched.
const maxXMLDepth = 64

// xmlDepth returns an upper bound on raw's element nesting, without
// parsing: comments, CDATA sections and processing instructions are
// skipped, and a malformed input only overestimates.
func xmlDepth(raw []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(raw); i++ {
		if raw[i] != '<' {
			continue
		}
		rest := raw[i:]
		skip := func(end string) {
			if j := bytes.Index(rest, []byte(end)); j >= 0 {
				i += j + len(end) - 1
			} else {
				i = len(raw)
			}
		}
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			skip("-->")
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			skip("]]>")
		case bytes.HasPrefix(rest, []byte("<?")), bytes.HasPrefix(rest, []byte("<!")):
			skip(">")
		case bytes.HasPrefix(rest, []byte("</")):
			depth--
		default:
			j := tagEnd(rest)
			if j < 0 {
				return deepest + 1
			}
			depth++
			deepest = max(deepest, depth)
			if rest[j-1] == '/' {
				depth--
			}
			i += j
		}
	}
	return deepest
}

// tagEnd returns the index of the '>' that ends the tag opening b,
// outside quoted attribute values, or -1.
func tagEnd(b []byte) int {
	var quote byte
	for j := 1; j < len(b); j++ {
		switch c := b[j]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return j
		}
	}
	return -1
}

// ParseBatch splits a batch body into its events' bytes (sub-slices of
// body, in order). It refuses DTDs, entity declarations, processing
// instructions, text between events, a root other than <events> and
// children other than <event>; each event is parsed later by [ParseEvent].
func ParseBatch(body []byte) ([][]byte, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadBatch, fmt.Sprintf(format, args...))
	}
	if len(body) > HardMaxEvent {
		return nil, bad("%d bytes, limit %d", len(body), HardMaxEvent)
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	d.Entity = nil
	var (
		out    [][]byte
		depth  int
		start  int
		sawTop bool
		closed bool
	)
	for {
		before := int(d.InputOffset())
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, bad("%v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, bad("directive <!%.20s> refused (no DTDs or entities)", t)
		case xml.ProcInst:
			return nil, bad("processing instruction %q refused", t.Target)
		case xml.CharData:
			if depth <= 1 && len(bytes.TrimSpace(t)) > 0 {
				return nil, bad("text outside an <event>")
			}
		case xml.StartElement:
			name := qname(t.Name)
			switch {
			case depth == 0:
				if sawTop || name != "events" || len(t.Attr) > 0 {
					return nil, bad("root <%s>, want one <events> without attributes", name)
				}
				sawTop = true
			case depth == 1:
				if name != "event" {
					return nil, bad("<%s> in a batch, want <event>", name)
				}
				start = before
			}
			depth++
			if depth > maxXMLDepth {
				return nil, bad("elements nested deeper than %d", maxXMLDepth)
			}
		case xml.EndElement:
			depth--
			switch name := qname(t.Name); {
			case depth == 0 && name == "events":
				closed = true
			case depth == 1 && name == "event":
				out = append(out, body[start:d.InputOffset()])
			case depth <= 1:
				return nil, bad("unexpected </%s>", name)
			}
		}
	}
	if !sawTop || !closed || depth != 0 {
		return nil, bad("no complete <events> element")
	}
	return out, nil
}
