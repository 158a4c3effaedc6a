// Package envelope is the wire form of a message between two Liaison nodes:
// a header that carries the message's routing fields and labels in the
// clear, a body compressed and sealed to the recipient node's HPKE key, and
// the origin node's signature binding the two.
//
// docs/WIRE.md describes the encoding byte by byte.
//
// # Sealing and signing in batches
//
// A [Sealer] performs one HPKE encapsulation to the recipient's current
// key, and seals any number of batches with that context; a [Batch] makes
// one Ed25519 signature, however many messages it holds. Each message's
// AEAD key and nonce are exported from the HPKE context under the
// message's key index, which the Sealer never gives twice, and the
// signature covers the RFC 6962 Merkle root over the hashes of the batch's
// signed items (header and ciphertext). Every envelope carries the
// encapsulated key, its key index, its inclusion proof and the root
// signature, so each one is verified and opened on its own, in any order,
// whatever happens to the rest of the batch. Because the encapsulated key
// is the same across a Sealer's batches, a link sends it once per session
// and the receiver decapsulates once.
//
// Version 1 envelopes (one HPKE context per batch, keys by batch index)
// still open; this package writes version 2.
//
// # Verify first
//
// [Open] checks the signature before it does anything else with the
// envelope: no decapsulation, decryption or decompression happens on bytes
// that the origin node did not sign. [DecodeHeader] reads the header for
// routing and inspection and trusts nothing.
//
// # Replay
//
// An envelope stays valid forever: this package does not detect replays.
// Federation de-duplicates by message id (each node's permanent
// de-duplication table) and that is what makes a replayed envelope harmless.
//
// The package is pure: it does no I/O and no logging.
package envelope

import (
	"errors"
	"time"

	"liaison/internal/message"
)

// Version is the first byte of every envelope this package writes.
// Version 1 envelopes still open.
const Version = 2

// Limits the decoder enforces.
const (
	MaxBatch     = 1 << 16 // messages per batch
	maxProof     = 16      // = log2(MaxBatch)
	maxEnc       = 2048    // encapsulated key (ML-KEM-1024 + P-384 is 1665 bytes)
	maxParty     = message.MaxNameLen
	hashSize     = 32
	sigSize      = 64
	aeadOverhead = 16
)

// Errors returned by [Open], wrapped with what was wrong.
var (
	// ErrBadSignature: the envelope is not signed by its origin node, or was
	// changed after signing (header, label, ciphertext, proof or root
	// signature). Discard it; never act on its contents.
	ErrBadSignature = errors.New("envelope signature does not verify")
	// ErrWrongRecipient: the envelope is for another party, or was sealed to
	// a key this node does not hold.
	ErrWrongRecipient = errors.New("envelope is not for this node")
	// ErrUnknownEpoch: the envelope was sealed to a key epoch this node has
	// no key for (never had, or already retired).
	ErrUnknownEpoch = errors.New("envelope key epoch unknown")
	// ErrMalformed: the bytes are not a well-formed envelope.
	ErrMalformed = errors.New("malformed envelope")
)

// Compression of the sealed body.
const (
	CompressionNone = 0
	CompressionZstd = 1
)

// Header is the clear part of an envelope. Every field is covered by the
// origin's signature, but [DecodeHeader] returns it without checking that.
type Header struct {
	Version      uint8
	ID           message.ID
	Channel      string
	Origin       string // origin party; its node signed the envelope
	Originator   string
	Precedence   message.Precedence
	Created      time.Time
	Label        []byte   // originator's STANAG 4774 label, XML bytes
	Alternatives [][]byte // alternative labels, XML bytes
	Recipient    string   // recipient party
	Epoch        uint32   // recipient's HPKE key epoch
	KEMID        uint16   // HPKE KEM of the recipient key
	ContentType  string
	TraceID      string
	BodyLen      int    // length of the plaintext body
	Compression  uint8  // CompressionNone or CompressionZstd
	KeyIndex     uint64 // what the message's AEAD key is exported under (version 1: Index)
	Index        int    // position in the batch
	BatchSize    int    // messages in the batch
}
