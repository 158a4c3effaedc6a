package cot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ErrBadEvent is wrapped by every error ParseEvent returns.
var ErrBadEvent = errors.New("malformed cot event")

// Point is <point>. Unknown errors are 9999999 (or 999999).
type Point struct{ Lat, Lon, Hae, Ce, Le float64 }

// Event is what the gateway reads from one CoT event. Raw keeps the original
// bytes; the gateway forwards Raw (with at most its markings rewritten) so
// that <detail> travels byte for byte.
type Event struct {
	Raw []byte

	Version, UID, Type, How string
	Time, Start, Stale      time.Time
	Qos, Opex               string

	// Markings as found. Absent attributes are empty: unmarked, never
	// unrestricted.
	Access, Caveat, ReleasableTo string

	Point Point
	// Detail is the bytes between <detail> and </detail>, verbatim.
	Detail []byte

	// From <detail>: contact, link (deletes), TAK protocol control.
	Callsign, Endpoint string
	LinkUID            string
	TakRequest         string // <TakControl><TakRequest version>
	TakResponse        string // <TakControl><TakResponse status>

	// attrs are the start tag's attributes, in order; bodyAt is the offset
	// in Raw just past the start tag.
	attrs  []xml.Attr
	bodyAt int
}

// Control event types handled by the gateway.
const (
	TypePing         = "t-x-c-t"
	TypePong         = "t-x-c-t-r"
	TypeDelete       = "t-x-d-d"
	TypeTakpOffer    = "t-x-takp-v"
	TypeTakpRequest  = "t-x-takp-q"
	TypeTakpResponse = "t-x-takp-r"
)

// ParseEvent parses one CoT event. It refuses DTDs, entity declarations and
// anything but one <event> element, and is lenient where producers differ:
// quote style, attribute and child order, number syntax, both spellings of
// releasableTo.
func ParseEvent(raw []byte) (*Event, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadEvent, fmt.Sprintf(format, args...))
	}
	if len(raw) > HardMaxEvent {
		return nil, bad("%d bytes, limit %d", len(raw), HardMaxEvent)
	}
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	d.Entity = nil
	e := &Event{Raw: raw}
	var (
		depth     int
		path      []string
		detailAt  = -1
		sawEvent  bool
		sawPoint  bool
		sawDetail bool
	)
	for {
		before := d.InputOffset()
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
			if depth > 0 || sawEvent || t.Target != "xml" {
				return nil, bad("processing instruction %q refused", t.Target)
			}
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return nil, bad("text outside <event>")
			}
		case xml.StartElement:
			name := qname(t.Name)
			depth++
			path = append(path, name)
			if depth > 64 {
				return nil, bad("elements nested deeper than 64")
			}
			switch {
			case depth == 1:
				if sawEvent || name != "event" {
					return nil, bad("root element <%s>, want one <event>", name)
				}
				sawEvent = true
				e.attrs = t.Attr
				e.bodyAt = int(d.InputOffset())
				if err := e.readAttrs(t.Attr); err != nil {
					return nil, err
				}
			case depth == 2 && name == "point":
				if sawPoint {
					return nil, bad("two <point> elements")
				}
				sawPoint = true
				if err := e.readPoint(t.Attr); err != nil {
					return nil, err
				}
			case depth == 2 && name == "detail":
				if sawDetail {
					return nil, bad("two <detail> elements")
				}
				sawDetail = true
				detailAt = int(d.InputOffset())
			case depth == 3 && path[1] == "detail":
				switch name {
				case "contact":
					if e.Callsign == "" {
						e.Callsign, e.Endpoint = attr(t.Attr, "callsign"), attr(t.Attr, "endpoint")
					}
				case "link":
					if e.LinkUID == "" {
						e.LinkUID = attr(t.Attr, "uid")
					}
				}
			case depth == 4 && path[1] == "detail" && path[2] == "TakControl":
				switch name {
				case "TakRequest":
					e.TakRequest = attr(t.Attr, "version")
				case "TakResponse":
					e.TakResponse = attr(t.Attr, "status")
				}
			}
		case xml.EndElement:
			if depth == 0 || qname(t.Name) != path[len(path)-1] {
				return nil, bad("unexpected </%s>", qname(t.Name))
			}
			if depth == 2 && path[1] == "detail" && detailAt >= 0 {
				e.Detail = raw[detailAt:before]
			}
			depth--
			path = path[:len(path)-1]
		}
	}
	if depth != 0 {
		return nil, bad("unclosed <%s>", path[len(path)-1])
	}
	if !sawEvent {
		return nil, bad("no <event> element")
	}
	if !sawPoint {
		return nil, bad("event %q has no <point>", e.UID)
	}
	return e, nil
}

func attr(as []xml.Attr, name string) string {
	for _, a := range as {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

func (e *Event) readAttrs(as []xml.Attr) error {
	for _, a := range as {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "version":
			e.Version = a.Value
		case "uid":
			e.UID = a.Value
		case "type":
			e.Type = a.Value
		case "how":
			e.How = a.Value
		case "qos":
			e.Qos = a.Value
		case "opex":
			e.Opex = a.Value
		case "access":
			e.Access = a.Value
		case "caveat":
			e.Caveat = a.Value
		case "releasableTo", "releaseableTo":
			if e.ReleasableTo != "" && e.ReleasableTo != a.Value {
				return fmt.Errorf("%w: releasableTo %q and releaseableTo %q disagree", ErrBadEvent, e.ReleasableTo, a.Value)
			}
			e.ReleasableTo = a.Value
		case "time", "start", "stale":
			t, err := ParseTime(a.Value)
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrBadEvent, a.Name.Local, err)
			}
			switch a.Name.Local {
			case "time":
				e.Time = t
			case "start":
				e.Start = t
			default:
				e.Stale = t
			}
		}
	}
	switch {
	case e.UID == "":
		return fmt.Errorf("%w: event has no uid", ErrBadEvent)
	case e.Type == "":
		return fmt.Errorf("%w: event %q has no type", ErrBadEvent, e.UID)
	case e.Time.IsZero() || e.Start.IsZero() || e.Stale.IsZero():
		return fmt.Errorf("%w: event %q lacks time, start or stale", ErrBadEvent, e.UID)
	}
	return nil
}

func (e *Event) readPoint(as []xml.Attr) error {
	for _, a := range as {
		var dst *float64
		switch a.Name.Local {
		case "lat":
			dst = &e.Point.Lat
		case "lon":
			dst = &e.Point.Lon
		case "hae":
			dst = &e.Point.Hae
		case "ce":
			dst = &e.Point.Ce
		case "le":
			dst = &e.Point.Le
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(a.Value), 64)
		if err != nil {
			return fmt.Errorf("%w: point %s=%q", ErrBadEvent, a.Name.Local, a.Value)
		}
		*dst = v
	}
	return nil
}

// ParseTime reads an xs:dateTime as CoT producers write it.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q", s)
	}
	return t.UTC(), nil
}

// FormatTime writes a time as TAK does: UTC with milliseconds.
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// WithMarkings returns the event's bytes with access, caveat and
// releasableTo replaced (an empty value removes the attribute; the
// releaseableTo spelling is dropped). Everything after the start tag,
// including <detail>, is kept byte for byte.
func (e *Event) WithMarkings(access, caveat, releasableTo string) []byte {
	var b bytes.Buffer
	b.Grow(len(e.Raw) + 64)
	b.WriteString("<event")
	for _, a := range e.attrs {
		if a.Name.Space == "" {
			switch a.Name.Local {
			case "access", "caveat", "releasableTo", "releaseableTo":
				continue
			}
		}
		writeAttr(&b, qname(a.Name), a.Value)
	}
	if access != "" {
		writeAttr(&b, "access", access)
	}
	if caveat != "" {
		writeAttr(&b, "caveat", caveat)
	}
	if releasableTo != "" {
		writeAttr(&b, "releasableTo", releasableTo)
	}
	b.WriteByte('>')
	b.Write(e.Raw[e.bodyAt:])
	return b.Bytes()
}

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

func writeAttr(b *bytes.Buffer, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString(`="`)
	xml.EscapeText(b, []byte(value))
	b.WriteByte('"')
}
