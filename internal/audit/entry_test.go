package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func TestEntryRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
	}{
		{"message", testEntry(7)},
		{"minimal", Entry{Kind: KindLinkUp, At: time.Unix(1, 0).UTC()}},
		{"detail", Entry{Kind: KindConfigChanged, At: time.Unix(1700000000, 5).UTC(), Actor: "officer-1",
			Detail: map[string]string{"z": "1", "a": "2", "file": "node.yaml"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.e.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseEntry(b)
			if err != nil {
				t.Fatalf("ParseEntry: %v", err)
			}
			again, _ := got.MarshalBinary()
			if !bytes.Equal(b, again) || !got.At.Equal(tt.e.At) || got.Kind != tt.e.Kind || len(got.Detail) != len(tt.e.Detail) {
				t.Errorf("round trip changed the entry: %+v -> %+v", tt.e, got)
			}
		})
	}
}

func TestEntryIsDeterministic(t *testing.T) {
	e := Entry{Kind: KindConfigChanged, At: time.Unix(1, 0), Detail: map[string]string{}}
	for i := range 20 {
		e.Detail[string(rune('a'+i))] = "v"
	}
	first, _ := e.MarshalBinary()
	for range 20 {
		b, _ := e.MarshalBinary()
		if !bytes.Equal(b, first) {
			t.Fatal("two encodings of one entry differ")
		}
	}
}

func TestParseEntryRejects(t *testing.T) {
	valid, _ := testEntry(1).MarshalBinary()
	enc := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated", valid[:len(valid)-1]},
		{"trailing bytes", append(append([]byte{}, valid...), 0)},
		{"version 2", enc(map[int]any{0: 2, 1: "accepted", 2: 1})},
		{"unknown field", enc(map[int]any{0: 1, 1: "accepted", 2: 1, 99: "x"})},
		{"no kind", enc(map[int]any{0: 1, 2: 1})},
		{"no time", enc(map[int]any{0: 1, 1: "accepted"})},
		{"negative time", enc(map[int]any{0: 1, 1: "accepted", 2: -1})},
		{"non-canonical integer", []byte{0xa3, 0x00, 0x18, 0x01, 0x01, 0x61, 'x', 0x02, 0x01}},
		{"unsorted keys", []byte{0xa3, 0x01, 0x61, 'x', 0x00, 0x01, 0x02, 0x01}},
		{"indefinite map", []byte{0xbf, 0x00, 0x01, 0x01, 0x61, 'x', 0x02, 0x01, 0xff}},
		{"tag", []byte{0xc1, 0x01}},
		{"too large", bytes.Repeat([]byte{0}, MaxEntrySize+1)},
		{"empty string encoded", enc(map[int]any{0: 1, 1: "accepted", 2: 1, 3: ""})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e, err := ParseEntry(tt.in); !errors.Is(err, ErrMalformedEntry) {
				t.Errorf("ParseEntry(%x) = %+v, %v; want ErrMalformedEntry", tt.in, e, err)
			}
		})
	}
}

func TestEntryValidate(t *testing.T) {
	ok := testEntry(1)
	long := strings.Repeat("x", maxFieldLen+1)
	tests := []struct {
		name string
		mod  func(*Entry)
	}{
		{"no kind", func(e *Entry) { e.Kind = "" }},
		{"zero time", func(e *Entry) { e.At = time.Time{} }},
		{"long field", func(e *Entry) { e.Reason = long }},
		{"bad utf8", func(e *Entry) { e.Actor = "\xff" }},
		{"long detail", func(e *Entry) { e.Detail = map[string]string{"k": long} }},
		{"too many details", func(e *Entry) {
			e.Detail = map[string]string{}
			for i := range maxDetailPairs + 1 {
				e.Detail[strings.Repeat("k", i+1)] = ""
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.mod(&e)
			if _, err := e.MarshalBinary(); err == nil {
				t.Errorf("MarshalBinary accepted %+v", e)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	// Many seeds, so that base64 keys containing '+' are covered.
	for i := range 64 {
		key := testKey(t, byte(i))
		s, err := NoteSigner(testOrigin, key)
		if err != nil {
			t.Fatalf("seed %d: NoteSigner: %v", i, err)
		}
		v, err := NoteVerifier(testOrigin, key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		raw := signCheckpoint(t, s, 5, make([]byte, 32))
		if _, err := ParseCheckpoint(raw, testOrigin, v); err != nil {
			t.Fatalf("seed %d: checkpoint does not verify: %v", i, err)
		}
		ck, err := CosignerKey(key)
		if err != nil || ck.Equal(key) {
			t.Fatalf("seed %d: CosignerKey = %v (same as node key: %v)", i, err, ck.Equal(key))
		}
		cs, err := cosigner("w", ck)
		if err != nil {
			t.Fatal(err)
		}
		vkey, err := CosignerVerifierKey("w", ck.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		cv, err := fnote.NewVerifierForCosignatureV1(vkey)
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Sign(&note.Note{Text: "o\n1\nAAAA\n"}, cs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(n, note.VerifierList(cv)); err != nil {
			t.Fatalf("seed %d: cosignature does not verify: %v", i, err)
		}
	}
}

func FuzzParseEntry(f *testing.F) {
	for i := range 3 {
		b, _ := testEntry(i).MarshalBinary()
		f.Add(b)
	}
	b, _ := Entry{Kind: KindConfigChanged, At: time.Unix(1, 0), Detail: map[string]string{"a": "b"}}.MarshalBinary()
	f.Add(b)
	f.Add([]byte{0xa0})
	f.Add([]byte{0xbf, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := ParseEntry(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedEntry) {
				t.Fatalf("error %v does not wrap ErrMalformedEntry", err)
			}
			return
		}
		out, err := e.MarshalBinary()
		if err != nil || !bytes.Equal(in, out) {
			t.Fatalf("accepted %x but re-encodes to %x, %v", in, out, err)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	key := testKey(f, 1)
	s, err := NoteSigner(testOrigin, key)
	if err != nil {
		f.Fatal(err)
	}
	v, _ := NoteVerifier(testOrigin, key.Public().(ed25519.PublicKey))
	good := signCheckpoint(f, s, 42, bytes.Repeat([]byte{7}, 32))
	f.Add(good)
	f.Add(signCheckpoint(f, s, 0, make([]byte, 32)))
	f.Add(signCheckpoint(f, s, 1, make([]byte, 3)))
	f.Add([]byte(testOrigin + "\n1\nAAAA\n\n\u2014 x AAAA\n"))
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, in []byte) {
		cp, err := ParseCheckpoint(in, testOrigin, v)
		if err != nil {
			return
		}
		if cp.Origin != testOrigin || len(cp.Hash) != 32 {
			t.Fatalf("accepted checkpoint %+v", cp)
		}
		if !bytes.Equal(bodyOf(in), cp.Marshal()) && !bytes.HasPrefix(bodyOf(in), cp.Marshal()) {
			t.Fatalf("body %q does not start with %q", bodyOf(in), cp.Marshal())
		}
	})
}
