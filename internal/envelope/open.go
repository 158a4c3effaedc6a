package envelope

import (
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"

	"liaison/internal/message"
)

// VerifyFunc returns the Ed25519 public key of an origin party's node, as
// pinned from its card.
type VerifyFunc func(origin string) (ed25519.PublicKey, error)

// KeysFunc returns this node's HPKE private key of an epoch.
type KeysFunc func(epoch uint32) (hpke.PrivateKey, error)

var zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(message.MaxBody), zstd.WithDecodeAllCapLimit(true))

// Open verifies an envelope addressed to the party self and returns its
// message and header. It checks, in this order: the encoding, the origin
// node's signature over the batch root and the envelope's inclusion proof,
// the recipient, the key epoch; only then does it decapsulate, decrypt and
// decompress. Errors wrap ErrMalformed, ErrBadSignature, ErrWrongRecipient or
// ErrUnknownEpoch.
//
// Open does one decapsulation and one signature verification per envelope.
// An [Opener] caches both per batch.
func Open(wire []byte, verify VerifyFunc, keys KeysFunc, self string) (*message.Message, *Header, error) {
	return (&Opener{Verify: verify, Keys: keys, Self: self, CacheSize: -1}).Open(wire)
}

// Opener opens envelopes like [Open] but remembers, for the last CacheSize
// batches, that a batch's root signature verified and the HPKE context of
// its encapsulated key, so the other envelopes of a batch cost a Merkle
// proof check, a key export and an AEAD open. It is safe for concurrent use.
type Opener struct {
	Verify VerifyFunc
	Keys   KeysFunc
	Self   string // this node's party
	// CacheSize is the number of batches remembered; 0 means 64, negative
	// disables caching.
	CacheSize int

	mu    sync.Mutex                 // guards the fields below
	roots map[string]bool            // origin key || root || signature
	ctxs  map[string]*hpke.Recipient // recipient || epoch || kem || enc
}

func (o *Opener) cacheSize() int {
	if o.CacheSize == 0 {
		return 64
	}
	return o.CacheSize
}

// Open verifies and opens one envelope; see [Open].
func (o *Opener) Open(b []byte) (*message.Message, *Header, error) {
	w, err := decode(b)
	if err != nil {
		return nil, nil, err
	}
	h := &w.h
	if err := o.verify(w); err != nil {
		return nil, h, err
	}
	if h.Recipient != o.Self {
		return nil, h, fmt.Errorf("%w: addressed to %q, this node is %q", ErrWrongRecipient, h.Recipient, o.Self)
	}
	r, err := o.recipient(w)
	if err != nil {
		return nil, h, err
	}
	o.mu.Lock()
	g, nonce, err := messageAEAD(r.Export, h.Version, h.KeyIndex)
	o.mu.Unlock()
	if err != nil {
		return nil, h, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	body, err := g.Open(nil, nonce, w.ct, w.aad)
	if err != nil {
		return nil, h, fmt.Errorf("%w: body does not decrypt with the key of epoch %d", ErrWrongRecipient, h.Epoch)
	}
	if h.Compression == CompressionZstd {
		z := body
		if body, err = zdec.DecodeAll(z, make([]byte, 0, h.BodyLen)); err != nil {
			return nil, h, fmt.Errorf("%w: body does not decompress: %v", ErrMalformed, err)
		}
	}
	if len(body) != h.BodyLen {
		return nil, h, fmt.Errorf("%w: body is %d bytes, header says %d", ErrMalformed, len(body), h.BodyLen)
	}
	m := &message.Message{
		ID: h.ID, Channel: h.Channel, Origin: h.Origin, Originator: h.Originator, Precedence: h.Precedence,
		Created: h.Created, Label: h.Label, Alternatives: h.Alternatives, ContentType: h.ContentType,
		Body: body, TraceID: h.TraceID,
	}
	if err := m.Validate(); err != nil {
		return nil, h, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return m, h, nil
}

// verify checks the inclusion proof against the root and the origin's
// signature over the root.
func (o *Opener) verify(w *wire) error {
	pub, err := o.Verify(w.h.Origin)
	if err != nil {
		return fmt.Errorf("%w: no signing key for origin %q: %v", ErrBadSignature, w.h.Origin, err)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: signing key for origin %q is not an Ed25519 key", ErrBadSignature, w.h.Origin)
	}
	root, ok := rootFromProof(w.h.Index, w.h.BatchSize, leafHash(w.signed), w.proof)
	if !ok {
		return fmt.Errorf("%w: inclusion proof of %d hashes does not fit index %d of %d", ErrBadSignature, len(w.proof), w.h.Index, w.h.BatchSize)
	}
	// The cache key covers the version, the key, the root and the
	// signature: a hit means exactly this signature by exactly this key
	// over this root verified.
	key := make([]byte, 0, 1+len(pub)+hashSize+sigSize)
	key = append(append(append(append(key, w.h.Version), pub...), root[:]...), w.sig...)
	if o.cacheSize() > 0 {
		o.mu.Lock()
		hit := o.roots[string(key)]
		o.mu.Unlock()
		if hit {
			return nil
		}
	}
	if !ed25519.Verify(pub, rootMessage(w.h.Version, root), w.sig) {
		return fmt.Errorf("%w: batch root signature by %q", ErrBadSignature, w.h.Origin)
	}
	if n := o.cacheSize(); n > 0 {
		o.mu.Lock()
		if o.roots == nil || len(o.roots) >= n {
			o.roots = make(map[string]bool, n)
		}
		o.roots[string(key)] = true
		o.mu.Unlock()
	}
	return nil
}

// recipient returns the HPKE receiving context of the envelope's batch.
func (o *Opener) recipient(w *wire) (*hpke.Recipient, error) {
	h := &w.h
	priv, err := o.Keys(h.Epoch)
	if err != nil || priv == nil {
		return nil, fmt.Errorf("%w: epoch %d: %v", ErrUnknownEpoch, h.Epoch, err)
	}
	if id := priv.KEM().ID(); id != h.KEMID {
		return nil, fmt.Errorf("%w: epoch %d key is kem %#04x, envelope says %#04x", ErrWrongRecipient, h.Epoch, id, h.KEMID)
	}
	// The epoch names one key for the life of the node (epochs only grow),
	// so version, recipient, epoch and KEM with enc identify the context.
	info := hpkeInfo(h.Version, h.Recipient, h.Epoch)
	key := binary.BigEndian.AppendUint16(info, h.KEMID)
	key = append(key, w.enc...)
	if o.cacheSize() > 0 {
		o.mu.Lock()
		r := o.ctxs[string(key)]
		o.mu.Unlock()
		if r != nil {
			return r, nil
		}
	}
	r, err := hpke.NewRecipient(w.enc, priv, kdf, aead, info)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot decapsulate with the key of epoch %d: %v", ErrWrongRecipient, h.Epoch, err)
	}
	if n := o.cacheSize(); n > 0 {
		o.mu.Lock()
		if o.ctxs == nil || len(o.ctxs) >= n {
			o.ctxs = make(map[string]*hpke.Recipient, n)
		}
		o.ctxs[string(key)] = r
		o.mu.Unlock()
	}
	return r, nil
}
