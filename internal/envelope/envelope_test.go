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
	b, err := NewBatch(f.signer, f.recipient(epoch))
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
