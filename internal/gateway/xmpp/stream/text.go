package stream

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// A textMode says where character data comes from, which decides the
// rules it follows.
type textMode uint8

const (
	inContent textMode = iota // between tags: references decoded, "]]>" refused
	inAttr                    // a quoted attribute value: references decoded, '<' refused
	inCDATA                   // a CDATA section's content: taken as it is
)

// plain marks the bytes that stand for themselves in every mode: printable
// ASCII other than '&', '<' and ']'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '&' && c != '<' && c != ']'
	}
	return t
}()

// errCharRef is returned (wrapped) for a character reference to a
// surrogate code point, which encoding/xml turns into U+FFFD but which is
// not an XML Char (XML 1.0 §4.1, well-formedness constraint Legal
// Character).
var errCharRef = errors.New("character reference to a surrogate")

// appendText appends to dst the characters raw stands for, under XML 1.0's
// rules as encoding/xml applies them: the five predefined entities and
// numeric character references are replaced (outside CDATA sections), a
// CR or CRLF becomes LF (§2.11; encoding/xml normalises nothing else, not
// even in attribute values), every character must be a Char (§2.2) in
// valid UTF-8, "]]>" must not appear in content (§2.4) and '<' must not
// appear in an attribute value (§3.1).
func appendText(dst, raw []byte, mode textMode) ([]byte, error) {
	for i := 0; i < len(raw); {
		j := i
		for j < len(raw) && plain[raw[j]] {
			j++
		}
		dst = append(dst, raw[i:j]...)
		if j == len(raw) {
			break
		}
		i = j + 1
		switch c := raw[j]; {
		case c == '&' && mode != inCDATA:
			s, n, err := reference(raw[j:])
			if err != nil {
				return dst, err
			}
			dst = append(dst, s...)
			i = j + n
		case c == '\r':
			dst = append(dst, '\n')
			if i < len(raw) && raw[i] == '\n' {
				i++
			}
		case c == '<' && mode == inAttr:
			return dst, errors.New("unescaped < inside quoted string")
		case c == ']' && mode == inContent && len(raw)-j >= 3 && raw[j+1] == ']' && raw[j+2] == '>':
			return dst, errors.New("unescaped ]]> not in CDATA section")
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(raw[j:])
			if r == utf8.RuneError && n == 1 {
				return dst, fmt.Errorf("invalid UTF-8 %q", raw[j:min(j+4, len(raw))])
			}
			if !isChar(r) {
				return dst, fmt.Errorf("illegal character code %U", r)
			}
			dst = append(dst, raw[j:j+n]...)
			i = j + n
		case c < 0x20 && c != '\t' && c != '\n':
			return dst, fmt.Errorf("illegal character code %U", rune(c))
		default: // '\t', '\n', and '&', '<' or ']' where they stand for themselves
			dst = append(dst, c)
		}
	}
	return dst, nil
}

// isChar reports whether r is in XML 1.0's Char production (§2.2).
func isChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// reference decodes the entity or character reference at the start of b
// (which starts with '&') and returns its UTF-8 text and length. Only the
// five predefined entities exist: an XMPP stream has no DTD to declare
// more (RFC 6120 §11.1), so any other name is an error, never a lookup.
func reference(b []byte) (string, int, error) {
	if len(b) > 1 && b[1] == '#' {
		return charRef(b)
	}
	for _, e := range [...]struct{ ref, text string }{
		{"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&apos;", "'"}, {"&quot;", `"`},
	} {
		if len(b) >= len(e.ref) && string(b[:len(e.ref)]) == e.ref {
			return e.text, len(e.ref), nil
		}
	}
	return "", 0, fmt.Errorf("invalid character entity %q", refText(b))
}

// charRef decodes "&#N;" (decimal) or "&#xN;" (hex, lower-case x only, as
// encoding/xml reads it), any number of leading zeros allowed.
func charRef(b []byte) (string, int, error) {
	i, base := 2, rune(10)
	if i < len(b) && b[i] == 'x' {
		i, base = 3, 16
	}
	start, v, big := i, rune(0), false
	for ; i < len(b); i++ {
		d := digit(b[i], base)
		if d < 0 {
			break
		}
		if v = v*base + d; v > utf8.MaxRune {
			v, big = 0, true
		}
	}
	if i == start || i == len(b) || b[i] != ';' || big {
		return "", 0, fmt.Errorf("invalid character entity %q", refText(b))
	}
	if 0xD800 <= v && v <= 0xDFFF {
		return "", 0, fmt.Errorf("%w: %q", errCharRef, b[:i+1])
	}
	if !isChar(v) {
		return "", 0, fmt.Errorf("illegal character code %U", v)
	}
	return string(v), i + 1, nil
}

// digit is the value of c as a digit in base 10 or 16, or -1.
func digit(c byte, base rune) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case base == 16 && 'a' <= c && c <= 'f':
		return rune(c-'a') + 10
	case base == 16 && 'A' <= c && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}

// refText is the start of a bad reference, for an error message.
func refText(b []byte) []byte {
	for i, c := range b {
		if c == ';' || i == 16 {
			return b[:i+1]
		}
	}
	return b
}

// isSpace reports whether b is only XML white space (§2.3 S).
func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}
