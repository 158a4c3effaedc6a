package store

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"

	"liaison/internal/message"
)

// Labels at rest. A message's label and each of its alternatives are
// STANAG 4774 XML of about half a KiB, mostly the standard's element
// names and namespace. Stored as they are, a 1 KiB message with a label
// and one alternative made a row of about 2.2 KiB: one row to a 4 KiB
// page, so every accept wrote a page of its own (twelfth session,
// PERFORMANCE.md). Compressed with a dictionary of that vocabulary they
// take about a fifth of the room, and three such rows share a page.
//
// A packed value is packTag, packZstdV1 and a zstd frame made with
// labelDictV1. No value stored as it is starts with packTag: an XML label
// starts with '<' or white space, encodeAlts with a count of at least one,
// and a value that does start with it is always packed. So values written
// before packing existed read as they are, and no migration is needed.
const (
	packTag    = 0x00
	packZstdV1 = 0x01
	// maxUnpacked bounds what a packed value may expand to: far above
	// label.MaxLabelSize and a message's alternatives, far below what a
	// corrupt value could make a reader allocate.
	maxUnpacked = 4 << 20
	// packMemo is how many recent values each direction remembers: the
	// labels of a channel repeat, and a repeated label costs a map lookup
	// instead of a compression. Only values of at most packMemoMax bytes
	// are remembered, so the memo holds at most about 2 MiB whatever the
	// labels that come.
	packMemo    = 256
	packMemoMax = 4 << 10
)

// labelDictV1 is the zstd raw-content dictionary of packZstdV1: the
// vocabulary of STANAG 4774 labels as this project writes them. Values on
// disk depend on every byte of it: never change it (TestLabelDictFrozen);
// a better one would be packZstdV2.
var labelDictV1 = []byte(`<?xml version="1.0" encoding="UTF-8"?>` +
	`<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0" ReviewDateTime="2030-01-01T00:00:00Z">` +
	`<ConfidentialityInformation><PolicyIdentifier URI="urn:oid:2.25."></PolicyIdentifier>` +
	`<Classification>UNCLASSIFIED</Classification><Classification>RESTRICTED</Classification>` +
	`<Classification>CONFIDENTIAL</Classification><Classification>SECRET</Classification>` +
	`<Category TagName="Releasable To" Type="PERMISSIVE" URI="urn:oid:2.25."><GenericValue></GenericValue></Category>` +
	`<Category TagName="" Type="RESTRICTIVE" URI="urn:oid:"><GenericValue></GenericValue></Category>` +
	`<Category TagName="" Type="INFORMATIVE"><GenericValue></GenericValue></Category>` +
	`</ConfidentialityInformation><CreationDateTime>2026-01-01T00:00:00Z</CreationDateTime></originatorConfidentialityLabel>` +
	`<alternativeConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0" ReviewDateTime="2030-01-01T00:00:00Z">` +
	`<ConfidentialityInformation><PolicyIdentifier URI="urn:oid:2.25."></PolicyIdentifier>` +
	`</ConfidentialityInformation><CreationDateTime>2026-01-01T00:00:00Z</CreationDateTime></alternativeConfidentialityLabel>`)

// packer packs and unpacks label values; its methods are safe for
// concurrent use.
type packer struct {
	enc *zstd.Encoder
	dec *zstd.Decoder

	mu       sync.Mutex
	packed   map[string][]byte // raw → packed
	unpacked map[string][]byte // packed → raw
}

var labels = sync.OnceValue(func() *packer {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderDictRaw(packZstdV1, labelDictV1),
		zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true))
	if err != nil {
		panic(fmt.Sprintf("store: label encoder: %v", err)) // only on bad options: a bug here
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderDictRaw(packZstdV1, labelDictV1),
		zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxUnpacked), zstd.WithDecoderMaxWindow(maxUnpacked))
	if err != nil {
		panic(fmt.Sprintf("store: label decoder: %v", err))
	}
	return &packer{enc: enc, dec: dec, packed: map[string][]byte{}, unpacked: map[string][]byte{}}
})

// pack returns raw as it is stored: packed when that is smaller, or when
// raw starts with packTag; nil stays nil, so that no alternatives stay
// NULL. The result may be shared: never modify it.
func (p *packer) pack(raw []byte) []byte {
	if len(raw) == 0 {
		return raw
	}
	p.mu.Lock()
	v, ok := p.packed[string(raw)]
	p.mu.Unlock()
	if ok {
		return v
	}
	v = p.enc.EncodeAll(raw, append(make([]byte, 0, 2+len(raw)/2), packTag, packZstdV1))
	if len(v) >= len(raw) && raw[0] != packTag {
		v = append(v[:0], raw...) // not raw itself: the caller may reuse it
	}
	p.remember(p.packed, raw, v)
	return v
}

// unpack returns the value that stored was packed from, in memory of its
// own.
func (p *packer) unpack(stored []byte) ([]byte, error) {
	if len(stored) == 0 || stored[0] != packTag {
		return stored, nil
	}
	p.mu.Lock()
	v, ok := p.unpacked[string(stored)]
	p.mu.Unlock()
	if !ok {
		if len(stored) < 2 {
			return nil, errors.New("stored label: packed value without its packing byte")
		}
		if stored[1] != packZstdV1 {
			return nil, fmt.Errorf("stored label: unknown packing %#02x (this program reads %#02x)", stored[1], packZstdV1)
		}
		var err error
		if v, err = p.dec.DecodeAll(stored[2:], nil); err != nil {
			return nil, fmt.Errorf("stored label: %w", err)
		}
		p.remember(p.unpacked, stored, v)
	}
	return append([]byte(nil), v...), nil
}

func (p *packer) remember(m map[string][]byte, k, v []byte) {
	if len(k) > packMemoMax || len(v) > packMemoMax {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(m) >= packMemo {
		clear(m)
	}
	m[string(k)] = v
}

// packedMsg is a message's label and alternatives as stored (pack).
type packedMsg struct{ label, alts []byte }

// packMsg packs m's label and alternatives. Accept and AcceptBatch do it
// in their callers' goroutines, so that the store's single writer does
// not compress.
func packMsg(m *message.Message) *packedMsg {
	p := labels()
	return &packedMsg{label: p.pack(nonNil(m.Label)), alts: p.pack(encodeAlts(m.Alternatives))}
}

// unpackMsg sets m's label and alternatives from their stored values.
func unpackMsg(m *message.Message, label, alts []byte) error {
	p := labels()
	var err error
	if m.Label, err = p.unpack(label); err != nil {
		return err
	}
	if alts, err = p.unpack(alts); err != nil {
		return err
	}
	m.Alternatives, err = decodeAlts(alts)
	return err
}
