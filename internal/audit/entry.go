package audit

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// Kinds of audit entry. Every decision the node takes is one entry; the
// kind says which decision.
const (
	KindAccepted           = "accepted"            // a message with no recipient was accepted from a local sender
	KindReleased           = "released"            // the guard released a message to Peer (at acceptance, Actor is its sender)
	KindDenied             = "denied"              // the guard denied a message to Peer
	KindQuarantined        = "quarantined"         // the guard held a message for review
	KindReviewed           = "reviewed"            // a reviewer acted on a quarantined message
	KindDelivered          = "delivered"           // Peer acknowledged a message (sending side of a crossing)
	KindRefused            = "refused"             // Peer refused a message with a signed denial (sending side)
	KindReceived           = "received"            // a message from Peer was stored (receiving side of a crossing)
	KindRejected           = "rejected"            // a message from Peer was refused, denial returned (receiving side)
	KindLinkUp             = "link-up"             // the federation link to Peer came up
	KindLinkDown           = "link-down"           // the federation link to Peer went down
	KindLinkRefused        = "link-refused"        // a link attempt to or from Peer was refused
	KindAgreementInstalled = "agreement-installed" // an agreement was installed
	KindAgreementStatus    = "agreement-status"    // an agreement changed status (Decision holds the new one)
	KindKeyRotated         = "key-rotated"         // a node key was rotated
	KindKeyZeroised        = "key-zeroised"        // a node key was zeroised
	KindConfigChanged      = "config-changed"      // the node configuration changed
	KindReviewerAction     = "reviewer-action"     // a reviewer action other than a verdict (login, claim, ...)
	KindWitness            = "witness"             // this node cosigned Peer's checkpoint (entanglement)
	KindWitnessFork        = "witness-fork"        // Peer offered a checkpoint inconsistent with one it signed before
)

// Decisions recorded on both sides of a crossing, so that the two logs can
// be reconciled (see [Reconcile]).
const (
	DecisionAccepted = "accepted"
	DecisionRefused  = "refused"
)

// Limits on an encoded entry. Entries hold metadata and digests, never
// bodies, so these are generous; they keep a hostile or broken log copy
// from making a reader allocate without bound.
const (
	MaxEntrySize    = 16 << 10 // bytes of one encoded entry
	maxFieldLen     = 1 << 10  // bytes of one string field
	maxDetailPairs  = 32
	entryVersion    = 1
	minUnixNano     = 0 // entries before 1970 are refused
	maxUnixNanoYear = 2262
)

// Entry is one audit record: metadata and digests of one decision.
//
// An Entry MUST NOT hold a message body or free text taken from one: Reason
// and Detail are for codes and identifiers.
type Entry struct {
	Kind      string            `json:"kind"`
	At        time.Time         `json:"at"`
	MessageID string            `json:"message_id,omitempty"`
	Digest    string            `json:"digest,omitempty"` // e.g. "sha256:<hex>" of the message as stored
	Party     string            `json:"party,omitempty"`  // the party this node acts for, or the sender
	Peer      string            `json:"peer,omitempty"`   // the partner party concerned
	Channel   string            `json:"channel,omitempty"`
	Decision  string            `json:"decision,omitempty"`
	Reason    string            `json:"reason,omitempty"` // a stable reason code, not prose from a message
	Actor     string            `json:"actor,omitempty"`  // officer or reviewer id
	Agreement string            `json:"agreement,omitempty"`
	Detail    map[string]string `json:"detail,omitempty"`
}

// wireEntry is the version 1 wire form of an Entry.
//
// Entries are leaves of a signed Merkle tree, so their bytes must be
// deterministic: the same Entry always encodes to the same bytes, and a
// reader accepts only those bytes. We use CBOR with the RFC 8949 §4.2.1
// core deterministic rules (sorted map keys, shortest integers, no
// indefinite lengths) rather than JSON because CBOR has a deterministic
// encoding specified by its standard, integer map keys keep each leaf
// small, and the agreement package signs CBOR the same way. The decoder
// re-encodes what it read and refuses anything that is not byte-identical,
// so a leaf has exactly one valid form.
type wireEntry struct {
	Version   uint64            `cbor:"0,keyasint"`
	Kind      string            `cbor:"1,keyasint"`
	At        int64             `cbor:"2,keyasint"` // Unix nanoseconds, UTC
	MessageID string            `cbor:"3,keyasint,omitempty"`
	Digest    string            `cbor:"4,keyasint,omitempty"`
	Party     string            `cbor:"5,keyasint,omitempty"`
	Peer      string            `cbor:"6,keyasint,omitempty"`
	Channel   string            `cbor:"7,keyasint,omitempty"`
	Decision  string            `cbor:"8,keyasint,omitempty"`
	Reason    string            `cbor:"9,keyasint,omitempty"`
	Actor     string            `cbor:"10,keyasint,omitempty"`
	Agreement string            `cbor:"11,keyasint,omitempty"`
	Detail    map[string]string `cbor:"12,keyasint,omitempty"`
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  maxDetailPairs,
		MaxMapPairs:       maxDetailPairs,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// ErrMalformedEntry is returned (wrapped) when an entry's bytes are not a
// valid canonical version 1 encoding.
var ErrMalformedEntry = errors.New("malformed audit entry")

// MarshalBinary returns the canonical encoding of e, the bytes that become a
// leaf of the log. It fails if e is not valid (see [Entry.Validate]).
func (e Entry) MarshalBinary() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	w := wireEntry{
		Version: entryVersion, Kind: e.Kind, At: e.At.UnixNano(),
		MessageID: e.MessageID, Digest: e.Digest, Party: e.Party, Peer: e.Peer,
		Channel: e.Channel, Decision: e.Decision, Reason: e.Reason, Actor: e.Actor,
		Agreement: e.Agreement,
	}
	if len(e.Detail) > 0 {
		w.Detail = e.Detail
	}
	b, err := encMode.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encoding audit entry: %w", err)
	}
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("audit entry of %d bytes exceeds %d", len(b), MaxEntrySize)
	}
	return b, nil
}

// Validate reports whether e can be logged: a kind, a time between 1970 and
// 2262, valid UTF-8 fields of at most 1 KiB and at most 32 detail pairs.
func (e Entry) Validate() error {
	if e.Kind == "" {
		return errors.New("audit entry has no kind")
	}
	if e.At.IsZero() || e.At.Year() < 1970 || e.At.Year() >= maxUnixNanoYear {
		return fmt.Errorf("audit entry time %q out of range", e.At.Format(time.RFC3339Nano))
	}
	fields := []string{e.Kind, e.MessageID, e.Digest, e.Party, e.Peer, e.Channel, e.Decision, e.Reason, e.Actor, e.Agreement}
	if len(e.Detail) > maxDetailPairs {
		return fmt.Errorf("audit entry has %d detail pairs, more than %d", len(e.Detail), maxDetailPairs)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Detail)) {
		fields = append(fields, k, e.Detail[k])
	}
	for _, f := range fields {
		if len(f) > maxFieldLen {
			return fmt.Errorf("audit entry field of %d bytes exceeds %d", len(f), maxFieldLen)
		}
		if !utf8.ValidString(f) {
			return fmt.Errorf("audit entry field %q is not UTF-8", f)
		}
	}
	return nil
}

// ParseEntry decodes a leaf of the log. It accepts only the canonical
// version 1 encoding that [Entry.MarshalBinary] produces.
func ParseEntry(b []byte) (Entry, error) {
	if len(b) > MaxEntrySize {
		return Entry{}, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformedEntry, len(b), MaxEntrySize)
	}
	var w wireEntry
	if err := decMode.Unmarshal(b, &w); err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrMalformedEntry, err)
	}
	if w.Version != entryVersion {
		return Entry{}, fmt.Errorf("%w: unknown version %d", ErrMalformedEntry, w.Version)
	}
	if w.At < minUnixNano {
		return Entry{}, fmt.Errorf("%w: time %d before 1970", ErrMalformedEntry, w.At)
	}
	e := Entry{
		Kind: w.Kind, At: time.Unix(0, w.At).UTC(),
		MessageID: w.MessageID, Digest: w.Digest, Party: w.Party, Peer: w.Peer,
		Channel: w.Channel, Decision: w.Decision, Reason: w.Reason, Actor: w.Actor,
		Agreement: w.Agreement, Detail: w.Detail,
	}
	again, err := e.MarshalBinary()
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrMalformedEntry, err)
	}
	if string(again) != string(b) {
		return Entry{}, fmt.Errorf("%w: not in canonical form", ErrMalformedEntry)
	}
	return e, nil
}
