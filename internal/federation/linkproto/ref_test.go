package linkproto

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"liaison/internal/message"
)

// link carries messages through an Interner, the frame codec and a Table,
// as the two ends of a session do.
type link struct {
	in  Interner
	out Table
}

func (l *link) send(t testing.TB, wire []byte, ranges [][2]int) (frame int) {
	t.Helper()
	id := message.NewID()
	b, err := l.in.AppendDataRef(nil, id, TagOf(wire), message.Routine, wire, ranges)
	if err != nil {
		t.Fatal(err)
	}
	f, err := DecodeFrame(b)
	if err != nil {
		t.Fatalf("decode our own frame: %v", err)
	}
	got, err := l.out.Rebuild(&f.DataRef)
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if !bytes.Equal(got, wire) || f.DataRef.ID != id {
		t.Fatalf("rebuilt %d bytes %q, want %d bytes", len(got), got[:min(len(got), 40)], len(wire))
	}
	return len(b)
}

// envelopeLike is a message whose label and key (ranges 1 and 3) repeat
// across messages, between bytes that do not.
func envelopeLike(label, key []byte, body string) ([]byte, [][2]int) {
	var w []byte
	w = append(w, "hdr"+body[:1]...)
	l0 := len(w)
	w = append(w, label...)
	l1 := len(w)
	w = append(w, "mid"...)
	k0 := len(w)
	w = append(w, key...)
	k1 := len(w)
	w = append(w, body...)
	return w, [][2]int{{l0, l1}, {k0, k1}}
}

func TestDataRefSendsRepeatsByReference(t *testing.T) {
	var l link
	label := bytes.Repeat([]byte("<label/>"), 70) // 560 B
	key := bytes.Repeat([]byte{0xee}, 1120)
	w1, r1 := envelopeLike(label, key, "first body")
	first := l.send(t, w1, r1)
	if first <= len(w1) {
		t.Errorf("first message: %d frame bytes for %d message bytes; defining costs a little more", first, len(w1))
	}
	w2, r2 := envelopeLike(label, key, "second body")
	second := l.send(t, w2, r2)
	if want := len(w2) - len(label) - len(key) + 64; second > want {
		t.Errorf("repeat: %d frame bytes for %d message bytes, want at most %d", second, len(w2), want)
	}
	// A new key (the next sealed batch) is defined once, the label still
	// goes by reference.
	key2 := bytes.Repeat([]byte{0xdd}, 1120)
	w3, r3 := envelopeLike(label, key2, "third")
	if third := l.send(t, w3, r3); third > len(w3)-len(label)+64 {
		t.Errorf("new key, same label: %d frame bytes for %d message bytes", third, len(w3))
	}
}

func TestDataRefLiteralRanges(t *testing.T) {
	var l link
	wire := bytes.Repeat([]byte("0123456789"), 100)
	for _, tc := range []struct {
		name   string
		ranges [][2]int
	}{
		{"none", nil},
		{"too short", [][2]int{{0, MinShared - 1}}},
		{"out of order", [][2]int{{500, 600}, {100, 200}}},
		{"overlapping", [][2]int{{100, 300}, {200, 400}}},
		{"past the end", [][2]int{{900, 1001}}},
		{"negative", [][2]int{{-5, 50}}},
		{"whole", [][2]int{{0, 1000}}},
		{"touching", [][2]int{{0, 100}, {100, 200}, {200, 1000}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l.send(t, wire, tc.ranges)
			l.send(t, wire, tc.ranges)
		})
	}
	many := make([][2]int, 0, 90)
	for i := range 90 {
		many = append(many, [2]int{i * 10, i*10 + 10})
	}
	// 10-byte ranges are below MinShared: all literal, still one part.
	b, _ := l.in.AppendDataRef(nil, message.NewID(), TagOf(wire), message.Flash, wire, many)
	if f, err := DecodeFrame(b); err != nil || len(f.DataRef.Parts) != 1 {
		t.Errorf("short ranges: %v, %d parts, want 1", err, len(f.DataRef.Parts))
	}
}

// TestDataRefTableBounds drives more distinct shared strings than the table
// holds, in slots and in bytes: the ends stay in step, and the receiver's
// table never exceeds its bounds.
func TestDataRefTableBounds(t *testing.T) {
	var l link
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([][]byte, 3*MaxSlots)
	for i := range pool {
		n := MinShared + rng.IntN(MaxSlotBytes-MinShared+1)
		if i%3 == 0 {
			n = MinShared + rng.IntN(64)
		}
		pool[i] = bytes.Repeat([]byte(fmt.Sprintf("%03d", i)), n/3+1)[:n]
	}
	for range 2000 {
		var wire []byte
		var ranges [][2]int
		for range 1 + rng.IntN(4) {
			wire = append(wire, byte(rng.IntN(256)))
			s := pool[rng.IntN(len(pool))]
			if rng.IntN(4) == 0 {
				s = pool[rng.IntN(8)] // some strings are hot
			}
			ranges = append(ranges, [2]int{len(wire), len(wire) + len(s)})
			wire = append(wire, s...)
		}
		l.send(t, wire, ranges)
		if l.out.size > MaxTableBytes || l.out.size != l.in.size {
			t.Fatalf("receiver table %d bytes, sender's %d, limit %d", l.out.size, l.in.size, MaxTableBytes)
		}
	}
}

func TestRebuildRejects(t *testing.T) {
	id := message.NewID()
	whole := []byte("abcdef")
	tests := []struct {
		name string
		d    DataRef
	}{
		{"empty slot", DataRef{Total: 4, Parts: []Part{{Kind: PartRef, Slot: 3}}}},
		{"slot out of range", DataRef{Total: 4, Parts: []Part{{Kind: PartRef, Slot: MaxSlots}}}},
		{"short", DataRef{Total: 7, Tag: TagOf(whole), Parts: []Part{{Kind: PartLiteral, Bytes: whole}}}},
		{"long", DataRef{Total: 5, Tag: TagOf(whole), Parts: []Part{{Kind: PartLiteral, Bytes: whole}}}},
		{"wrong tag", DataRef{Total: 6, Tag: TagOf([]byte("abcdeF")), Parts: []Part{{Kind: PartLiteral, Bytes: whole}}}},
		{"define too big", DataRef{Total: MaxSlotBytes + 1, Parts: []Part{{Kind: PartDefine, Bytes: make([]byte, MaxSlotBytes+1)}}}},
		{"kind", DataRef{Total: 6, Parts: []Part{{Kind: 3, Bytes: whole}}}},
		{"no bytes", DataRef{Total: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tb Table
			tt.d.ID = id
			if _, err := tb.Rebuild(&tt.d); !errors.Is(err, ErrProtocol) {
				t.Errorf("Rebuild = %v, want a protocol error", err)
			}
		})
	}
	// The table's byte bound: MaxTableBytes/MaxSlotBytes slots fill it.
	var tb Table
	full := bytes.Repeat([]byte{1}, MaxSlotBytes)
	for i := range MaxTableBytes / MaxSlotBytes {
		d := DataRef{ID: id, Tag: TagOf(full), Total: MaxSlotBytes, Parts: []Part{{Kind: PartDefine, Slot: i, Bytes: full}}}
		if _, err := tb.Rebuild(&d); err != nil {
			t.Fatalf("slot %d: %v", i, err)
		}
	}
	d := DataRef{ID: id, Tag: TagOf(whole), Total: 6, Parts: []Part{{Kind: PartDefine, Slot: MaxSlots - 1, Bytes: whole}}}
	if _, err := tb.Rebuild(&d); !errors.Is(err, ErrProtocol) {
		t.Errorf("defining past the table's bound = %v, want a protocol error", err)
	}
}

func TestDecodeDataRefRejects(t *testing.T) {
	id := message.NewID()
	frame := func(total uint64, parts ...Part) []byte {
		b, err := AppendFrame(nil, &Frame{Type: FrameDataRef, DataRef: DataRef{ID: id, Total: total, Parts: parts}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	lit := Part{Kind: PartLiteral, Bytes: []byte("abcd")}
	tests := []struct {
		name string
		b    []byte
	}{
		{"no total", frame(0, lit)},
		{"too big", frame(MaxRefMessage+1, lit)},
		{"parts over total", frame(3, lit)},
		{"slot out of range", frame(4, Part{Kind: PartRef, Slot: MaxSlots})},
		{"kind 3", frame(4, Part{Kind: 3, Bytes: []byte("abcd")})},
		{"empty literal", frame(4, Part{Kind: PartLiteral, Bytes: []byte{}})},
		{"define over a slot", frame(MaxSlotBytes+1, Part{Kind: PartDefine, Bytes: make([]byte, MaxSlotBytes+1)})},
		{"truncated", frame(4, lit)[:30]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeFrame(tt.b); !errors.Is(err, ErrProtocol) {
				t.Errorf("DecodeFrame = %v, want a protocol error", err)
			}
		})
	}
	if _, err := AppendFrame(nil, &Frame{Type: FrameDataRef, DataRef: DataRef{ID: id, Total: 4}}); err == nil {
		t.Error("encoded a DATAREF without parts")
	}
}

// FuzzDataRef sends arbitrary messages with arbitrary ranges through the
// two ends of a link: the receiver must rebuild every message exactly, and
// arbitrary frames must never crash a table.
func FuzzDataRef(f *testing.F) {
	f.Add([]byte("hdr<label>shared label bytes that repeat</label>mid-KEY-KEY-KEY-KEY-KEY-KEY-KEY-KEY-body"), []byte{3, 40, 44, 80}, uint8(3))
	f.Add(bytes.Repeat([]byte{7}, 300), []byte{0, 255, 10, 20, 30, 200}, uint8(2))
	f.Fuzz(func(t *testing.T, wire, cuts []byte, rounds uint8) {
		if len(wire) == 0 || len(wire) > 4096 {
			return
		}
		var ranges [][2]int
		for i := 0; i+1 < len(cuts); i += 2 {
			ranges = append(ranges, [2]int{int(cuts[i]) * len(wire) / 256, int(cuts[i+1]) * len(wire) / 256})
		}
		var l link
		for r := range int(rounds%4) + 1 {
			w := append([]byte{byte(r)}, wire...) // differs per round, shares ranges shifted by one
			shifted := make([][2]int, len(ranges))
			for i, x := range ranges {
				shifted[i] = [2]int{x[0] + 1, x[1] + 1}
			}
			l.send(t, w, shifted)
		}
		// The same bytes as a frame of their own, into a used table.
		if fr, err := DecodeFrame(wire); err == nil && fr.Type == FrameDataRef {
			l.out.Rebuild(&fr.DataRef)
		}
	})
}
