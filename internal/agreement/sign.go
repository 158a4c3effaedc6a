package agreement

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// Approve records a party's domestic approval, replacing an earlier one by
// the same party. Approvals are part of the signed content, so every
// approval must be recorded before anyone signs.
func (d *Document) Approve(a Approval) error {
	if !d.HasParty(a.Party) {
		return fmt.Errorf("approval: %q is not a party", a.Party)
	}
	if a.Authority == "" || a.Method == "" || a.Date.IsZero() {
		return fmt.Errorf("approval by %s: authority, method and date are required", a.Party)
	}
	if len(d.Signatures) > 0 {
		return fmt.Errorf("approval by %s: the document is already signed; approvals come first", a.Party)
	}
	a.Date = a.Date.UTC().Truncate(time.Second)
	for i := range d.Approvals {
		if d.Approvals[i].Party == a.Party {
			d.Approvals[i] = a
			return nil
		}
	}
	d.Approvals = append(d.Approvals, a)
	return nil
}

// partyKey returns the listed ed25519 key of party equal to pub.
func (d *Document) partyKey(party string, pub ed25519.PublicKey) (Key, bool) {
	p := d.Party(party)
	if p == nil {
		return Key{}, false
	}
	for _, k := range p.Keys {
		if k.Alg != AlgEd25519 {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(k.Public)
		if err == nil && bytes.Equal(b, pub) {
			return k, true
		}
	}
	return Key{}, false
}

// Sign adds (or replaces) party's signature over [Document.SigningBytes].
// key must match one of the party's listed keys.
func (d *Document) Sign(party string, key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("sign as %s: private key is %d bytes, want %d", party, len(key), ed25519.PrivateKeySize)
	}
	if !d.HasParty(party) {
		return fmt.Errorf("sign: %q is not a party", party)
	}
	pub := key.Public().(ed25519.PublicKey)
	k, ok := d.partyKey(party, pub)
	if !ok {
		return fmt.Errorf("sign as %s: key %s is not one of the party's listed keys", party, base64.StdEncoding.EncodeToString(pub))
	}
	msg, err := d.SigningBytes()
	if err != nil {
		return err
	}
	s := Signature{Party: party, Alg: AlgEd25519, Key: k.Public, Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg))}
	for i := range d.Signatures {
		if d.Signatures[i].Party == party {
			d.Signatures[i] = s
			return nil
		}
	}
	d.Signatures = append(d.Signatures, s)
	return nil
}

// verifySignature checks one signature over msg, naming the party on error.
func (d *Document) verifySignature(s Signature, msg []byte) error {
	if s.Alg != AlgEd25519 {
		return fmt.Errorf("signature by %s: algorithm %q is not supported", s.Party, s.Alg)
	}
	pub, err := base64.StdEncoding.Strict().DecodeString(s.Key)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("signature by %s: key %q is not an ed25519 public key", s.Party, s.Key)
	}
	if _, ok := d.partyKey(s.Party, pub); !ok {
		return fmt.Errorf("signature by %s: key %s is not one of the party's listed keys", s.Party, s.Key)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(s.Signature)
	if err != nil {
		return fmt.Errorf("signature by %s: not standard base64", s.Party)
	}
	if !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("signature by %s does not verify: forged, or made over another version of the document", s.Party)
	}
	return nil
}

// VerifySignatures checks that every party signed the current content with
// one of its listed keys, and that every notice verifies. The error names
// each party whose signature is missing, forged or over other content.
func (d *Document) VerifySignatures() error {
	msg, err := d.SigningBytes()
	if err != nil {
		return err
	}
	var errs []error
	signed := map[string]bool{}
	for _, s := range d.Signatures {
		if !d.HasParty(s.Party) {
			errs = append(errs, fmt.Errorf("signature by %q: not a party", s.Party))
			continue
		}
		if signed[s.Party] {
			errs = append(errs, fmt.Errorf("signature by %s: party signed twice", s.Party))
			continue
		}
		signed[s.Party] = true
		if err := d.verifySignature(s, msg); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range d.Parties {
		if !signed[p.ID] {
			errs = append(errs, fmt.Errorf("signature by %s is missing", p.ID))
		}
	}
	if len(errs) == 0 {
		dg, _ := d.Digest()
		for i, n := range d.Notices {
			if err := d.verifyNotice(n, dg); err != nil {
				errs = append(errs, fmt.Errorf("notices[%d]: %w", i, err))
			}
		}
	}
	return errors.Join(errs...)
}

// noticeBytes is what a notice's signature covers: a context prefix and the
// canonical CBOR array [agreement digest, kind, party, date (Unix seconds)].
func noticeBytes(dg Digest, kind, party string, date time.Time) ([]byte, error) {
	b, err := encMode.Marshal([]any{dg[:], kind, party, unix(date)})
	if err != nil {
		return nil, err
	}
	return append([]byte(noticeContext), b...), nil
}

// AddNotice appends a termination, suspension or resumption by party,
// signed with key over the agreement digest, kind, party and date. The
// agreement must already be signed by every party.
func (d *Document) AddNotice(kind, party string, date time.Time, key ed25519.PrivateKey) error {
	if kind != NoticeTerminate && kind != NoticeSuspend && kind != NoticeResume {
		return fmt.Errorf("notice: unknown kind %q (want terminate, suspend or resume)", kind)
	}
	if !d.HasParty(party) {
		return fmt.Errorf("notice: %q is not a party", party)
	}
	if date.IsZero() {
		return fmt.Errorf("%s notice by %s: date is required", kind, party)
	}
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("%s notice by %s: private key is %d bytes, want %d", kind, party, len(key), ed25519.PrivateKeySize)
	}
	if _, ok := d.partyKey(party, key.Public().(ed25519.PublicKey)); !ok {
		return fmt.Errorf("%s notice by %s: key is not one of the party's listed keys", kind, party)
	}
	if err := d.VerifySignatures(); err != nil {
		return fmt.Errorf("%s notice by %s: the agreement is not fully signed: %w", kind, party, err)
	}
	date = date.UTC().Truncate(time.Second)
	dg, err := d.Digest()
	if err != nil {
		return err
	}
	msg, err := noticeBytes(dg, kind, party, date)
	if err != nil {
		return err
	}
	d.Notices = append(d.Notices, Notice{Kind: kind, Party: party, Date: date,
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg))})
	return nil
}

// verifyNotice checks n against every listed ed25519 key of its party.
func (d *Document) verifyNotice(n Notice, dg Digest) error {
	p := d.Party(n.Party)
	if p == nil {
		return fmt.Errorf("%s notice: %q is not a party", n.Kind, n.Party)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(n.Signature)
	if err != nil {
		return fmt.Errorf("%s notice by %s: signature is not standard base64", n.Kind, n.Party)
	}
	msg, err := noticeBytes(dg, n.Kind, n.Party, n.Date)
	if err != nil {
		return err
	}
	for _, k := range p.Keys {
		if k.Alg != AlgEd25519 {
			continue
		}
		pub, err := base64.StdEncoding.DecodeString(k.Public)
		if err == nil && len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig) {
			return nil
		}
	}
	return fmt.Errorf("%s notice by %s dated %s does not verify against the party's keys", n.Kind, n.Party, formatTime(n.Date))
}
