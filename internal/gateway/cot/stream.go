package cot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Event size limits.
const (
	// DefaultMaxEvent bounds one event when Config.MaxEvent is zero.
	DefaultMaxEvent = 1 << 20
	// HardMaxEvent is the largest event any configuration accepts (TAK
	// Server's cap).
	HardMaxEvent = 8 << 20
)

// ErrEventTooLarge is returned by a Splitter when an event (or the garbage
// before one) exceeds the limit. The stream cannot be resynchronised safely
// after it; close the connection.
var ErrEventTooLarge = errors.New("cot event too large")

// Splitter cuts a protocol 0 stream into events: "<event" … "</event>",
// back to back, each possibly preceded by an XML declaration or whitespace,
// which are skipped. It never reads past the end of the event it returns, so
// the underlying bufio.Reader can be handed to a takproto.Reader once the
// connection switches to protocol 1.
type Splitter struct {
	r     *bufio.Reader
	max   int
	buf   []byte
	start int // index of "<event" in buf, or -1
}

// NewSplitter returns a Splitter whose events may hold at most max bytes
// (DefaultMaxEvent if max <= 0, at most HardMaxEvent).
func NewSplitter(r *bufio.Reader, max int) *Splitter {
	if max <= 0 {
		max = DefaultMaxEvent
	}
	return &Splitter{r: r, max: min(max, HardMaxEvent)}
}

var (
	openTag  = []byte("<event")
	closeTag = []byte("</event")
)

// Next returns the next event's bytes, valid until the next call.
func (s *Splitter) Next() ([]byte, error) {
	s.buf = s.buf[:0]
	s.start = -1
	for {
		chunk, err := s.r.ReadSlice('>')
		if len(chunk) > 0 {
			s.buf = append(s.buf, chunk...)
		}
		if err != nil && err != bufio.ErrBufferFull {
			if err == io.EOF && len(bytes.TrimSpace(s.buf)) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if s.start < 0 {
			if i := findOpen(s.buf); i >= 0 {
				s.buf = s.buf[:copy(s.buf, s.buf[i:])]
				s.start = 0
			} else if len(s.buf) > len(openTag) {
				// Keep only a tail that might begin "<event".
				keep := s.buf[len(s.buf)-len(openTag):]
				s.buf = s.buf[:copy(s.buf, keep)]
			}
		}
		if len(s.buf) > s.max {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrEventTooLarge, s.max)
		}
		if s.start >= 0 && err == nil && endsWithClose(s.buf) {
			return s.buf, nil
		}
	}
}

// findOpen finds "<event" followed by whitespace, '>' or '/'.
func findOpen(b []byte) int {
	off := 0
	for {
		i := bytes.Index(b[off:], openTag)
		if i < 0 {
			return -1
		}
		j := off + i + len(openTag)
		if j < len(b) && (isSpace(b[j]) || b[j] == '>' || b[j] == '/') {
			return off + i
		}
		if j >= len(b) {
			return -1
		}
		off = j
	}
}

// endsWithClose reports whether b ends with "</event" optional spaces ">".
func endsWithClose(b []byte) bool {
	if len(b) == 0 || b[len(b)-1] != '>' {
		return false
	}
	i := len(b) - 1
	for i > 0 && isSpace(b[i-1]) {
		i--
	}
	return bytes.HasSuffix(b[:i], closeTag)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
