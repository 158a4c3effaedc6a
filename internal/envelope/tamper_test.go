package envelope

import (
	"bytes"
	"crypto/hpke"
	"errors"
	"testing"

	"liaison/internal/message"
)

// locate returns the offset of part inside wire, failing if it is not there
// exactly once.
func locate(t *testing.T, wire, part []byte) int {
	t.Helper()
	i := bytes.Index(wire, part)
	if i < 0 || bytes.Index(wire[i+1:], part) >= 0 {
		t.Fatalf("part %q not found exactly once", part)
	}
	return i
}

func TestTamperFailsSignature(t *testing.T) {
	f := newFixture(t, hpke.MLKEM768X25519())
	msgs := []*message.Message{testMessage(0, []byte("first")), testMessage(1, bytes.Repeat([]byte("second "), 40)), testMessage(2, []byte("third"))}
	wires := seal(t, f, 1, msgs...)
	other := seal(t, f, 1, testMessage(3, []byte("other batch")), testMessage(4, []byte("x")), testMessage(5, []byte("y")))
	w, err := decode(wires[1])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(t *testing.T, b []byte) []byte
	}{
		{"channel", func(t *testing.T, b []byte) []byte { b[locate(t, b, []byte("ops"))] = 'x'; return b }},
		{"origin", func(t *testing.T, b []byte) []byte {
			// XAA claims to be its own origin still, but the originator changes.
			b[locate(t, b, []byte("watch-officer"))] = 'W'
			return b
		}},
		{"precedence", func(t *testing.T, b []byte) []byte {
			i := locate(t, b, []byte("watch-officer")) + len("watch-officer")
			b[i] ^= 1
			return b
		}},
		{"label classification", func(t *testing.T, b []byte) []byte {
			i := locate(t, b, []byte("XAA</PolicyIdentifier><Classification>2<")) + len("XAA</PolicyIdentifier><Classification>")
			b[i] = '1'
			return b
		}},
		{"alternative label", func(t *testing.T, b []byte) []byte { b[locate(t, b, []byte(">XBB<"))+1] = 'Y'; return b }},
		{"recipient", func(t *testing.T, b []byte) []byte { b[locate(t, b, []byte("\x03XBB"))+3] = 'C'; return b }},
		{"encapsulated key", func(t *testing.T, b []byte) []byte { b[locate(t, b, w.enc[:32])+5] ^= 1; return b }},
		{"key index", func(t *testing.T, b []byte) []byte { b[locate(t, b, w.enc)+len(w.enc)] = 5; return b }},
		{"ciphertext", func(t *testing.T, b []byte) []byte { b[locate(t, b, w.ct)+3] ^= 1; return b }},
		{"aead tag", func(t *testing.T, b []byte) []byte { b[locate(t, b, w.ct)+len(w.ct)-1] ^= 1; return b }},
		{"index", func(t *testing.T, b []byte) []byte { b[len(w.signed)-2] = 2; return b }},
		{"batch size", func(t *testing.T, b []byte) []byte { b[len(w.signed)-1] = 4; return b }},
		{"proof", func(t *testing.T, b []byte) []byte { b[len(b)-sigSize-1] ^= 1; return b }},
		{"root signature", func(t *testing.T, b []byte) []byte { b[len(b)-1] ^= 1; return b }},
		{"signature from another batch", func(t *testing.T, b []byte) []byte {
			copy(b[len(b)-sigSize:], other[1][len(other[1])-sigSize:])
			return b
		}},
		{"proof from another batch", func(t *testing.T, b []byte) []byte {
			return append(b[:len(w.signed)], other[1][len(other[1])-sigSize-1-2*hashSize:]...)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mod(t, bytes.Clone(wires[1]))
			if bytes.Equal(b, wires[1]) {
				t.Fatal("test did not change the envelope")
			}
			if _, _, err := f.open(b); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Open = %v, want ErrBadSignature", err)
			}
		})
	}
	// The untouched envelope still opens.
	if _, _, err := f.open(wires[1]); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefuses(t *testing.T) {
	f := newFixture(t, hpke.MLKEM768X25519())
	stranger := newFixture(t, hpke.MLKEM768X25519())
	m := testMessage(0, []byte("for XBB"))

	t.Run("unknown origin", func(t *testing.T) {
		wire := seal(t, f, 1, m)[0]
		_, _, err := Open(wire, stranger.verify, f.lookup, "XBB")
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("signed by another key: %v", err)
		}
	})
	t.Run("other party", func(t *testing.T) {
		wire := seal(t, f, 1, m)[0]
		if _, _, err := Open(wire, f.verify, f.lookup, "XCC"); !errors.Is(err, ErrWrongRecipient) {
			t.Errorf("Open as XCC = %v, want ErrWrongRecipient", err)
		}
	})
	t.Run("other key", func(t *testing.T) {
		b, err := NewBatch(f.signer, RecipientKey{Party: "XBB", Epoch: 1, PublicKey: stranger.keys[1].PublicKey()})
		if err != nil {
			t.Fatal(err)
		}
		b.Add(m)
		wires, _ := b.Finish()
		if _, _, err := f.open(wires[0]); !errors.Is(err, ErrWrongRecipient) {
			t.Errorf("Open of envelope sealed to another key = %v, want ErrWrongRecipient", err)
		}
	})
	t.Run("other kem", func(t *testing.T) {
		k, _ := hpke.MLKEM1024P384().GenerateKey()
		b, _ := NewBatch(f.signer, RecipientKey{Party: "XBB", Epoch: 1, PublicKey: k.PublicKey()})
		b.Add(m)
		wires, _ := b.Finish()
		if _, _, err := f.open(wires[0]); !errors.Is(err, ErrWrongRecipient) {
			t.Errorf("Open of envelope for another kem = %v, want ErrWrongRecipient", err)
		}
	})
	t.Run("unknown epoch", func(t *testing.T) {
		b, _ := NewBatch(f.signer, RecipientKey{Party: "XBB", Epoch: 7, PublicKey: f.keys[1].PublicKey()})
		b.Add(m)
		wires, _ := b.Finish()
		if _, _, err := f.open(wires[0]); !errors.Is(err, ErrUnknownEpoch) {
			t.Errorf("Open at epoch 7 = %v, want ErrUnknownEpoch", err)
		}
	})
	t.Run("older epoch still held", func(t *testing.T) {
		wire := seal(t, f, 2, m)[0]
		if _, h, err := f.open(wire); err != nil || h.Epoch != 2 {
			t.Errorf("Open at epoch 2 = %v", err)
		}
	})
}

func TestBatchRefuses(t *testing.T) {
	f := newFixture(t, hpke.MLKEM768X25519())
	b, _ := NewBatch(f.signer, f.recipient(1))
	if _, err := b.Finish(); err == nil {
		t.Error("finished an empty batch")
	}
	b, _ = NewBatch(f.signer, f.recipient(1))
	if err := b.Add(testMessage(0, nil)); err != nil {
		t.Fatal(err)
	}
	m := testMessage(1, nil)
	m.Origin = "XCC"
	if err := b.Add(m); err == nil {
		t.Error("added a message of another origin")
	}
	m = testMessage(1, nil)
	m.Label = nil
	if err := b.Add(m); !errors.Is(err, message.ErrInvalid) {
		t.Errorf("Add of unlabelled message = %v", err)
	}
	if _, err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(testMessage(2, nil)); err == nil {
		t.Error("added to a finished batch")
	}
}

func TestDecodeStrict(t *testing.T) {
	f := newFixture(t, hpke.MLKEM768X25519())
	wire := seal(t, f, 1, testMessage(0, []byte("body")))[0]
	w, _ := decode(wire)
	chanAt := locate(t, wire, []byte("\x03ops"))
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, wire[1:]...)},
		{"version 3", append([]byte{3}, wire[1:]...)},
		{"truncated", wire[:len(wire)-1]},
		{"trailing byte", append(bytes.Clone(wire), 0)},
		{"non-canonical varint", append(append(append([]byte{}, wire[:chanAt]...), 0x83, 0x00), wire[chanAt+1:]...)},
		{"length past end", append(append([]byte{}, wire[:chanAt]...), 0xff, 0xff, 0x03)},
		{"index beyond size", func() []byte {
			b := bytes.Clone(wire)
			b[len(w.signed)-2] = 1
			return b
		}()},
		{"ciphertext too short for body", func() []byte {
			b := bytes.Clone(wire)
			// body length varint sits before the compression byte and enc.
			i := locate(t, b, w.enc[:32]) - 1 - uvarintLen(uint64(len(w.enc))) - 1
			b[i] = 5
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeHeader(tt.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeHeader = %v, want ErrMalformed", err)
			}
			if _, _, err := f.open(tt.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("Open = %v, want ErrMalformed", err)
			}
		})
	}
}

// reencode writes a decoded envelope back to bytes.
func reencode(w *wire) []byte {
	b := appendHeader(nil, &w.h, w.enc)
	b = appendTrailer(b, w.ct, w.h.Index, w.h.BatchSize)
	b = append(b, byte(len(w.proof)))
	for _, p := range w.proof {
		b = append(b, p[:]...)
	}
	return append(b, w.sig...)
}

func seeds(f *testing.F) [][]byte {
	fx := newFixture(f, hpke.MLKEM768X25519())
	var out [][]byte
	out = append(out, seal(f, fx, 1, testMessage(0, nil))...)
	out = append(out, seal(f, fx, 1, testMessage(1, bytes.Repeat([]byte("zstd "), 50)), testMessage(2, []byte("b")), testMessage(3, []byte("c")))...)
	return out
}

func FuzzDecodeHeader(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// Strict: an accepted envelope has exactly one encoding.
		if re := reencode(w); !bytes.Equal(re, b) {
			t.Errorf("accepted envelope re-encodes differently")
		}
		// Shared ranges are in order, inside b, and hold what they name.
		rs, _ := SharedRanges(b)
		at := 0
		for _, r := range rs {
			if r[0] < at || r[1] < r[0] || r[1] > len(b) {
				t.Fatalf("shared ranges %v of %d bytes", rs, len(b))
			}
			at = r[1]
		}
		if len(rs) != 3+len(w.h.Alternatives) || !bytes.Equal(b[rs[0][0]:rs[0][1]], w.h.Label) || !bytes.Equal(b[rs[len(rs)-1][0]:], w.sig) {
			t.Errorf("shared ranges %v do not name the labels and signature", rs)
		}
	})
}

func FuzzOpen(f *testing.F) {
	fx := newFixture(f, hpke.MLKEM768X25519())
	for _, s := range seeds(f) {
		f.Add(s)
	}
	wire := seal(f, fx, 1, testMessage(0, bytes.Repeat([]byte("zstd "), 50)))[0]
	f.Add(wire)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := Open(b, fx.verify, fx.lookup, "XBB")
		if err == nil {
			if err := m.Validate(); err != nil {
				t.Errorf("opened an invalid message: %v", err)
			}
			return
		}
		for _, e := range []error{ErrMalformed, ErrBadSignature, ErrWrongRecipient, ErrUnknownEpoch} {
			if errors.Is(err, e) {
				return
			}
		}
		t.Errorf("Open error %v wraps no sentinel", err)
	})
}

// FuzzRoundTrip seals arbitrary bodies and labels and checks that what
// opens is what was sealed, through both the compressed and plain paths.
func FuzzRoundTrip(f *testing.F) {
	fx := newFixture(f, hpke.MLKEM768X25519())
	f.Add([]byte("hello"), []byte(testLabel), "text/plain")
	f.Add(bytes.Repeat([]byte("ab"), 200), []byte("<l/>"), "application/octet-stream")
	f.Fuzz(func(t *testing.T, body, label []byte, ctype string) {
		m := testMessage(0, body)
		m.Label, m.ContentType = label, ctype
		b, err := NewBatch(fx.signer, fx.recipient(1))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Add(m); err != nil {
			return // invalid message, refused before sealing
		}
		wires, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := fx.open(wires[0])
		if err != nil {
			t.Fatalf("sealed message does not open: %v", err)
		}
		if !bytes.Equal(got.Body, body) || !bytes.Equal(got.Label, label) || got.ContentType != ctype {
			t.Errorf("round trip changed the message")
		}
	})
}

// A signed envelope whose compressed body does not decompress to exactly
// its declared length is refused without allocating more than that length.
func TestDecompressionBounded(t *testing.T) {
	f := newFixture(t, hpke.MLKEM768X25519())
	bomb := zenc.EncodeAll(make([]byte, 8<<20), nil)
	tests := []struct {
		name    string
		bodyLen int
		payload []byte
	}{
		{"bomb", 100, bomb},
		{"garbage", 100, []byte("not a zstd frame")},
		{"short", 100, zenc.EncodeAll(make([]byte, 50), nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMessage(0, nil)
			b, _ := NewBatch(f.signer, f.recipient(1))
			h := Header{
				Version: Version, ID: m.ID, Channel: m.Channel, Origin: m.Origin, Precedence: m.Precedence,
				Created: m.Created, Label: m.Label, Recipient: "XBB", Epoch: 1, KEMID: f.keys[1].KEM().ID(),
				ContentType: m.ContentType, BodyLen: tt.bodyLen, Compression: CompressionZstd,
			}
			if len(tt.payload) > tt.bodyLen {
				h.BodyLen = len(tt.payload) // the decoder bounds ciphertext by body length
			}
			if err := b.add(&h, tt.payload); err != nil {
				t.Fatal(err)
			}
			wires, _ := b.Finish()
			if _, _, err := f.open(wires[0]); !errors.Is(err, ErrMalformed) {
				t.Errorf("Open = %v, want ErrMalformed", err)
			}
		})
	}
}
