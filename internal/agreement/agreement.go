// Package agreement reads, validates, signs and evaluates the Communication
// Interoperability and Security agreement (CIS agreement) that is Liaison's
// root of trust: no message crosses a Liaison boundary unless an agreement
// co-signed by every party is in force and names a channel the sender and
// recipient share.
//
// # Where to start
//
// People author an agreement in YAML and read it with [Parse]. Each party
// records its domestic approval ([Document.Approve]) and signs
// ([Document.Sign]) with an Ed25519 key listed for it in the document. The
// signature covers [Document.SigningBytes]: a domain-separation prefix and
// the deterministic CBOR encoding (RFC 8949 §4.2) of everything except the
// signatures and notices, so the YAML layout, comments and key order never
// matter. [Document.Digest] names a version; a renewal names the version it
// renews by digest in Supersedes.
//
// # Lifecycle
//
// The phase of an agreement is never stored: [Document.StatusAt] computes it
// from the document and a time. Draft → approved (every party recorded its
// approval) → signed (every party signed and every signature verifies) → in
// force between the effective date (inclusive) and the expiry (exclusive) →
// expired. A signed termination notice ends it a notice period after its
// date; a signed suspension pauses it until that party's signed resumption.
//
// A [Set] holds every installed version of every agreement and answers the
// questions the node asks: which versions govern now ([Set.InForce]) and may
// this party send to that one on this channel ([Set.May]).
//
// The package is pure: no I/O, no logging, no clock. Callers pass the time.
package agreement

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"go.yaml.in/yaml/v3"

	"liaison/internal/message"
)

// MaxSize bounds the YAML and CBOR forms of an agreement.
const MaxSize = 1 << 20

// Document is one version of an agreement.
type Document struct {
	ID         string      `yaml:"id"`
	Version    int         `yaml:"version"`
	Title      string      `yaml:"title"`
	Supersedes string      `yaml:"supersedes,omitempty"`
	Parties    []Party     `yaml:"parties"`
	Scope      []string    `yaml:"scope"`
	Channels   []Channel   `yaml:"channels"`
	Labels     Labels      `yaml:"labels"`
	Term       Term        `yaml:"term"`
	Equipment  []Equipment `yaml:"equipment,omitempty"`
	Approvals  []Approval  `yaml:"approvals,omitempty"`
	Signatures []Signature `yaml:"signatures,omitempty"`
	Notices    []Notice    `yaml:"notices,omitempty"`
}

// Party is a signatory: a nation (ISO 3166-1 alpha-3 code) or a coalition.
type Party struct {
	ID               string `yaml:"id"`
	Name             string `yaml:"name"`
	SigningAuthority string `yaml:"signing_authority"`
	Keys             []Key  `yaml:"keys"`
	// CAFingerprint is "sha256:<hex>" of the DER certificate of the
	// party's Liaison certificate authority.
	CAFingerprint string `yaml:"ca_fingerprint"`
}

// Key is a public signing key of a party. Alg is "ed25519" (room is left
// for "ml-dsa-65"); Public is standard base64.
type Key struct {
	Alg    string `yaml:"alg"`
	Public string `yaml:"public"`
}

// Channel is a named path for traffic between some of the parties.
type Channel struct {
	Name    string   `yaml:"name"`
	Scope   string   `yaml:"scope"`
	Members []string `yaml:"members"`
	// Ceiling maps each member to the highest classification (a name in
	// that party's policy) the channel may carry for it.
	Ceiling map[string]string `yaml:"ceiling"`
	// DefaultLabel is a STANAG 4774 confidentiality label in XML.
	DefaultLabel string `yaml:"default_label"`
	// Precedences allowed on the channel; empty means all.
	Precedences []message.Precedence `yaml:"precedences,omitempty"`
	Content     ContentRules         `yaml:"content"`
}

// ContentRules bound what a channel carries.
type ContentRules struct {
	MaxSize    int64    `yaml:"max_size"`
	Types      []string `yaml:"types,omitempty"`
	DirtyWords string   `yaml:"dirty_words,omitempty"`
}

// Labels names each party's security policy and how policies correspond.
type Labels struct {
	Policies     []PolicyRef         `yaml:"policies"`
	Equivalences []Equivalence       `yaml:"equivalences,omitempty"`
	Groups       map[string][]string `yaml:"groups,omitempty"`
}

// PolicyRef names one party's security policy (SPIF).
type PolicyRef struct {
	Party    string `yaml:"party"`
	PolicyID string `yaml:"policy_id"`
	Name     string `yaml:"name"`
	Digest   string `yaml:"digest,omitempty"`
}

// Equivalence says labels of policy From may be translated to policy To.
type Equivalence struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// Term is when the agreement applies: from Effective (inclusive) until
// Expiry (exclusive); Notice is how long a termination takes to take effect.
type Term struct {
	Effective time.Time
	Expiry    time.Time
	Notice    Duration
}

// Equipment is one entry of the equipment annex.
type Equipment struct {
	Type        string   `yaml:"type" cbor:"type"`
	Designation string   `yaml:"designation" cbor:"designation"`
	Serials     []string `yaml:"serials,omitempty" cbor:"serials,omitempty"`
	Holder      string   `yaml:"holder,omitempty" cbor:"holder,omitempty"`
}

// Approval records a party's domestic approval.
type Approval struct {
	Party     string
	Authority string
	Method    string
	Date      time.Time
	Reference string
}

// Signature is one party's signature over [Document.SigningBytes].
type Signature struct {
	Party     string `yaml:"party" cbor:"party"`
	Alg       string `yaml:"alg" cbor:"alg"`
	Key       string `yaml:"key" cbor:"key"`
	Signature string `yaml:"signature" cbor:"signature"`
}

// Notice kinds.
const (
	NoticeTerminate = "terminate"
	NoticeSuspend   = "suspend"
	NoticeResume    = "resume"
)

// Notice is a signed termination, suspension or resumption by one party.
type Notice struct {
	Kind      string
	Party     string
	Date      time.Time
	Signature string
}

// Parse reads a YAML agreement (at most [MaxSize] bytes, unknown fields
// refused) and validates its structure. It does not verify signatures.
func Parse(data []byte) (*Document, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("agreement is %d bytes, more than the %d allowed", len(data), MaxSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var d Document
	if err := dec.Decode(&d); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("agreement is empty")
		}
		return nil, fmt.Errorf("reading agreement YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("agreement YAML holds more than one document")
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// Marshal writes d as YAML that [Parse] reads back to the same digest.
func (d *Document) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Key returns "<id> v<version>".
func (d *Document) Key() string { return fmt.Sprintf("%s v%d", d.ID, d.Version) }

// HasParty reports whether id is a party.
func (d *Document) HasParty(id string) bool { return d.Party(id) != nil }

// Party returns the party with the given id, or nil.
func (d *Document) Party(id string) *Party {
	for i := range d.Parties {
		if d.Parties[i].ID == id {
			return &d.Parties[i]
		}
	}
	return nil
}

// Channel returns the channel with the given name, or nil.
func (d *Document) Channel(name string) *Channel {
	for i := range d.Channels {
		if d.Channels[i].Name == name {
			return &d.Channels[i]
		}
	}
	return nil
}

// HasMember reports whether party is a member of the channel.
func (c *Channel) HasMember(party string) bool {
	for _, m := range c.Members {
		if m == party {
			return true
		}
	}
	return false
}

// AllowsPrecedence reports whether the channel carries precedence p.
func (c *Channel) AllowsPrecedence(p message.Precedence) bool {
	if len(c.Precedences) == 0 {
		return p.Valid()
	}
	for _, q := range c.Precedences {
		if q == p {
			return true
		}
	}
	return false
}
