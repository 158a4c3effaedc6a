package linkproto

import (
	"encoding/binary"
	"fmt"

	"liaison/internal/message"
)

// Shared byte strings. The envelopes of one sealed batch share its
// encapsulated key and root signature, and the messages of a channel mostly
// share their labels: about 2 KB of the envelope of a 1 KiB message, which
// on a 64 kbit/s link is most of the airtime. A DATAREF frame carries a
// whole message as parts: literal bytes; bytes that are also kept in a
// numbered slot of the session's table (define); or a slot's bytes
// (reference). Each end keeps one table per session, changed only by the
// frames in the order they cross, and the sender chooses every slot, so the
// two tables are the same. The receiver rebuilds the message's exact bytes
// and checks them against its tag: what the message is does not change,
// only how it travels.

// Bounds of the shared-string table and of DATAREF frames.
const (
	MaxSlots      = 64        // slots in a session's table
	MaxSlotBytes  = 16 << 10  // bytes in one slot
	MaxTableBytes = 256 << 10 // bytes in all slots of a table
	MaxParts      = 64        // parts in one DATAREF frame
	MaxRefMessage = 512 << 10 // bytes of a message sent as DATAREF
	MinShared     = 32        // shorter ranges are not worth a slot
)

// PartKind says how a part of a DATAREF frame gives its bytes.
type PartKind uint8

const (
	PartLiteral PartKind = 0 // the bytes follow
	PartDefine  PartKind = 1 // the bytes follow and go into a slot
	PartRef     PartKind = 2 // the bytes are those of a slot
)

// Part is one part of a DATAREF frame.
type Part struct {
	Kind  PartKind
	Slot  int    // PartDefine and PartRef
	Bytes []byte // PartLiteral and PartDefine; aliases the read buffer
}

// DataRef carries a whole message as parts; Table.Rebuild makes its bytes.
type DataRef struct {
	ID         message.ID
	Tag        Tag
	Precedence message.Precedence
	Total      uint64 // bytes of the whole message
	Parts      []Part
}

func appendDataRef(p []byte, d *DataRef) ([]byte, error) {
	if len(d.Parts) == 0 || len(d.Parts) > MaxParts {
		return nil, fmt.Errorf("dataref carries %d parts, want 1-%d", len(d.Parts), MaxParts)
	}
	p = append(p, d.ID[:]...)
	p = append(p, d.Tag[:]...)
	p = append(p, byte(d.Precedence))
	p = binary.AppendUvarint(p, d.Total)
	p = binary.AppendUvarint(p, uint64(len(d.Parts)))
	for _, x := range d.Parts {
		p = appendPart(p, x.Kind, x.Slot, x.Bytes)
	}
	return p, nil
}

func appendPart(p []byte, k PartKind, slot int, b []byte) []byte {
	p = append(p, byte(k))
	if k != PartLiteral {
		p = binary.AppendUvarint(p, uint64(slot))
	}
	if k != PartRef {
		p = binary.AppendUvarint(p, uint64(len(b)))
		p = append(p, b...)
	}
	return p
}

func decodeDataRef(d *dec, x *DataRef) {
	d.head(&x.ID, &x.Tag, &x.Precedence)
	x.Total = d.uvarint("total")
	if d.err == nil && (x.Total == 0 || x.Total > MaxRefMessage) {
		d.fail("dataref message of %d bytes, want 1-%d", x.Total, MaxRefMessage)
	}
	n := d.uvarint("part count")
	if d.err == nil && (n == 0 || n > MaxParts) {
		d.fail("%d parts, want 1-%d", n, MaxParts)
	}
	var carried uint64 // bytes of literal and define parts, at most Total
	for i := uint64(0); i < n && d.err == nil; i++ {
		pt := Part{Kind: PartKind(d.byte("part kind"))}
		if d.err == nil && pt.Kind > PartRef {
			d.fail("part kind %d", pt.Kind)
		}
		if pt.Kind != PartLiteral {
			slot := d.uvarint("slot")
			if d.err == nil && slot >= MaxSlots {
				d.fail("slot %d, limit %d", slot, MaxSlots)
			}
			pt.Slot = int(slot)
		}
		if pt.Kind != PartRef {
			l := d.uvarint("part length")
			limit := x.Total - carried
			if pt.Kind == PartDefine {
				limit = min(limit, MaxSlotBytes)
			}
			if d.err == nil && (l == 0 || l > limit) {
				d.fail("part of %d bytes, want 1-%d", l, limit)
			}
			pt.Bytes = d.bytes(int(l), "part")
			carried += l
		}
		x.Parts = append(x.Parts, pt)
	}
}

// Table is the receiving end's shared strings for one session.
type Table struct {
	slots [MaxSlots][]byte
	size  int
}

// Rebuild applies d's definitions to the table and returns the message's
// bytes, checked against d's tag. Any error is a protocol error: the peer's
// table and this one no longer agree, and the link must end.
func (t *Table) Rebuild(d *DataRef) ([]byte, error) {
	if d.Total == 0 || d.Total > MaxRefMessage {
		return nil, protoErr("dataref message of %d bytes, want 1-%d", d.Total, MaxRefMessage)
	}
	out := make([]byte, 0, d.Total)
	for _, p := range d.Parts {
		var b []byte
		switch p.Kind {
		case PartLiteral:
			b = p.Bytes
		case PartDefine:
			if p.Slot < 0 || p.Slot >= MaxSlots {
				return nil, protoErr("definition of slot %d, want 0-%d", p.Slot, MaxSlots-1)
			}
			if len(p.Bytes) == 0 || len(p.Bytes) > MaxSlotBytes {
				return nil, protoErr("definition of slot %d is %d bytes, want 1-%d", p.Slot, len(p.Bytes), MaxSlotBytes)
			}
			size := t.size - len(t.slots[p.Slot]) + len(p.Bytes)
			if size > MaxTableBytes {
				return nil, protoErr("shared strings would hold %d bytes, limit %d", size, MaxTableBytes)
			}
			t.slots[p.Slot] = append([]byte(nil), p.Bytes...)
			t.size = size
			b = p.Bytes
		case PartRef:
			if p.Slot < 0 || p.Slot >= MaxSlots {
				return nil, protoErr("reference to slot %d, want 0-%d", p.Slot, MaxSlots-1)
			}
			if t.slots[p.Slot] == nil {
				return nil, protoErr("reference to slot %d, which nothing defined in this session", p.Slot)
			}
			b = t.slots[p.Slot]
		default:
			return nil, protoErr("part kind %d", p.Kind)
		}
		if uint64(len(out)+len(b)) > d.Total {
			return nil, protoErr("dataref parts exceed the message's %d bytes", d.Total)
		}
		out = append(out, b...)
	}
	if uint64(len(out)) != d.Total {
		return nil, protoErr("dataref parts make %d bytes, want %d", len(out), d.Total)
	}
	if TagOf(out) != d.Tag {
		return nil, protoErr("rebuilt message %s does not match its tag", d.ID)
	}
	return out, nil
}

// Interner is the sending end's shared strings for one session: it
// chooses the slots, least recently used first, and mirrors the
// receiver's table and its bounds exactly.
type Interner struct {
	slots [MaxSlots]string
	used  [MaxSlots]uint64
	index map[string]int
	clock uint64
	size  int
	parts []Part
}

// AppendDataRef appends a DATAREF frame that carries wire whole. The
// ranges (of wire, in order, not overlapping) go by reference
// where the peer's table holds their bytes, and are defined where it does
// not; ranges shorter than MinShared or longer than MaxSlotBytes, and
// those that are out of order, go literally with the rest. wire must be at
// most MaxRefMessage bytes.
func (in *Interner) AppendDataRef(b []byte, id message.ID, tag Tag, p message.Precedence, wire []byte, ranges [][2]int) ([]byte, error) {
	if len(wire) == 0 || len(wire) > MaxRefMessage {
		return nil, fmt.Errorf("dataref message of %d bytes, want 1-%d", len(wire), MaxRefMessage)
	}
	if in.index == nil {
		in.index = make(map[string]int, MaxSlots)
	}
	parts := in.parts[:0]
	litFrom := -1 // where the last part starts, if it is a literal
	literal := func(from, to int) {
		if from >= to {
			return
		}
		if n := len(parts); n > 0 && litFrom >= 0 {
			parts[n-1].Bytes = wire[litFrom:to] // contiguous: extend it
			return
		}
		litFrom = from
		parts = append(parts, Part{Kind: PartLiteral, Bytes: wire[from:to]})
	}
	shared := func(pt Part) {
		litFrom = -1
		parts = append(parts, pt)
	}
	at := 0
	for _, r := range ranges {
		from, to := r[0], r[1]
		// Two parts per range and one after the last: keep within MaxParts.
		if from < at || to > len(wire) || to-from < MinShared || to-from > MaxSlotBytes || len(parts)+3 > MaxParts {
			continue
		}
		literal(at, from)
		at = to
		in.clock++
		if k, ok := in.index[string(wire[from:to])]; ok {
			in.used[k] = in.clock
			shared(Part{Kind: PartRef, Slot: k})
			continue
		}
		k := in.victim()
		size := in.size - len(in.slots[k]) + (to - from)
		if size > MaxTableBytes {
			literal(from, to)
			continue
		}
		if in.slots[k] != "" {
			delete(in.index, in.slots[k])
		}
		in.slots[k] = string(wire[from:to])
		in.index[in.slots[k]] = k
		in.used[k] = in.clock
		in.size = size
		shared(Part{Kind: PartDefine, Slot: k, Bytes: wire[from:to]})
	}
	literal(at, len(wire))
	in.parts = parts[:0]
	return AppendFrame(b, &Frame{Type: FrameDataRef, DataRef: DataRef{ID: id, Tag: tag, Precedence: p, Total: uint64(len(wire)), Parts: parts}})
}

// victim is the slot to define next: an empty one, else the least
// recently used.
func (in *Interner) victim() int {
	k := 0
	for i := range in.slots {
		if in.slots[i] == "" {
			return i
		}
		if in.used[i] < in.used[k] {
			k = i
		}
	}
	return k
}
