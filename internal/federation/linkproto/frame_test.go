package linkproto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"liaison/internal/message"
)

func sampleFrames() []Frame {
	id := message.ID{0x01, 0x9a, 7: 0x70, 15: 1}
	return []Frame{
		{Type: FrameHello, Hello: Hello{Party: "XAA", Epoch: 42, Resume: []Resume{{ID: id, Tag: Tag{1, 2}, Offset: 16384}}}},
		{Type: FrameHello, Hello: Hello{Party: "XBB", Epoch: 1}},
		{Type: FrameData, Data: Data{ID: id, Tag: Tag{9}, Precedence: message.Flash, Offset: 0, Total: 5, Chunk: []byte("hello")}},
		{Type: FrameData, Data: Data{ID: id, Precedence: message.Routine, Offset: 3, Total: 5, Chunk: []byte("lo")}},
		{Type: FrameAck, Acks: []AckEntry{{ID: id, Kind: AckCustody}, {ID: id, Kind: AckProgress, Offset: 7}, {ID: id, Kind: AckRewind}}},
		{Type: FrameRefuse, Refuse: Refuse{ID: id, Code: "not-releasable", Reason: "label", Detail: []byte{1, 2}}},
		{Type: FramePing, Nonce: 7},
		{Type: FramePong, Nonce: 1 << 40},
		{Type: FrameClose, Reason: "held: agreement suspended"},
		{Type: FrameClose},
		{Type: FrameControl, Control: Control{Kind: "card", Data: []byte("new card")}},
		{Type: FrameDataRef, DataRef: DataRef{ID: id, Tag: Tag{3}, Precedence: message.Priority, Total: 12, Parts: []Part{
			{Kind: PartLiteral, Bytes: []byte("ab")}, {Kind: PartDefine, Slot: 5, Bytes: []byte("cdef")},
			{Kind: PartRef, Slot: 5}, {Kind: PartLiteral, Bytes: []byte("gh")}}}},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var stream []byte
	for _, f := range sampleFrames() {
		b, err := AppendFrame(nil, &f)
		if err != nil {
			t.Fatalf("encode %s: %v", f.Type, err)
		}
		got, err := DecodeFrame(b)
		if err != nil {
			t.Fatalf("decode %s: %v", f.Type, err)
		}
		if !reflect.DeepEqual(normal(*got), normal(f)) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", f.Type, *got, f)
		}
		stream = append(stream, b...)
	}
	r := bufio.NewReader(bytes.NewReader(stream))
	var f Frame
	var buf []byte
	var err error
	for i, want := range sampleFrames() {
		if buf, err = ReadFrame(r, &f, buf); err != nil {
			t.Fatalf("stream frame %d: %v", i, err)
		}
		if !reflect.DeepEqual(normal(f), normal(want)) {
			t.Errorf("stream frame %d: got %+v want %+v", i, f, want)
		}
	}
	if _, err := ReadFrame(r, &f, buf); err != io.EOF {
		t.Errorf("after last frame: %v, want EOF", err)
	}
}

// normal makes empty and nil slices compare equal.
func normal(f Frame) Frame {
	if len(f.Control.Data) == 0 {
		f.Control.Data = nil
	}
	if len(f.Refuse.Detail) == 0 {
		f.Refuse.Detail = nil
	}
	return f
}

func TestDecodeRejects(t *testing.T) {
	id := message.NewID()
	good, _ := AppendFrame(nil, &Frame{Type: FrameData, Data: Data{ID: id, Total: 4, Chunk: []byte("abcd")}})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 2", append([]byte{2<<4 | 2}, good[1:]...)},
		{"unknown type", []byte{Version<<4 | 15, 0}},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(append([]byte{}, good...), 0)},
		{"huge length", []byte{Version<<4 | 5, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"hello without party", mustFrame(t, Version<<4|1, []byte{0, 0, 0})},
		{"data past total", mustFrame(t, Version<<4|2, append(append(make([]byte, 25), 2, 3), 'a', 'b'))},
		{"data zero total", mustFrame(t, Version<<4|2, append(make([]byte, 25), 0, 0, 'a'))},
		{"data bad precedence", mustFrame(t, Version<<4|2, append(append(make([]byte, 24), 9), 0, 1, 'a'))},
		{"empty fragment", mustFrame(t, Version<<4|2, append(make([]byte, 25), 0, 1))},
		{"ack empty", mustFrame(t, Version<<4|3, []byte{0})},
		{"ack kind", mustFrame(t, Version<<4|3, append(append([]byte{1}, make([]byte, 16)...), 7))},
		{"refuse no code", mustFrame(t, Version<<4|4, append(make([]byte, 16), 0, 0, 0))},
		{"control no kind", mustFrame(t, Version<<4|8, []byte{0, 'x'})},
		{"reason too long", mustFrame(t, Version<<4|7, append([]byte{0xff, 0x7f}, make([]byte, 0x3fff)...))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodeFrame(tc.b)
			if err == nil {
				t.Fatalf("decoded %+v, want an error", f)
			}
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("error %v does not wrap ErrProtocol", err)
			}
		})
	}
}

func mustFrame(t *testing.T, h byte, p []byte) []byte {
	b := []byte{h}
	b = appendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func TestEncodeBounds(t *testing.T) {
	if _, err := AppendFrame(nil, &Frame{Type: FrameAck}); err == nil {
		t.Error("encoded an empty ACK")
	}
	if _, err := AppendFrame(nil, &Frame{Type: FrameHello, Hello: Hello{Party: "X", Resume: make([]Resume, MaxResume+1)}}); err == nil {
		t.Error("encoded a HELLO over the resume limit")
	}
	if _, err := AppendFrame(nil, &Frame{Type: FrameControl, Control: Control{Kind: "k", Data: make([]byte, MaxFramePayload)}}); err == nil {
		t.Error("encoded a frame over the payload limit")
	}
}

// FuzzDecodeFrame checks that the decoder never panics, that what it
// accepts re-encodes to the same bytes, and that the streaming reader
// agrees with it when fed in two halves.
func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range sampleFrames() {
		b, _ := AppendFrame(nil, &fr)
		f.Add(b)
	}
	f.Add([]byte{Version<<4 | 3, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			return
		}
		again, err := AppendFrame(nil, fr)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", fr, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
		half := len(b) / 2
		r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(b[:half]), bytes.NewReader(b[half:])), 16)
		var g Frame
		if _, err := ReadFrame(r, &g, nil); err != nil {
			t.Fatalf("stream reader rejects what DecodeFrame accepts: %v", err)
		}
	})
}

func TestDataHeaderMatchesEncoder(t *testing.T) {
	for _, f := range sampleFrames() {
		if f.Type != FrameData {
			continue
		}
		d := f.Data
		want, _ := AppendFrame(nil, &f)
		got := append(AppendDataHeader(nil, d.ID, d.Tag, d.Precedence, d.Offset, d.Total, len(d.Chunk)), d.Chunk...)
		if !bytes.Equal(got, want) {
			t.Errorf("header+chunk %x, AppendFrame %x", got, want)
		}
	}
}

func BenchmarkReadFrame(b *testing.B) {
	var stream []byte
	for _, f := range sampleFrames() {
		enc, _ := AppendFrame(nil, &f)
		stream = append(stream, enc...)
	}
	n := len(sampleFrames())
	r := bytes.NewReader(stream)
	br := bufio.NewReader(r)
	var f Frame
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		r.Reset(stream)
		br.Reset(r)
		for range n {
			buf, _ = ReadFrame(br, &f, buf)
		}
	}
}
