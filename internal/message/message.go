// Package message defines the core message that every part of Liaison
// handles: the one shape a gateway translates its protocol into, the guard
// decides on, the store keeps and federation carries.
//
// The core knows no protocol. A CoT event, an XMPP stanza or an API post all
// become a [Message]; a gateway turns a [Message] back into its protocol on
// the way out.
//
// Labels travel as bytes (canonical STANAG 4774 XML) rather than parsed
// values, so that this package depends on nothing and a label is never
// re-encoded by accident between the point where it was bound to the data and
// the point where it is checked. Package label parses them.
package message

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Precedence is the speed-of-service class of a message (ACP 121/127).
// Lower values are more urgent, so that ordering by Precedence then by
// sequence reads FLASH first and FIFO within a class.
type Precedence uint8

const (
	Flash     Precedence = 0
	Immediate Precedence = 1
	Priority  Precedence = 2
	Routine   Precedence = 3
)

// Precedences lists every precedence, most urgent first.
var Precedences = []Precedence{Flash, Immediate, Priority, Routine}

var precedenceNames = [...]string{"FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"}

func (p Precedence) String() string {
	if int(p) < len(precedenceNames) {
		return precedenceNames[p]
	}
	return fmt.Sprintf("Precedence(%d)", uint8(p))
}

// Valid reports whether p is one of the four defined precedences.
func (p Precedence) Valid() bool { return int(p) < len(precedenceNames) }

// ParsePrecedence reads a precedence name (case-insensitive) or its ACP 127
// prosign (Z, O, P, R).
func ParsePrecedence(s string) (Precedence, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "FLASH", "Z":
		return Flash, nil
	case "IMMEDIATE", "O":
		return Immediate, nil
	case "PRIORITY", "P":
		return Priority, nil
	case "ROUTINE", "R":
		return Routine, nil
	}
	return 0, fmt.Errorf("unknown precedence %q (want FLASH, IMMEDIATE, PRIORITY or ROUTINE)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (p Precedence) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("invalid precedence %d", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Precedence) UnmarshalText(b []byte) error {
	v, err := ParsePrecedence(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ID identifies a message everywhere it goes. It is a UUIDv7, so ids sort by
// creation time, and it is the key of every node's permanent de-duplication
// table.
type ID = uuid.UUID

// NewID returns a fresh UUIDv7.
func NewID() ID { return uuid.Must(uuid.NewV7()) }

// ParseID parses the canonical text form of an ID.
func ParseID(s string) (ID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("malformed message id %q: %w", s, err)
	}
	return id, nil
}

// Message is the core message.
type Message struct {
	ID         ID         `json:"id"`
	Channel    string     `json:"channel"`
	Origin     string     `json:"origin"`     // party that originated it, e.g. "USA"
	Originator string     `json:"originator"` // person or system within the origin party
	Precedence Precedence `json:"precedence"`
	Created    time.Time  `json:"created"`
	// Label is the originator's confidentiality label as STANAG 4774 XML.
	// It is never rewritten once the message is accepted.
	Label []byte `json:"label"`
	// Alternatives are alternative confidentiality labels (translations of
	// Label into partners' policies), as STANAG 4774 XML.
	Alternatives [][]byte `json:"alternatives,omitempty"`
	ContentType  string   `json:"content_type"`
	Body         []byte   `json:"body"`
	TraceID      string   `json:"trace_id,omitempty"`
}

// Limits on a message's fields. Bodies are bounded by the channel's content
// rules as well; MaxBody is the hard ceiling for any channel.
const (
	MaxBody        = 64 << 20
	MaxLabel       = 64 << 10
	MaxAlternates  = 16
	MaxNameLen     = 128
	MaxContentType = 128
)

// ErrInvalid is wrapped by every error that Validate returns.
var ErrInvalid = errors.New("invalid message")

// Validate checks the message's own fields (not its label, agreement or
// content rules: that is the guard's work).
func (m *Message) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case m.ID == (ID{}):
		return bad("id is empty")
	case m.ID.Version() != 7:
		return bad("id %s is not a UUIDv7", m.ID)
	case !validName(m.Channel):
		return bad("channel %q must be 1-%d printable characters", m.Channel, MaxNameLen)
	case !validName(m.Origin):
		return bad("origin %q must be 1-%d printable characters", m.Origin, MaxNameLen)
	case len(m.Originator) > MaxNameLen:
		return bad("originator longer than %d bytes", MaxNameLen)
	case !m.Precedence.Valid():
		return bad("precedence %d is not FLASH, IMMEDIATE, PRIORITY or ROUTINE", m.Precedence)
	case m.Created.IsZero():
		return bad("created time is missing")
	case len(m.Label) == 0:
		return bad("label is missing")
	case len(m.Label) > MaxLabel:
		return bad("label is %d bytes, limit %d", len(m.Label), MaxLabel)
	case len(m.Alternatives) > MaxAlternates:
		return bad("%d alternative labels, limit %d", len(m.Alternatives), MaxAlternates)
	case m.ContentType == "" || len(m.ContentType) > MaxContentType:
		return bad("content type %q must be 1-%d bytes", m.ContentType, MaxContentType)
	case len(m.Body) > MaxBody:
		return bad("body is %d bytes, limit %d", len(m.Body), MaxBody)
	}
	for i, a := range m.Alternatives {
		if len(a) == 0 || len(a) > MaxLabel {
			return bad("alternative label %d is empty or longer than %d bytes", i, MaxLabel)
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for _, r := range s {
		if r < 0x21 || r == 0x7f {
			return false
		}
	}
	return true
}
