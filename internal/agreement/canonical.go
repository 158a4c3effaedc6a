package agreement

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"

	"liaison/internal/message"
)

// signingContext separates agreement signatures from every other signature
// a party's key might make.
const signingContext = "liaison-agreement-v1\x00"

// noticeContext separates notice signatures from agreement signatures.
const noticeContext = "liaison-agreement-notice-v1\x00"

// Digest is the SHA-256 of [Document.SigningBytes]; it names one version.
type Digest [32]byte

// String returns "sha256:<hex>".
func (d Digest) String() string { return "sha256:" + hex.EncodeToString(d[:]) }

// ParseDigest reads "sha256:<64 lowercase hex digits>".
func ParseDigest(s string) (Digest, error) {
	var d Digest
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return d, fmt.Errorf("digest %q: want sha256:<64 lowercase hex digits>", s)
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, fmt.Errorf("digest %q: %v", s, err)
	}
	return d, nil
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
		MaxNestedLevels:   16,
		MaxArrayElements:  4096,
		MaxMapPairs:       4096,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// The wire types fix the canonical form: text keys equal to the YAML names,
// times as Unix seconds, durations as nanoseconds, precedences as names.
// Every optional field is omitted when empty so nil and empty agree.
type wireDoc struct {
	ID         string         `cbor:"id"`
	Version    int            `cbor:"version"`
	Title      string         `cbor:"title"`
	Supersedes string         `cbor:"supersedes,omitempty"`
	Parties    []wireParty    `cbor:"parties,omitempty"`
	Scope      []string       `cbor:"scope,omitempty"`
	Channels   []wireChannel  `cbor:"channels,omitempty"`
	Labels     wireLabels     `cbor:"labels"`
	Term       wireTerm       `cbor:"term"`
	Equipment  []Equipment    `cbor:"equipment,omitempty"`
	Approvals  []wireApproval `cbor:"approvals,omitempty"`
	Signatures []Signature    `cbor:"signatures,omitempty"`
	Notices    []wireNotice   `cbor:"notices,omitempty"`
}

type wireParty struct {
	ID               string    `cbor:"id"`
	Name             string    `cbor:"name"`
	SigningAuthority string    `cbor:"signing_authority"`
	Keys             []wireKey `cbor:"keys,omitempty"`
	CAFingerprint    string    `cbor:"ca_fingerprint"`
}

type wireKey struct {
	Alg    string `cbor:"alg"`
	Public string `cbor:"public"`
}

type wireChannel struct {
	Name         string            `cbor:"name"`
	Scope        string            `cbor:"scope"`
	Members      []string          `cbor:"members,omitempty"`
	Ceiling      map[string]string `cbor:"ceiling,omitempty"`
	DefaultLabel string            `cbor:"default_label"`
	Precedences  []string          `cbor:"precedences,omitempty"`
	Content      wireContent       `cbor:"content"`
}

type wireContent struct {
	MaxSize    int64    `cbor:"max_size"`
	Types      []string `cbor:"types,omitempty"`
	DirtyWords string   `cbor:"dirty_words,omitempty"`
}

type wireLabels struct {
	Policies     []wirePolicy        `cbor:"policies,omitempty"`
	Equivalences []wireEquivalence   `cbor:"equivalences,omitempty"`
	Groups       map[string][]string `cbor:"groups,omitempty"`
}

type wirePolicy struct {
	Party    string `cbor:"party"`
	PolicyID string `cbor:"policy_id"`
	Name     string `cbor:"name"`
	Digest   string `cbor:"digest,omitempty"`
}

type wireEquivalence struct {
	From string `cbor:"from"`
	To   string `cbor:"to"`
}

type wireTerm struct {
	Effective int64 `cbor:"effective"`
	Expiry    int64 `cbor:"expiry"`
	Notice    int64 `cbor:"notice"`
}

type wireApproval struct {
	Party     string `cbor:"party"`
	Authority string `cbor:"authority"`
	Method    string `cbor:"method"`
	Date      int64  `cbor:"date"`
	Reference string `cbor:"reference,omitempty"`
}

type wireNotice struct {
	Kind      string `cbor:"kind"`
	Party     string `cbor:"party"`
	Date      int64  `cbor:"date"`
	Signature string `cbor:"signature"`
}

// unix and fromUnix map times to signed seconds; 0 (and anything before
// it, which Validate refuses) stands for an absent time.
func unix(t time.Time) int64 {
	if t.Unix() <= 0 {
		return 0
	}
	return t.Unix()
}

func fromUnix(s int64) time.Time {
	if s <= 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

func (d *Document) toWire(withSignatures bool) wireDoc {
	w := wireDoc{ID: d.ID, Version: d.Version, Title: d.Title, Supersedes: d.Supersedes, Scope: d.Scope, Equipment: d.Equipment}
	for _, p := range d.Parties {
		wp := wireParty{ID: p.ID, Name: p.Name, SigningAuthority: p.SigningAuthority, CAFingerprint: p.CAFingerprint}
		for _, k := range p.Keys {
			wp.Keys = append(wp.Keys, wireKey(k))
		}
		w.Parties = append(w.Parties, wp)
	}
	for _, c := range d.Channels {
		wc := wireChannel{Name: c.Name, Scope: c.Scope, Members: c.Members, Ceiling: c.Ceiling, DefaultLabel: c.DefaultLabel,
			Content: wireContent{MaxSize: c.Content.MaxSize, Types: c.Content.Types, DirtyWords: c.Content.DirtyWords}}
		for _, p := range c.Precedences {
			wc.Precedences = append(wc.Precedences, p.String())
		}
		w.Channels = append(w.Channels, wc)
	}
	for _, p := range d.Labels.Policies {
		w.Labels.Policies = append(w.Labels.Policies, wirePolicy(p))
	}
	for _, e := range d.Labels.Equivalences {
		w.Labels.Equivalences = append(w.Labels.Equivalences, wireEquivalence(e))
	}
	if len(d.Labels.Groups) > 0 {
		w.Labels.Groups = make(map[string][]string, len(d.Labels.Groups))
		for k, v := range d.Labels.Groups {
			if v == nil {
				v = []string{}
			}
			w.Labels.Groups[k] = v
		}
	}
	w.Term = wireTerm{Effective: unix(d.Term.Effective), Expiry: unix(d.Term.Expiry), Notice: int64(d.Term.Notice)}
	for _, a := range d.Approvals {
		w.Approvals = append(w.Approvals, wireApproval{a.Party, a.Authority, a.Method, unix(a.Date), a.Reference})
	}
	if withSignatures {
		w.Signatures = d.Signatures
		for _, n := range d.Notices {
			w.Notices = append(w.Notices, wireNotice{n.Kind, n.Party, unix(n.Date), n.Signature})
		}
	}
	return w
}

func (w *wireDoc) document() (*Document, error) {
	d := &Document{ID: w.ID, Version: w.Version, Title: w.Title, Supersedes: w.Supersedes, Scope: w.Scope,
		Equipment: w.Equipment, Signatures: w.Signatures}
	for _, p := range w.Parties {
		dp := Party{ID: p.ID, Name: p.Name, SigningAuthority: p.SigningAuthority, CAFingerprint: p.CAFingerprint}
		for _, k := range p.Keys {
			dp.Keys = append(dp.Keys, Key(k))
		}
		d.Parties = append(d.Parties, dp)
	}
	for _, c := range w.Channels {
		dc := Channel{Name: c.Name, Scope: c.Scope, Members: c.Members, Ceiling: c.Ceiling, DefaultLabel: c.DefaultLabel,
			Content: ContentRules{MaxSize: c.Content.MaxSize, Types: c.Content.Types, DirtyWords: c.Content.DirtyWords}}
		for _, s := range c.Precedences {
			p, err := message.ParsePrecedence(s)
			if err != nil {
				return nil, fmt.Errorf("channel %q: %w", c.Name, err)
			}
			dc.Precedences = append(dc.Precedences, p)
		}
		d.Channels = append(d.Channels, dc)
	}
	for _, p := range w.Labels.Policies {
		d.Labels.Policies = append(d.Labels.Policies, PolicyRef(p))
	}
	for _, e := range w.Labels.Equivalences {
		d.Labels.Equivalences = append(d.Labels.Equivalences, Equivalence(e))
	}
	d.Labels.Groups = w.Labels.Groups
	d.Term = Term{Effective: fromUnix(w.Term.Effective), Expiry: fromUnix(w.Term.Expiry), Notice: Duration(w.Term.Notice)}
	for _, a := range w.Approvals {
		d.Approvals = append(d.Approvals, Approval{a.Party, a.Authority, a.Method, fromUnix(a.Date), a.Reference})
	}
	for _, n := range w.Notices {
		d.Notices = append(d.Notices, Notice{n.Kind, n.Party, fromUnix(n.Date), n.Signature})
	}
	return d, nil
}

// SigningBytes returns the bytes every party signs: "liaison-agreement-v1",
// a zero byte, then the deterministic CBOR of the document without its
// signatures and notices.
func (d *Document) SigningBytes() ([]byte, error) {
	b, err := encMode.Marshal(d.toWire(false))
	if err != nil {
		return nil, fmt.Errorf("encoding agreement: %w", err)
	}
	return append([]byte(signingContext), b...), nil
}

// Digest returns the SHA-256 of [Document.SigningBytes].
func (d *Document) Digest() (Digest, error) {
	b, err := d.SigningBytes()
	if err != nil {
		return Digest{}, err
	}
	return sha256.Sum256(b), nil
}

// EncodeCanonical returns the deterministic CBOR of the whole document,
// signatures and notices included: the form [DecodeCanonical] reads.
func (d *Document) EncodeCanonical() ([]byte, error) {
	return encMode.Marshal(d.toWire(true))
}

// DecodeCanonical reads the CBOR form written by [Document.EncodeCanonical].
// It refuses anything that is not exactly the canonical encoding (so every
// reader derives the same digest), duplicate or unknown keys, tags,
// indefinite lengths, and documents that fail [Document.Validate].
func DecodeCanonical(b []byte) (*Document, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("canonical agreement is %d bytes, more than the %d allowed", len(b), MaxSize)
	}
	var w wireDoc
	if err := decMode.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("decoding canonical agreement: %w", err)
	}
	d, err := w.document()
	if err != nil {
		return nil, err
	}
	again, err := d.EncodeCanonical()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, errors.New("agreement CBOR is not in canonical form (RFC 8949 §4.2 deterministic encoding)")
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}
