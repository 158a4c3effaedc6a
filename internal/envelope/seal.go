package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"liaison/internal/message"
)

// The HPKE suite: the recipient's KEM, HKDF-SHA256, and export-only (the
// per-message AEAD is AES-256-GCM keyed from the exporter).
var (
	kdf  = hpke.HKDFSHA256()
	aead = hpke.ExportOnly()
)

const (
	keyLen      = 32
	nonceLen    = 12
	minCompress = 64 // bodies shorter than this are never compressed
)

// RecipientKey is the recipient node's current HPKE public key, as pinned
// from its card.
type RecipientKey struct {
	Party     string
	Epoch     uint32
	PublicKey hpke.PublicKey
}

// hpkeInfo binds an HPKE context to the envelope version, the recipient
// party and epoch.
func hpkeInfo(version uint8, party string, epoch uint32) []byte {
	var b []byte
	if version == 1 {
		b = []byte("liaison envelope v1 batch\x00")
	} else {
		b = []byte("liaison envelope v2 context\x00")
	}
	b = append(b, party...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, epoch)
}

// rootMessage is what the origin signs for a batch root.
func rootMessage(version uint8, root [hashSize]byte) []byte {
	if version == 1 {
		return append([]byte("liaison envelope v1 root\x00"), root[:]...)
	}
	return append([]byte("liaison envelope v2 root\x00"), root[:]...)
}

// messageAEAD returns the AEAD and nonce of the message with key index k.
func messageAEAD(export func(string, int) ([]byte, error), version uint8, k uint64) (cipher.AEAD, []byte, error) {
	var ctx []byte
	if version == 1 {
		ctx = binary.BigEndian.AppendUint32([]byte("liaison envelope v1 message key\x00"), uint32(k))
	} else {
		ctx = binary.BigEndian.AppendUint64([]byte("liaison envelope v2 message key\x00"), k)
	}
	km, err := export(string(ctx), keyLen+nonceLen)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(km[:keyLen])
	if err != nil {
		return nil, nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return g, km[keyLen:], nil
}

// Sealer is one HPKE context to a recipient key, for many batches. Its
// encapsulated key goes with every envelope it seals, the same in all of
// them, so that a link sends it once per session and the receiver
// decapsulates it once. Each message gets its own key index, never given
// twice, and its own AEAD key and nonce exported under it. A node keeps
// one Sealer per partner for a while, then starts a new one: everything
// sealed with a Sealer is exposed if its context leaks, so its life bounds
// that. It is safe for concurrent use.
type Sealer struct {
	recipient RecipientKey
	enc       []byte
	version   uint8 // of the envelopes it writes: Version (1 only in tests)

	mu     sync.Mutex // guards below
	sender *hpke.Sender
	next   uint64 // key index of the next message
}

// NewSealer performs the HPKE encapsulation to the recipient's key.
func NewSealer(recipient RecipientKey) (*Sealer, error) { return newSealer(recipient, Version) }

func newSealer(recipient RecipientKey, version uint8) (*Sealer, error) {
	if recipient.PublicKey == nil || recipient.Party == "" || len(recipient.Party) > maxParty {
		return nil, fmt.Errorf("envelope: incomplete recipient key for %q", recipient.Party)
	}
	enc, s, err := hpke.NewSender(recipient.PublicKey, kdf, aead, hpkeInfo(version, recipient.Party, recipient.Epoch))
	if err != nil {
		return nil, fmt.Errorf("envelope: hpke encapsulation: %w", err)
	}
	return &Sealer{recipient: recipient, enc: enc, version: version, sender: s}, nil
}

// Recipient is the key the Sealer seals to.
func (s *Sealer) Recipient() RecipientKey { return s.recipient }

// Sealed is how many messages the Sealer has sealed.
func (s *Sealer) Sealed() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// aead returns the key index, AEAD and nonce of the next message.
func (s *Sealer) aead() (uint64, cipher.AEAD, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.next
	g, nonce, err := messageAEAD(s.sender.Export, s.version, k)
	if err != nil {
		return 0, nil, nil, err
	}
	s.next++
	return k, g, nonce, nil
}

var zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))

// Batch seals and signs a batch of messages for one recipient node. Add the
// messages, then call Finish once. A Batch is not safe for concurrent use.
type Batch struct {
	signer ed25519.PrivateKey
	sealer *Sealer
	origin string
	items  [][]byte // signed part of each envelope, without index and size
	done   bool
}

// NewBatch starts a batch with a Sealer of its own: one HPKE encapsulation
// for this batch alone.
func NewBatch(signer ed25519.PrivateKey, recipient RecipientKey) (*Batch, error) {
	s, err := NewSealer(recipient)
	if err != nil {
		return nil, err
	}
	return s.NewBatch(signer)
}

// NewBatch starts a batch sealed with s's HPKE context.
func (s *Sealer) NewBatch(signer ed25519.PrivateKey) (*Batch, error) {
	if len(signer) != ed25519.PrivateKeySize {
		return nil, errors.New("envelope: signer is not an Ed25519 private key")
	}
	return &Batch{signer: signer, sealer: s}, nil
}

// Len returns the number of messages added so far.
func (b *Batch) Len() int { return len(b.items) }

// Add compresses (when that makes it smaller) and seals m's body. Every
// message of a batch must have the same origin party: the batch's signer.
func (b *Batch) Add(m *message.Message) error {
	if b.done {
		return errors.New("envelope: batch already finished")
	}
	if len(b.items) == MaxBatch {
		return fmt.Errorf("envelope: batch is full (%d messages)", MaxBatch)
	}
	if err := m.Validate(); err != nil {
		return err
	}
	if b.origin == "" {
		b.origin = m.Origin
	} else if m.Origin != b.origin {
		return fmt.Errorf("envelope: message origin %q differs from the batch's %q", m.Origin, b.origin)
	}
	if !time.Unix(0, m.Created.UnixNano()).Equal(m.Created) {
		return fmt.Errorf("envelope: created time %s out of range", m.Created)
	}
	if len(m.TraceID) > message.MaxNameLen {
		return fmt.Errorf("envelope: trace id longer than %d bytes", message.MaxNameLen)
	}
	h := Header{
		Version: b.sealer.version, ID: m.ID, Channel: m.Channel, Origin: m.Origin, Originator: m.Originator,
		Precedence: m.Precedence, Created: m.Created, Label: m.Label, Alternatives: m.Alternatives,
		Recipient: b.sealer.recipient.Party, Epoch: b.sealer.recipient.Epoch, KEMID: b.sealer.recipient.PublicKey.KEM().ID(),
		ContentType: m.ContentType, TraceID: m.TraceID, BodyLen: len(m.Body),
	}
	body := m.Body
	if len(body) >= minCompress {
		if z := zenc.EncodeAll(body, make([]byte, 0, len(body))); len(z) < len(body) {
			body, h.Compression = z, CompressionZstd
		}
	}
	return b.add(&h, body)
}

// add seals payload (the body as it travels, compressed or not) under h.
func (b *Batch) add(h *Header, payload []byte) error {
	k, g, nonce, err := b.sealer.aead()
	if err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	h.KeyIndex = k
	enc := b.sealer.enc
	item := appendHeader(make([]byte, 0, 256+len(h.Label)+len(payload)+len(enc)+aeadOverhead), h, enc)
	ct := g.Seal(nil, nonce, payload, item)
	b.items = append(b.items, appendBytes(item, ct))
	return nil
}

// Finish signs the batch and returns one envelope per message, in the order
// they were added. The batch cannot be used afterwards.
func (b *Batch) Finish() ([][]byte, error) {
	if b.done {
		return nil, errors.New("envelope: batch already finished")
	}
	b.done = true
	n := len(b.items)
	if n == 0 {
		return nil, errors.New("envelope: empty batch")
	}
	leaves := make([][hashSize]byte, n)
	for i := range b.items {
		b.items[i] = binary.AppendUvarint(b.items[i], uint64(i))
		b.items[i] = binary.AppendUvarint(b.items[i], uint64(n))
		leaves[i] = leafHash(b.items[i])
	}
	proofs := make([][][hashSize]byte, n)
	root := buildTree(leaves, proofs)
	sig := ed25519.Sign(b.signer, rootMessage(b.sealer.version, root))
	out := make([][]byte, n)
	for i, item := range b.items {
		proof := proofs[i]
		w := make([]byte, 0, len(item)+1+len(proof)*hashSize+sigSize)
		w = append(w, item...)
		w = append(w, byte(len(proof)))
		for _, p := range proof {
			w = append(w, p[:]...)
		}
		out[i] = append(w, sig...)
	}
	b.items = nil
	return out, nil
}
