package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/binary"
	"errors"
	"fmt"
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
	infoDomain  = "liaison envelope v1 batch\x00"
	keyDomain   = "liaison envelope v1 message key\x00"
	rootDomain  = "liaison envelope v1 root\x00"
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

// hpkeInfo binds the batch's HPKE context to the recipient party and epoch.
func hpkeInfo(party string, epoch uint32) []byte {
	b := append([]byte(infoDomain), party...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, epoch)
}

// messageAEAD returns the AEAD and nonce for message index of a batch.
func messageAEAD(export func(string, int) ([]byte, error), index int) (cipher.AEAD, []byte, error) {
	ctx := string(binary.BigEndian.AppendUint32([]byte(keyDomain), uint32(index)))
	km, err := export(ctx, keyLen+nonceLen)
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

var zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))

// Batch seals and signs a batch of messages for one recipient node. Add the
// messages, then call Finish once. A Batch is not safe for concurrent use.
type Batch struct {
	signer    ed25519.PrivateKey
	recipient RecipientKey
	enc       []byte
	sender    *hpke.Sender
	origin    string
	items     [][]byte // signed part of each envelope, without index and size
	done      bool
}

// NewBatch starts a batch: it performs the batch's one HPKE encapsulation to
// the recipient's key.
func NewBatch(signer ed25519.PrivateKey, recipient RecipientKey) (*Batch, error) {
	if len(signer) != ed25519.PrivateKeySize {
		return nil, errors.New("envelope: signer is not an Ed25519 private key")
	}
	if recipient.PublicKey == nil || recipient.Party == "" || len(recipient.Party) > maxParty {
		return nil, fmt.Errorf("envelope: incomplete recipient key for %q", recipient.Party)
	}
	enc, s, err := hpke.NewSender(recipient.PublicKey, kdf, aead, hpkeInfo(recipient.Party, recipient.Epoch))
	if err != nil {
		return nil, fmt.Errorf("envelope: hpke encapsulation: %w", err)
	}
	return &Batch{signer: signer, recipient: recipient, enc: enc, sender: s}, nil
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
		Version: Version, ID: m.ID, Channel: m.Channel, Origin: m.Origin, Originator: m.Originator,
		Precedence: m.Precedence, Created: m.Created, Label: m.Label, Alternatives: m.Alternatives,
		Recipient: b.recipient.Party, Epoch: b.recipient.Epoch, KEMID: b.recipient.PublicKey.KEM().ID(),
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
	g, nonce, err := messageAEAD(b.sender.Export, len(b.items))
	if err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	item := appendHeader(make([]byte, 0, 256+len(h.Label)+len(payload)+len(b.enc)+aeadOverhead), h, b.enc)
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
	sig := ed25519.Sign(b.signer, append([]byte(rootDomain), root[:]...))
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
