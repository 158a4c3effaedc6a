package stream

import (
	"bytes"
	"fmt"
	"io"
)

// The input side of a Reader: r.buf holds the bytes of the stanza being
// read (during Header, of the stream header and what precedes it), copied in
// chunks from the bufio.Reader's buffer. Bytes are looked at with Peek and
// only discarded from src once they are known to belong to what is being
// read, so that src is left just after the stanza's last '>' as it was
// when encoding/xml read it one byte at a time: nothing after a
// <starttls/> or <proceed/> is swallowed.
//
// Tokens are found whole before they are parsed: text runs to the next
// '<', a tag to its '>' outside quoted attribute values, a CDATA section
// to "]]>". The parser then works on a complete byte slice.

// A tokKind is the kind of markup (or text) a token is.
type tokKind uint8

const (
	tokText    tokKind = iota // character data up to the next '<' or end of input
	tokStart                  // <name ...> or <name .../>
	tokEnd                    // </name>
	tokCDATA                  // <![CDATA[...]]>
	tokPI                     // <?target ...?>, read whole only before the stream header
	tokComment                // "<!--": refused when seen
	tokDecl                   // "<!" and a name: DOCTYPE, ENTITY and the like, refused when seen
)

// fill appends the next chunk of src's buffered input to r.buf, after
// consuming from src the chunk it appended last time. It never holds more
// than maxStanza+1 bytes: one byte past the limit proves a stanza too large.
func (r *Reader) fill() error {
	if r.peeked > 0 {
		r.src.Discard(r.peeked)
		r.peeked = 0
	}
	room := r.maxStanza + 1 - len(r.buf)
	if room <= 0 {
		return r.tooLarge()
	}
	if _, err := r.src.Peek(1); err != nil {
		return err
	}
	p, _ := r.src.Peek(r.src.Buffered())
	if len(p) > room {
		p = p[:room]
	}
	r.buf = append(r.buf, p...)
	r.peeked = len(p)
	return nil
}

// consume ends a stanza (or the header) at r.buf[end]: the bytes after it,
// peeked with the last chunk, stay in src for the next read.
func (r *Reader) consume(end int) {
	back := len(r.buf) - end
	r.src.Discard(r.peeked - back)
	r.peeked = 0
	r.buf = r.buf[:end]
}

// drop forgets r.buf[:n] between stanzas (whitespace, keepalives), so
// that the limit counts from the next token.
func (r *Reader) drop(n int) {
	r.buf = r.buf[:copy(r.buf, r.buf[n:])]
}

func (r *Reader) tooLarge() error {
	return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, r.maxStanza)
}

// seen checks the size bound once a token is found: its bytes through
// r.buf[last], the last one looked at, must fit in the limit, as they had to
// when encoding/xml read them one at a time.
func (r *Reader) seen(last int) error {
	if last >= r.maxStanza {
		return r.tooLarge()
	}
	return nil
}

// more reads more input in the middle of a token: the end of input there
// is an unexpected EOF.
func (r *Reader) more() error {
	err := r.fill()
	if err == io.EOF {
		return fmt.Errorf("unexpected end of input: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// token finds the token that starts at r.buf[pos], reading input as
// needed, and returns its kind and end. At the end of input before the
// token's first byte it returns io.EOF itself.
func (r *Reader) token(pos int) (tokKind, int, error) {
	for len(r.buf) <= pos {
		if err := r.fill(); err != nil {
			return 0, 0, err
		}
	}
	if r.buf[pos] != '<' {
		end, err := r.textEnd(pos)
		return tokText, end, err
	}
	if err := r.need(pos + 2); err != nil {
		return 0, 0, err
	}
	switch r.buf[pos+1] {
	case '/':
		end, err := r.findEnd(pos+2, ">")
		return tokEnd, end, err
	case '?':
		if r.started {
			// After the XML declaration, refused when seen.
			return tokPI, pos + 2, nil
		}
		end, err := r.findEnd(pos+2, "?>")
		return tokPI, end, err
	case '!':
		return r.bang(pos)
	}
	end, err := r.tagEnd(pos + 1)
	return tokStart, end, err
}

// need reads until r.buf holds n bytes.
func (r *Reader) need(n int) error {
	for len(r.buf) < n {
		if err := r.more(); err != nil {
			return err
		}
	}
	return nil
}

// bang sorts out "<!": a CDATA section, or a comment or declaration, which
// an XMPP stream must not carry (RFC 6120 §11.1) and which are refused
// without reading them further.
func (r *Reader) bang(pos int) (tokKind, int, error) {
	if err := r.need(pos + 3); err != nil {
		return 0, 0, err
	}
	switch r.buf[pos+2] {
	case '-':
		return tokComment, pos + 3, nil
	case '[':
	default:
		return tokDecl, pos + 3, nil
	}
	const open = "<![CDATA["
	if err := r.need(pos + len(open)); err != nil {
		return 0, 0, err
	}
	if string(r.buf[pos:pos+len(open)]) != open {
		return 0, 0, fmt.Errorf("invalid <![ sequence %q", r.buf[pos:pos+len(open)])
	}
	end, err := r.findEnd(pos+len(open), "]]>")
	return tokCDATA, end, err
}

// textEnd finds the '<' that ends character data starting at pos, or the
// end of input.
func (r *Reader) textEnd(pos int) (int, error) {
	for i := pos; ; {
		if k := bytes.IndexByte(r.buf[i:], '<'); k >= 0 {
			// encoding/xml read the '<' too before returning the text.
			return i + k, r.seen(i + k)
		}
		i = len(r.buf)
		if err := r.fill(); err == io.EOF {
			return i, r.seen(i - 1)
		} else if err != nil {
			return 0, err
		}
	}
}

// findEnd finds the first occurrence of delim at or after from and
// returns the index just past it.
func (r *Reader) findEnd(from int, delim string) (int, error) {
	for i := from; ; {
		if k := bytes.Index(r.buf[i:], []byte(delim)); k >= 0 {
			end := i + k + len(delim)
			return end, r.seen(end - 1)
		}
		// The delimiter may straddle the chunk boundary.
		i = max(from, len(r.buf)-len(delim)+1)
		if err := r.more(); err != nil {
			return 0, err
		}
	}
}

// tagEnd finds the '>' that ends a start tag, skipping quoted attribute
// values, in which '>' is allowed.
func (r *Reader) tagEnd(from int) (int, error) {
	var quote byte
	for i := from; ; {
		for ; i < len(r.buf); i++ {
			c := r.buf[i]
			switch {
			case quote != 0:
				if k := bytes.IndexByte(r.buf[i:], quote); k >= 0 {
					i += k
					quote = 0
				} else {
					i = len(r.buf) - 1
				}
			case c == '>':
				return i + 1, r.seen(i)
			case c == '\'' || c == '"':
				quote = c
			}
		}
		if err := r.more(); err != nil {
			return 0, err
		}
	}
}
