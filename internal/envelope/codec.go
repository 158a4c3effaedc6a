package envelope

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"liaison/internal/message"
)

// wire is an envelope split into the parts Open needs.
type wire struct {
	h      Header
	enc    []byte
	aad    []byte // bytes from the version byte to the end of enc
	ct     []byte // ciphertext
	signed []byte // bytes covered by the leaf hash: everything before the proof
	proof  [][hashSize]byte
	sig    []byte
	// shared[:nshared] are the byte ranges of the labels, enc and sig:
	// see SharedRanges.
	shared  [3 + message.MaxAlternates][2]int
	nshared int
}

func (w *wire) share(from, to int) {
	if w.nshared < len(w.shared) {
		w.shared[w.nshared] = [2]int{from, to}
		w.nshared++
	}
}

// appendHeader appends the header fields up to and including enc: the part
// of the envelope that is the AEAD's additional data.
func appendHeader(b []byte, h *Header, enc []byte) []byte {
	b = append(b, h.Version)
	b = append(b, h.ID[:]...)
	b = appendString(b, h.Channel)
	b = appendString(b, h.Origin)
	b = appendString(b, h.Originator)
	b = append(b, byte(h.Precedence))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Created.UnixNano()))
	b = appendBytes(b, h.Label)
	b = binary.AppendUvarint(b, uint64(len(h.Alternatives)))
	for _, a := range h.Alternatives {
		b = appendBytes(b, a)
	}
	b = appendString(b, h.Recipient)
	b = binary.AppendUvarint(b, uint64(h.Epoch))
	b = binary.BigEndian.AppendUint16(b, h.KEMID)
	b = appendString(b, h.ContentType)
	b = appendString(b, h.TraceID)
	b = binary.AppendUvarint(b, uint64(h.BodyLen))
	b = append(b, h.Compression)
	b = appendBytes(b, enc)
	if h.Version >= 2 {
		b = binary.AppendUvarint(b, h.KeyIndex)
	}
	return b
}

// appendTrailer appends what follows the AEAD data in the signed part.
func appendTrailer(b, ct []byte, index, size int) []byte {
	b = appendBytes(b, ct)
	b = binary.AppendUvarint(b, uint64(index))
	return binary.AppendUvarint(b, uint64(size))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decoder reads a strict encoding: canonical varints, bounded lengths, and
// a sticky first error.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d", ErrMalformed, fmt.Sprintf(format, args...), d.off)
	}
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.fail("%s: need %d bytes, have %d", what, n, len(d.b)-d.off)
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

func (d *decoder) byte(what string) byte {
	v := d.take(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

func (d *decoder) uvarint(what string, max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.fail("%s: bad varint", what)
		return 0
	}
	if n != uvarintLen(v) {
		d.fail("%s: non-canonical varint", what)
		return 0
	}
	if v > max {
		d.fail("%s: %d exceeds limit %d", what, v, max)
		return 0
	}
	d.off += n
	return v
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func (d *decoder) bytes(what string, min, max int) []byte {
	n := d.uvarint(what, uint64(max))
	if d.err == nil && int(n) < min {
		d.fail("%s: %d bytes, want at least %d", what, n, min)
	}
	return d.take(int(n), what)
}

func (d *decoder) string(what string, min, max int) string {
	return string(d.bytes(what, min, max))
}

// decode splits an envelope into its parts, enforcing every bound. It
// checks structure only, not signatures.
func decode(b []byte) (*wire, error) {
	d := &decoder{b: b}
	w := &wire{}
	h := &w.h
	if h.Version = d.byte("version"); d.err == nil && (h.Version < 1 || h.Version > Version) {
		return nil, fmt.Errorf("%w: version %d, want 1-%d", ErrMalformed, h.Version, Version)
	}
	copy(h.ID[:], d.take(16, "id"))
	h.Channel = d.string("channel", 1, message.MaxNameLen)
	h.Origin = d.string("origin", 1, message.MaxNameLen)
	h.Originator = d.string("originator", 0, message.MaxNameLen)
	if h.Precedence = message.Precedence(d.byte("precedence")); d.err == nil && !h.Precedence.Valid() {
		d.fail("precedence %d", h.Precedence)
	}
	if c := d.take(8, "created"); c != nil {
		h.Created = time.Unix(0, int64(binary.BigEndian.Uint64(c))).UTC()
	}
	h.Label = d.bytes("label", 1, message.MaxLabel)
	w.share(d.off-len(h.Label), d.off)
	n := d.uvarint("alternatives", message.MaxAlternates)
	for i := uint64(0); i < n && d.err == nil; i++ {
		h.Alternatives = append(h.Alternatives, d.bytes("alternative label", 1, message.MaxLabel))
		w.share(d.off-len(h.Alternatives[i]), d.off)
	}
	h.Recipient = d.string("recipient", 1, maxParty)
	h.Epoch = uint32(d.uvarint("epoch", math.MaxUint32))
	if k := d.take(2, "kem id"); k != nil {
		h.KEMID = binary.BigEndian.Uint16(k)
	}
	h.ContentType = d.string("content type", 1, message.MaxContentType)
	h.TraceID = d.string("trace id", 0, message.MaxNameLen)
	h.BodyLen = int(d.uvarint("body length", message.MaxBody))
	if h.Compression = d.byte("compression"); d.err == nil && h.Compression > CompressionZstd {
		d.fail("compression %d", h.Compression)
	}
	w.enc = d.bytes("encapsulated key", 1, maxEnc)
	w.share(d.off-len(w.enc), d.off)
	if h.Version >= 2 {
		h.KeyIndex = d.uvarint("key index", math.MaxUint64)
	}
	w.aad = b[:d.off]
	maxCT := h.BodyLen + aeadOverhead
	w.ct = d.bytes("ciphertext", aeadOverhead, maxCT)
	if d.err == nil && h.Compression == CompressionNone && len(w.ct) != maxCT {
		d.fail("ciphertext is %d bytes, want %d for an uncompressed body", len(w.ct), maxCT)
	}
	h.Index = int(d.uvarint("index", MaxBatch-1))
	h.BatchSize = int(d.uvarint("batch size", MaxBatch))
	if d.err == nil && (h.BatchSize == 0 || h.Index >= h.BatchSize) {
		d.fail("index %d in a batch of %d", h.Index, h.BatchSize)
	}
	if h.Version == 1 {
		h.KeyIndex = uint64(h.Index)
	}
	w.signed = b[:d.off]
	np := int(d.byte("proof length"))
	if d.err == nil && np > maxProof {
		d.fail("proof of %d hashes, limit %d", np, maxProof)
	}
	if d.err == nil {
		w.proof = make([][hashSize]byte, 0, np)
	}
	for i := 0; i < np && d.err == nil; i++ {
		if p := d.take(hashSize, "proof hash"); p != nil {
			w.proof = append(w.proof, [hashSize]byte(p))
		}
	}
	w.sig = d.take(sigSize, "signature")
	w.share(d.off-len(w.sig), d.off)
	if d.err == nil && d.off != len(b) {
		d.fail("%d trailing bytes", len(b)-d.off)
	}
	if d.err != nil {
		return nil, d.err
	}
	return w, nil
}

// SharedRanges returns the byte ranges of an envelope that other envelopes
// are likely to repeat, in order: the label and each alternative label
// (the same for most messages of a channel), the encapsulated key and the
// root signature (the same for every envelope of a batch). A link may send
// them once and then by reference; it verifies nothing.
func SharedRanges(b []byte) ([][2]int, error) {
	w, err := decode(b)
	if err != nil {
		return nil, err
	}
	return w.shared[:w.nshared:w.nshared], nil
}

// DecodeHeader returns an envelope's header without verifying anything: use
// it to route or inspect, never to decide on the message.
func DecodeHeader(b []byte) (*Header, error) {
	w, err := decode(b)
	if err != nil {
		return nil, err
	}
	return &w.h, nil
}
