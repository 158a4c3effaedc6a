package envelope

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"liaison/internal/message"
)

// fixture is a sender XAA and a recipient XBB with one HPKE key per epoch.
type fixture struct {
	signer ed25519.PrivateKey
	keys   map[uint32]hpke.PrivateKey
}

func newFixture(t testing.TB, kem hpke.KEM) *fixture {
	t.Helper()
	_, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{signer: sk, keys: map[uint32]hpke.PrivateKey{}}
	for _, e := range []uint32{1, 2} {
		if f.keys[e], err = kem.GenerateKey(); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) recipient(epoch uint32) RecipientKey {
	return RecipientKey{Party: "XBB", Epoch: epoch, PublicKey: f.keys[epoch].PublicKey()}
}

func (f *fixture) verify(origin string) (ed25519.PublicKey, error) {
	if origin != "XAA" {
		return nil, fmt.Errorf("unknown party %q", origin)
	}
	return f.signer.Public().(ed25519.PublicKey), nil
}

func (f *fixture) lookup(epoch uint32) (hpke.PrivateKey, error) {
	if k, ok := f.keys[epoch]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("no key for epoch %d", epoch)
}

func (f *fixture) open(wire []byte) (*message.Message, *Header, error) {
	return Open(wire, f.verify, f.lookup, "XBB")
}

const testLabel = `<?xml version="1.0"?><originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"><ConfidentialityInformation><PolicyIdentifier URI="urn:2.25.1">XAA</PolicyIdentifier><Classification>2</Classification></ConfidentialityInformation></originatorConfidentialityLabel>`

func testMessage(i int, body []byte) *message.Message {
	return &message.Message{
		ID:           message.NewID(),
		Channel:      "ops",
		Origin:       "XAA",
		Originator:   "watch-officer",
		Precedence:   message.Precedence(i % 4),
		Created:      time.Date(2026, 11, 29, 4, 0, i, 123456789, time.UTC),
		Label:        []byte(testLabel),
		Alternatives: [][]byte{[]byte(strings.Replace(testLabel, "XAA", "XBB", 1))},
		ContentType:  "text/plain",
		Body:         body,
		TraceID:      "trace-1",
	}
}

func seal(t testing.TB, f *fixture, epoch uint32, msgs ...*message.Message) [][]byte {
	t.Helper()
	s, err := NewSealer(f.recipient(epoch))
	if err != nil {
		t.Fatal(err)
	}
	return sealWith(t, f, s, msgs...)
}

// sealWith seals msgs as one batch with s.
func sealWith(t testing.TB, f *fixture, s *Sealer, msgs ...*message.Message) [][]byte {
	t.Helper()
	b, err := s.NewBatch(f.signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := b.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	wires, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return wires
}

func sameMessage(t *testing.T, got, want *message.Message) {
	t.Helper()
	if got.ID != want.ID || got.Channel != want.Channel || got.Origin != want.Origin ||
		got.Originator != want.Originator || got.Precedence != want.Precedence ||
		!got.Created.Equal(want.Created) || !bytes.Equal(got.Label, want.Label) ||
		len(got.Alternatives) != len(want.Alternatives) || got.ContentType != want.ContentType ||
		!bytes.Equal(got.Body, want.Body) || got.TraceID != want.TraceID {
		t.Errorf("opened message differs:\n got %+v\nwant %+v", got, want)
	}
	for i := range want.Alternatives {
		if !bytes.Equal(got.Alternatives[i], want.Alternatives[i]) {
			t.Errorf("alternative %d differs", i)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, kem := range []hpke.KEM{hpke.MLKEM768X25519(), hpke.MLKEM1024P384()} {
		f := newFixture(t, kem)
		tests := []struct {
			name     string
			body     []byte
			compress uint8
		}{
			{"empty", nil, CompressionNone},
			{"short", []byte("hello"), CompressionNone},
			{"compressible", bytes.Repeat([]byte("CONTACT REPORT grid 38SMB "), 100), CompressionZstd},
			{"random", randomBytes(4096), CompressionNone},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("kem=%#04x/%s", kem.ID(), tt.name), func(t *testing.T) {
				m := testMessage(1, tt.body)
				wire := seal(t, f, 1, m)[0]
				got, h, err := f.open(wire)
				if err != nil {
					t.Fatal(err)
				}
				sameMessage(t, got, m)
				if h.Compression != tt.compress || h.Recipient != "XBB" || h.Epoch != 1 || h.KEMID != kem.ID() {
					t.Errorf("header compression %d recipient %q epoch %d kem %#x", h.Compression, h.Recipient, h.Epoch, h.KEMID)
				}
				if tt.compress == CompressionZstd && len(wire) >= len(tt.body) {
					t.Errorf("compressed envelope is %d bytes for a %d-byte body", len(wire), len(tt.body))
				}
			})
		}
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// Every envelope of a batch opens on its own, in any order, for every batch
// size (the tree shape changes with the size).
func TestBatchOpensAlone(t *testing.T) {
	f := newFixture(t, hpke.MLKEM768X25519())
	for _, n := range []int{1, 2, 3, 5, 8, 13, 64} {
		msgs := make([]*message.Message, n)
		for i := range msgs {
			msgs[i] = testMessage(i, []byte(fmt.Sprintf("message %d of %d", i, n)))
		}
		wires := seal(t, f, 1, msgs...)
		for i := n - 1; i >= 0; i-- {
			got, h, err := f.open(wires[i])
			if err != nil {
				t.Fatalf("batch %d message %d: %v", n, i, err)
			}
			if h.Index != i || h.BatchSize != n {
				t.Errorf("batch %d message %d: header says %d of %d", n, i, h.Index, h.BatchSize)
			}
			sameMessage(t, got, msgs[i])
		}
	}
}

func TestOpenerCaches(t *testing.T) {
	f := newFixture(t, hpke.MLKEM768X25519())
	msgs := []*message.Message{testMessage(0, []byte("a")), testMessage(1, []byte("b")), testMessage(2, []byte("c"))}
	wires := seal(t, f, 1, msgs...)
	o := &Opener{Verify: f.verify, Keys: f.lookup, Self: "XBB"}
	for i, w := range wires {
		got, _, err := o.Open(w)
		if err != nil {
			t.Fatal(err)
		}
		sameMessage(t, got, msgs[i])
	}
	if len(o.roots) != 1 || len(o.ctxs) != 1 {
		t.Errorf("cache holds %d roots and %d contexts, want 1 and 1", len(o.roots), len(o.ctxs))
	}
	// A cached root does not let a tampered envelope through.
	bad := bytes.Clone(wires[1])
	bad[len(bad)-sigSize-1] ^= 1 // last proof byte
	if _, _, err := o.Open(bad); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered proof with warm cache: %v", err)
	}
}

func TestSharedRanges(t *testing.T) {
	f := newFixture(t, hpke.MLKEM768X25519())
	msgs := []*message.Message{testMessage(0, []byte("one")), testMessage(1, []byte("two")), testMessage(2, nil)}
	wires := seal(t, f, 1, msgs...)
	var encs, sigs [][]byte
	for i, w := range wires {
		rs, err := SharedRanges(w)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 4 {
			t.Fatalf("envelope %d: %d ranges, want label, alternative, enc and signature", i, len(rs))
		}
		part := func(k int) []byte { return w[rs[k][0]:rs[k][1]] }
		if !bytes.Equal(part(0), msgs[i].Label) || !bytes.Equal(part(1), msgs[i].Alternatives[0]) {
			t.Errorf("envelope %d: ranges 0 and 1 are %q and %q, want its labels", i, part(0), part(1))
		}
		if rs[3][1] != len(w) || rs[3][1]-rs[3][0] != 64 {
			t.Errorf("envelope %d: signature range %v of %d bytes", i, rs[3], len(w))
		}
		for k := 1; k < len(rs); k++ {
			if rs[k][0] < rs[k-1][1] {
				t.Errorf("envelope %d: ranges %v overlap or are out of order", i, rs)
			}
		}
		encs, sigs = append(encs, part(2)), append(sigs, part(3))
	}
	for i := 1; i < len(wires); i++ {
		if !bytes.Equal(encs[i], encs[0]) || !bytes.Equal(sigs[i], sigs[0]) {
			t.Errorf("envelope %d of one batch has another enc or signature", i)
		}
	}
	if len(encs[0]) != 1120 {
		t.Errorf("ML-KEM-768+X25519 enc is %d bytes, want 1120", len(encs[0]))
	}
	if _, err := SharedRanges(wires[0][:len(wires[0])-1]); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated envelope: %v, want ErrMalformed", err)
	}
}

// TestSealerAcrossBatches seals several batches with one Sealer: they share
// the encapsulated key, every message has its own key index, each envelope
// opens alone, and an Opener decapsulates once for all of them.
func TestSealerAcrossBatches(t *testing.T) {
	f := newFixture(t, hpke.MLKEM768X25519())
	s, err := NewSealer(f.recipient(1))
	if err != nil {
		t.Fatal(err)
	}
	var wires [][]byte
	var msgs []*message.Message
	for batch, n := range []int{3, 1, 4} {
		var ms []*message.Message
		for i := range n {
			ms = append(ms, testMessage(i, []byte(fmt.Sprintf("batch %d message %d", batch, i))))
		}
		msgs = append(msgs, ms...)
		wires = append(wires, sealWith(t, f, s, ms...)...)
	}
	if s.Sealed() != 8 {
		t.Errorf("Sealed = %d, want 8", s.Sealed())
	}
	o := &Opener{Verify: f.verify, Keys: f.lookup, Self: "XBB"}
	var enc []byte
	for i := len(wires) - 1; i >= 0; i-- {
		w, err := decode(wires[i])
		if err != nil {
			t.Fatal(err)
		}
		if w.h.Version != 2 || w.h.KeyIndex != uint64(i) {
			t.Errorf("envelope %d: version %d, key index %d; want 2 and %d", i, w.h.Version, w.h.KeyIndex, i)
		}
		if enc != nil && !bytes.Equal(w.enc, enc) {
			t.Errorf("envelope %d has another encapsulated key", i)
		}
		enc = w.enc
		got, _, err := f.open(wires[i]) // alone, no cache
		if err != nil {
			t.Fatalf("envelope %d alone: %v", i, err)
		}
		sameMessage(t, got, msgs[i])
		if got, _, err = o.Open(wires[i]); err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
		sameMessage(t, got, msgs[i])
	}
	if len(o.ctxs) != 1 || len(o.roots) != 3 {
		t.Errorf("opener cached %d contexts and %d roots, want 1 and 3", len(o.ctxs), len(o.roots))
	}
	// Another Sealer, another context: its envelopes do not share the key.
	s2, err := NewSealer(f.recipient(1))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(s2.enc, s.enc) {
		t.Error("two Sealers made the same encapsulated key")
	}
}

// TestOpensVersion1 keeps version 1 envelopes (one context per batch, keys
// by batch index, as earlier releases sealed them) opening.
func TestOpensVersion1(t *testing.T) {
	f := newFixture(t, hpke.MLKEM768X25519())
	s, err := newSealer(f.recipient(1), 1)
	if err != nil {
		t.Fatal(err)
	}
	msgs := []*message.Message{testMessage(0, []byte("one")), testMessage(1, bytes.Repeat([]byte("two "), 40))}
	for i, w := range sealWith(t, f, s, msgs...) {
		if w[0] != 1 {
			t.Fatalf("envelope %d: version byte %d, want 1", i, w[0])
		}
		got, h, err := f.open(w)
		if err != nil {
			t.Fatalf("version 1 envelope %d: %v", i, err)
		}
		if h.KeyIndex != uint64(i) {
			t.Errorf("version 1 envelope %d: key index %d, want its batch index", i, h.KeyIndex)
		}
		sameMessage(t, got, msgs[i])
		// The same bytes claiming version 2 do not open.
		v2 := append([]byte{2}, w[1:]...)
		if _, _, err := f.open(v2); err == nil {
			t.Errorf("version 1 envelope %d opened as version 2", i)
		}
	}
}
