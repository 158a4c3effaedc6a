package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// CardVersion is the version of the card encoding this package writes.
const CardVersion = 1

// MaxCardSize bounds an encoded card.
const MaxCardSize = 32 << 10

// cardDomain separates card signatures from every other signature made by
// the same keys.
const cardDomain = "liaison card v1\x00"

// ErrBadCard is wrapped by every error ParseCard returns.
var ErrBadCard = errors.New("bad node card")

// Card is a node's public card: what a partner pins to reach it, encrypt to
// it and verify its signatures. It is encoded as deterministic CBOR (RFC 8949
// core deterministic encoding, integer keys) because it is signed: the same
// card always has the same bytes, so a signature can be checked after any
// number of round trips. JSON has no such guarantee.
type Card struct {
	Version    uint8    `cbor:"1,keyasint"`
	Party      string   `cbor:"2,keyasint"`
	Node       string   `cbor:"3,keyasint"`            // DNS name, TLS server name
	Endpoints  []string `cbor:"4,keyasint"`            // host:port of the federation listener
	CACert     []byte   `cbor:"5,keyasint"`            // node CA certificate, DER
	SigningKey []byte   `cbor:"6,keyasint"`            // Ed25519 public key, 32 bytes
	KEMID      uint16   `cbor:"7,keyasint"`            // HPKE KEM identifier
	HPKEKey    []byte   `cbor:"8,keyasint"`            // HPKE public key of Epoch
	Epoch      uint32   `cbor:"9,keyasint"`            // HPKE key epoch
	Issued     int64    `cbor:"10,keyasint"`           // Unix seconds
	Sig        []byte   `cbor:"11,keyasint,omitempty"` // Ed25519 by SigningKey over signed bytes
	CASig      []byte   `cbor:"12,keyasint,omitempty"` // node CA signature over the same bytes

	caCert  *x509.Certificate
	hpkePub hpke.PublicKey
}

var (
	encMode, _ = cbor.CoreDetEncOptions().EncMode()
	decMode, _ = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxArrayElements:  64,
		MaxMapPairs:       64,
		MaxNestedLevels:   4,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
	}.DecMode()
)

// signedBytes returns the bytes both signatures cover.
func (c *Card) signedBytes() ([]byte, error) {
	u := *c
	u.Sig, u.CASig = nil, nil
	b, err := encMode.Marshal(&u)
	if err != nil {
		return nil, err
	}
	return append([]byte(cardDomain), b...), nil
}

// Card returns the node's signed card for the current epoch.
func (id *Identity) Card(endpoints []string, now time.Time) (*Card, error) {
	epoch, priv := id.Current()
	c := &Card{
		Version:    CardVersion,
		Party:      id.Party,
		Node:       NodeName(id.Party),
		Endpoints:  endpoints,
		CACert:     id.CACert.Raw,
		SigningKey: id.SigningKey.Public().(ed25519.PublicKey),
		KEMID:      priv.KEM().ID(),
		HPKEKey:    priv.PublicKey().Bytes(),
		Epoch:      epoch,
		Issued:     now.Unix(),
	}
	msg, err := c.signedBytes()
	if err != nil {
		return nil, err
	}
	c.Sig = ed25519.Sign(id.SigningKey, msg)
	h := sha256.Sum256(msg)
	if c.CASig, err = id.CAKey.Sign(rand.Reader, h[:], crypto.SHA256); err != nil {
		return nil, err
	}
	return ParseCard(mustMarshal(c))
}

func mustMarshal(c *Card) []byte {
	b, err := encMode.Marshal(c)
	if err != nil {
		return nil
	}
	return b
}

// Marshal returns the card's deterministic CBOR encoding.
func (c *Card) Marshal() ([]byte, error) { return encMode.Marshal(c) }

// ParseCard decodes a card and verifies it: canonical encoding, both
// signatures, a CA certificate naming the card's party, a 32-byte signing key
// and an HPKE public key valid for its KEM.
func ParseCard(b []byte) (*Card, error) {
	bad := func(format string, args ...any) (*Card, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadCard, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxCardSize {
		return bad("%d bytes, limit %d", len(b), MaxCardSize)
	}
	var c Card
	if err := decMode.Unmarshal(b, &c); err != nil {
		return bad("%v", err)
	}
	if re, err := encMode.Marshal(&c); err != nil || !bytes.Equal(re, b) {
		return bad("not in canonical encoding")
	}
	if c.Version != CardVersion {
		return bad("version %d, want %d", c.Version, CardVersion)
	}
	if !ValidParty(c.Party) || c.Node != NodeName(c.Party) {
		return bad("party %q with node %q", c.Party, c.Node)
	}
	if len(c.Endpoints) == 0 || len(c.Endpoints) > 8 {
		return bad("%d endpoints, want 1-8", len(c.Endpoints))
	}
	if len(c.SigningKey) != ed25519.PublicKeySize || len(c.Sig) != ed25519.SignatureSize {
		return bad("signing key or signature has the wrong size")
	}
	msg, err := c.signedBytes()
	if err != nil {
		return bad("%v", err)
	}
	if !ed25519.Verify(c.SigningKey, msg, c.Sig) {
		return bad("node signature does not verify")
	}
	if c.caCert, err = x509.ParseCertificate(c.CACert); err != nil {
		return bad("ca certificate: %v", err)
	}
	if !c.caCert.IsCA {
		return bad("ca certificate is not a CA")
	}
	if p, err := PartyFromCert(c.caCert); err != nil || p != c.Party {
		return bad("ca certificate names party %q, card names %q", p, c.Party)
	}
	caPub, ok := c.caCert.PublicKey.(*ecdsa.PublicKey)
	h := sha256.Sum256(msg)
	if !ok || !ecdsa.VerifyASN1(caPub, h[:], c.CASig) {
		return bad("ca signature does not verify")
	}
	kem, err := hpke.NewKEM(c.KEMID)
	if err != nil {
		return bad("kem %#04x: %v", c.KEMID, err)
	}
	if c.hpkePub, err = kem.NewPublicKey(c.HPKEKey); err != nil {
		return bad("hpke key: %v", err)
	}
	return &c, nil
}

// CAFingerprint returns "sha256:<hex of the CA certificate DER>", the form
// agreements use in parties[].ca_fingerprint.
func (c *Card) CAFingerprint() string { return Fingerprint(c.CACert) }

// Fingerprint returns "sha256:<hex>" of a certificate's DER.
func Fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(h[:])
}

// CA returns the card's parsed CA certificate.
func (c *Card) CA() *x509.Certificate { return c.caCert }

// HPKEPublicKey returns the card's parsed HPKE public key.
func (c *Card) HPKEPublicKey() hpke.PublicKey { return c.hpkePub }

// IssuedAt returns the card's issue time.
func (c *Card) IssuedAt() time.Time { return time.Unix(c.Issued, 0).UTC() }

// ImportCard verifies a partner card and pins it as dir/cards/<PARTY>.card,
// replacing an older card of the same party only if the new one was issued
// later and carries the same CA. It returns the parsed card.
func ImportCard(dir string, b []byte) (*Card, error) {
	c, err := ParseCard(b)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, CardsDir), 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, CardsDir, c.Party+".card")
	if old, err := readCard(path); err == nil {
		if !bytes.Equal(old.CACert, c.CACert) {
			return nil, fmt.Errorf("card for %q has CA %s, pinned card has %s; remove %s to re-pin", c.Party, c.CAFingerprint(), old.CAFingerprint(), path)
		}
		if c.Issued < old.Issued {
			return nil, fmt.Errorf("card for %q was issued before the pinned one", c.Party)
		}
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := writeFile(tmp, b, 0o644); err != nil {
		return nil, err
	}
	return c, os.Rename(tmp, path)
}

// LoadCards reads every pinned card in dir/cards, keyed by party.
func LoadCards(dir string) (map[string]*Card, error) {
	entries, err := os.ReadDir(filepath.Join(dir, CardsDir))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]*Card{}, nil
	}
	if err != nil {
		return nil, err
	}
	cards := map[string]*Card{}
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".card" {
			continue
		}
		c, err := readCard(filepath.Join(dir, CardsDir, e.Name()))
		if err != nil {
			return nil, err
		}
		if e.Name() != c.Party+".card" {
			return nil, fmt.Errorf("%s holds the card of %q", e.Name(), c.Party)
		}
		cards[c.Party] = c
	}
	return cards, nil
}

func readCard(path string) (*Card, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseCard(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
