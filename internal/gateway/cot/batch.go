package cot

import (
	"bytes"
	"errors"
	"fmt"
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
	DefaultMinBatch      = 8
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

// Kinds of markup, as scanned by markup.
const (
	mkOpen  = iota // <name ...>
	mkEmpty        // <name .../>
	mkClose        // </name>
	mkSkip         // comment, CDATA section, processing instruction
	mkBad          // a DTD or other declaration, or unterminated markup
)

// markup scans the markup starting at b[0] == '<' without parsing it:
// its kind and the length of its bytes. Quoted attribute values may hold
// '>'; comments, CDATA sections and processing instructions are skipped
// whole.
func markup(b []byte) (kind, n int) {
	to := func(end string, k int) (int, int) {
		if j := bytes.Index(b, []byte(end)); j >= 0 {
			return k, j + len(end)
		}
		return mkBad, len(b)
	}
	switch {
	case bytes.HasPrefix(b, []byte("<!--")):
		return to("-->", mkSkip)
	case bytes.HasPrefix(b, []byte("<![CDATA[")):
		return to("]]>", mkSkip)
	case bytes.HasPrefix(b, []byte("<?")):
		return to("?>", mkSkip)
	case bytes.HasPrefix(b, []byte("<!")):
		return mkBad, len(b)
	}
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
			switch {
			case b[1] == '/':
				return mkClose, j + 1
			case b[j-1] == '/':
				return mkEmpty, j + 1
			}
			return mkOpen, j + 1
		}
	}
	return mkBad, len(b)
}

// xmlDepth returns an upper bound on raw's element nesting, without
// parsing; a malformed input only overestimates.
func xmlDepth(raw []byte) int {
	depth, deepest := 0, 0
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '<')
		if j < 0 {
			break
		}
		kind, n := markup(raw[i+j:])
		i += j + n
		switch kind {
		case mkOpen, mkEmpty:
			deepest = max(deepest, depth+1)
			if kind == mkOpen {
				depth++
			}
		case mkClose:
			depth--
		case mkBad:
			return max(deepest, depth) + maxXMLDepth
		}
	}
	return deepest
}

// ParseBatch splits a batch body into its events' bytes (sub-slices of
// body, in order) without parsing them: each is parsed by [ParseEvent]
// before use, which refuses anything malformed. It refuses a body other
// than one <events> element holding <event> elements and white space, and
// DTDs, entity declarations and other declarations anywhere.
func ParseBatch(body []byte) ([][]byte, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadBatch, fmt.Sprintf(format, args...))
	}
	if len(body) > HardMaxEvent {
		return nil, bad("%d bytes, limit %d", len(body), HardMaxEvent)
	}
	b := bytes.TrimLeft(body, " \t\r\n")
	if !bytes.HasPrefix(b, batchOpen) {
		return nil, bad("want <events> first")
	}
	b = b[len(batchOpen):]
	var out [][]byte
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		if bytes.HasPrefix(b, batchClose) {
			if len(bytes.TrimSpace(b[len(batchClose):])) > 0 {
				return nil, bad("data after </events>")
			}
			return out, nil
		}
		if findOpen(b) != 0 {
			return nil, bad("want <event> or </events> at %.20q", b)
		}
		depth, i := 0, 0
		for {
			j := bytes.IndexByte(b[i:], '<')
			if j < 0 {
				return nil, bad("unclosed <event>")
			}
			kind, n := markup(b[i+j:])
			i += j + n
			switch kind {
			case mkOpen:
				if depth++; depth >= maxXMLDepth {
					return nil, bad("elements nested deeper than %d", maxXMLDepth)
				}
			case mkClose:
				depth--
			case mkBad:
				return nil, bad("declaration or unterminated markup refused (no DTDs or entities)")
			}
			if depth == 0 && kind != mkSkip {
				break
			}
		}
		out = append(out, b[:i])
		b = b[i:]
	}
}
