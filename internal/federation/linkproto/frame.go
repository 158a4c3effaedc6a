// Package linkproto is the frame format of the link between two Liaison
// nodes (docs/WIRE.md, "Link framing"): encoding and a strict, bounded decoder. It knows
// nothing of sessions, queues or TLS; package federation runs the protocol.
package linkproto

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"liaison/internal/message"
)

// Version is the link protocol version carried in the high nibble of every
// frame's first byte. A peer speaking another version is refused at the
// first frame.
const Version = 1

// FrameType is the low nibble of a frame's first byte.
type FrameType uint8

// Frame types. See docs/WIRE.md, "Link framing" for the layout of each.
const (
	FrameHello   FrameType = 1
	FrameData    FrameType = 2
	FrameAck     FrameType = 3
	FrameRefuse  FrameType = 4
	FramePing    FrameType = 5
	FramePong    FrameType = 6
	FrameClose   FrameType = 7
	FrameControl FrameType = 8
	FrameDataRef FrameType = 9
)

var frameNames = map[FrameType]string{
	FrameHello: "HELLO", FrameData: "DATA", FrameAck: "ACK", FrameRefuse: "REFUSE",
	FramePing: "PING", FramePong: "PONG", FrameClose: "CLOSE", FrameControl: "CONTROL",
	FrameDataRef: "DATAREF",
}

func (t FrameType) String() string {
	if n, ok := frameNames[t]; ok {
		return n
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// Bounds enforced by the decoder. A frame that exceeds one is a protocol
// error and ends the link.
const (
	MaxFramePayload = 1 << 20              // bytes of one frame's payload
	MaxFragment     = MaxFramePayload - 64 // bytes of message data in one DATA frame
	MaxMessage      = message.MaxBody + 4<<20
	MaxPartyLen     = message.MaxNameLen
	MaxCodeLen      = 64
	MaxReasonLen    = 1024
	MaxKindLen      = 64
	MaxDetailLen    = 16 << 10
	MaxResume       = 256  // resume entries in one HELLO
	MaxAckEntries   = 4096 // entries in one ACK
)

// ErrProtocol is wrapped by every decoding error: the peer sent something
// that is not a valid frame, and the link is closed.
var ErrProtocol = errors.New("link protocol error")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// Resume is a receiver's report that it holds the first Offset bytes of a
// message that has not completed.
type Resume struct {
	ID     message.ID
	Tag    Tag // of the wire bytes the partial came from
	Offset uint64
}

// Tag identifies one version of a message's wire bytes (the first 8 bytes
// of their SHA-256), so that a transfer resumes only onto the same bytes
// even if the sender re-sealed the message in between.
type Tag [8]byte

// Hello opens a link in both directions; neither side waits for the other's
// before sending its own (zero extra round trips).
type Hello struct {
	Party  string   // the sender's party; must match its certificate
	Epoch  uint64   // random per process start, so a peer can tell a restart
	Resume []Resume // partial messages the sender of the HELLO holds from its peer
}

// Data carries one fragment of a message's wire bytes.
type Data struct {
	ID         message.ID
	Tag        Tag
	Precedence message.Precedence
	Offset     uint64 // of Chunk within the message
	Total      uint64 // bytes of the whole message
	Chunk      []byte // aliases the read buffer; copy to keep
}

// AckKind says what an ACK entry acknowledges.
type AckKind uint8

const (
	// AckCustody: the receiver durably accepted the message (or already had
	// it); the sender may delete it from its queue.
	AckCustody AckKind = 0
	// AckProgress: the receiver holds the first Offset bytes; used for
	// flow control.
	AckProgress AckKind = 1
	// AckRewind: the receiver holds only the first Offset bytes (it lost
	// or could not use the rest); the sender resends from Offset.
	AckRewind AckKind = 2
)

// AckEntry is one acknowledgement in an ACK frame.
type AckEntry struct {
	ID     message.ID
	Kind   AckKind
	Offset uint64 // AckProgress and AckRewind only
}

// Refuse is the receiver's reasoned denial of a message: it will never
// accept it, and the sender must not retry.
type Refuse struct {
	ID     message.ID
	Code   string
	Reason string
	Detail []byte // opaque, e.g. a signed denial from the node
}

// Control carries a node-level exchange (card rotation, audit checkpoint
// offers, cosignatures) that the link transports without interpreting.
type Control struct {
	Kind string
	Data []byte
}

// Frame is one decoded frame: Type says which field is set.
type Frame struct {
	Type    FrameType
	Hello   Hello
	Data    Data
	DataRef DataRef
	Acks    []AckEntry
	Refuse  Refuse
	Nonce   uint64 // PING and PONG
	Reason  string // CLOSE
	Control Control
}

// AppendFrame encodes f after b.
func AppendFrame(b []byte, f *Frame) ([]byte, error) {
	var p []byte
	switch f.Type {
	case FrameHello:
		h := &f.Hello
		if len(h.Resume) > MaxResume {
			return nil, fmt.Errorf("hello carries %d resume entries, limit %d", len(h.Resume), MaxResume)
		}
		p = appendString(p, h.Party)
		p = binary.AppendUvarint(p, h.Epoch)
		p = binary.AppendUvarint(p, uint64(len(h.Resume)))
		for _, r := range h.Resume {
			p = append(p, r.ID[:]...)
			p = append(p, r.Tag[:]...)
			p = binary.AppendUvarint(p, r.Offset)
		}
	case FrameData:
		d := &f.Data
		p = append(p, d.ID[:]...)
		p = append(p, d.Tag[:]...)
		p = append(p, byte(d.Precedence))
		p = binary.AppendUvarint(p, d.Offset)
		p = binary.AppendUvarint(p, d.Total)
		p = append(p, d.Chunk...)
	case FrameAck:
		if len(f.Acks) == 0 || len(f.Acks) > MaxAckEntries {
			return nil, fmt.Errorf("ack carries %d entries, want 1-%d", len(f.Acks), MaxAckEntries)
		}
		p = binary.AppendUvarint(p, uint64(len(f.Acks)))
		for _, a := range f.Acks {
			p = append(p, a.ID[:]...)
			p = append(p, byte(a.Kind))
			if a.Kind != AckCustody {
				p = binary.AppendUvarint(p, a.Offset)
			}
		}
	case FrameRefuse:
		r := &f.Refuse
		p = append(p, r.ID[:]...)
		p = appendString(p, r.Code)
		p = appendString(p, r.Reason)
		p = appendString(p, string(r.Detail))
	case FrameDataRef:
		var err error
		if p, err = appendDataRef(p, &f.DataRef); err != nil {
			return nil, err
		}
	case FramePing, FramePong:
		p = binary.AppendUvarint(p, f.Nonce)
	case FrameClose:
		p = appendString(p, f.Reason)
	case FrameControl:
		p = appendString(p, f.Control.Kind)
		p = append(p, f.Control.Data...)
	default:
		return nil, fmt.Errorf("cannot encode frame type %d", f.Type)
	}
	if len(p) > MaxFramePayload {
		return nil, fmt.Errorf("%s frame payload is %d bytes, limit %d", f.Type, len(p), MaxFramePayload)
	}
	b = append(b, Version<<4|byte(f.Type))
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...), nil
}

// MaxDataHeader is the longest DATA frame header AppendDataHeader writes.
const MaxDataHeader = 1 + binary.MaxVarintLen64 + 16 + 8 + 1 + 2*binary.MaxVarintLen64

// AppendDataHeader appends the header of a DATA frame whose chunk of n
// bytes the caller writes right after it, saving a copy of the chunk. The
// bytes are identical to AppendFrame's.
func AppendDataHeader(b []byte, id message.ID, tag Tag, p message.Precedence, offset, total uint64, n int) []byte {
	plen := 16 + 8 + 1 + uvarintLen(offset) + uvarintLen(total) + n
	b = append(b, Version<<4|byte(FrameData))
	b = binary.AppendUvarint(b, uint64(plen))
	b = append(b, id[:]...)
	b = append(b, tag[:]...)
	b = append(b, byte(p))
	b = binary.AppendUvarint(b, offset)
	return binary.AppendUvarint(b, total)
}

// uvarintLen is the length of v's minimal uvarint encoding; the decoder
// rejects longer ones so that every frame has exactly one encoding.
func uvarintLen(v uint64) int { return max(1, (bits.Len64(v)+6)/7) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// ReadFrame reads one frame from r into f, using buf as scratch space for
// the payload (grown as needed, returned for reuse). Byte slices in f alias
// buf.
func ReadFrame(r *bufio.Reader, f *Frame, buf []byte) ([]byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return buf, err
	}
	if h>>4 != Version {
		return buf, protoErr("version %d, want %d", h>>4, Version)
	}
	var lb [binary.MaxVarintLen64]byte
	k := 0
	for ; k < len(lb); k++ {
		if lb[k], err = r.ReadByte(); err != nil {
			return buf, io.ErrUnexpectedEOF
		}
		if lb[k] < 0x80 {
			break
		}
	}
	n, m := binary.Uvarint(lb[:min(k+1, len(lb))])
	if m <= 0 || m != uvarintLen(n) {
		return buf, protoErr("bad frame length")
	}
	if n > MaxFramePayload {
		return buf, protoErr("frame payload %d bytes, limit %d", n, MaxFramePayload)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, decodePayload(FrameType(h&0x0f), buf, f)
}

// DecodeFrame decodes exactly one frame from b. It is the strict, bounded
// decoder the link uses, exposed for tests and tools.
func DecodeFrame(b []byte) (*Frame, error) {
	if len(b) == 0 {
		return nil, protoErr("empty frame")
	}
	if b[0]>>4 != Version {
		return nil, protoErr("version %d, want %d", b[0]>>4, Version)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || k != uvarintLen(n) {
		return nil, protoErr("bad length")
	}
	if n > MaxFramePayload || uint64(len(b)-1-k) != n {
		return nil, protoErr("length %d does not match %d payload bytes", n, len(b)-1-k)
	}
	f := new(Frame)
	if err := decodePayload(FrameType(b[0]&0x0f), b[1+k:], f); err != nil {
		return nil, err
	}
	return f, nil
}

// dec is a bounds-checked cursor over a payload.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(format string, args ...any) {
	if d.err == nil {
		d.err = protoErr(format, args...)
	}
}

func (d *dec) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	if k <= 0 || k != uvarintLen(v) {
		d.fail("bad %s", what)
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *dec) bytes(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.fail("truncated %s", what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) byte(what string) byte {
	if b := d.bytes(1, what); len(b) == 1 {
		return b[0]
	}
	return 0
}

func (d *dec) id(what string) (id message.ID) {
	copy(id[:], d.bytes(16, what))
	return id
}

func (d *dec) str(max int, what string) string {
	n := d.uvarint(what + " length")
	if d.err == nil && n > uint64(max) {
		d.fail("%s is %d bytes, limit %d", what, n, max)
		return ""
	}
	return string(d.bytes(int(n), what))
}

// head reads what DATA and DATAREF begin with: id, tag, precedence.
func (d *dec) head(id *message.ID, tag *Tag, p *message.Precedence) {
	*id = d.id("message id")
	copy(tag[:], d.bytes(8, "tag"))
	*p = message.Precedence(d.byte("precedence"))
	if d.err == nil && !p.Valid() {
		d.fail("precedence %d", *p)
	}
}

func (d *dec) end(t FrameType) {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes in %s", len(d.b), t)
	}
}

func decodePayload(t FrameType, p []byte, f *Frame) error {
	*f = Frame{Type: t}
	d := &dec{b: p}
	switch t {
	case FrameHello:
		f.Hello.Party = d.str(MaxPartyLen, "party")
		f.Hello.Epoch = d.uvarint("epoch")
		n := d.uvarint("resume count")
		if n > MaxResume {
			d.fail("%d resume entries, limit %d", n, MaxResume)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			r := Resume{ID: d.id("resume id")}
			copy(r.Tag[:], d.bytes(8, "resume tag"))
			r.Offset = d.uvarint("resume offset")
			f.Hello.Resume = append(f.Hello.Resume, r)
		}
		if d.err == nil && f.Hello.Party == "" {
			d.fail("hello without party")
		}
	case FrameData:
		x := &f.Data
		d.head(&x.ID, &x.Tag, &x.Precedence)
		x.Offset = d.uvarint("offset")
		x.Total = d.uvarint("total")
		x.Chunk = d.b
		d.b = nil
		switch {
		case d.err != nil:
		case x.Total == 0 || x.Total > MaxMessage:
			d.fail("message total %d bytes, want 1-%d", x.Total, MaxMessage)
		case len(x.Chunk) == 0:
			d.fail("empty fragment")
		case x.Offset >= x.Total || uint64(len(x.Chunk)) > x.Total-x.Offset:
			d.fail("fragment [%d,+%d) outside message of %d bytes", x.Offset, len(x.Chunk), x.Total)
		}
	case FrameAck:
		n := d.uvarint("ack count")
		if d.err == nil && (n == 0 || n > MaxAckEntries) {
			d.fail("%d ack entries, want 1-%d", n, MaxAckEntries)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			a := AckEntry{ID: d.id("ack id")}
			a.Kind = AckKind(d.byte("ack kind"))
			if d.err != nil {
				break
			}
			switch a.Kind {
			case AckCustody:
			case AckProgress, AckRewind:
				a.Offset = d.uvarint("ack offset")
			default:
				d.fail("ack kind %d", a.Kind)
			}
			f.Acks = append(f.Acks, a)
		}
	case FrameRefuse:
		f.Refuse.ID = d.id("message id")
		f.Refuse.Code = d.str(MaxCodeLen, "code")
		f.Refuse.Reason = d.str(MaxReasonLen, "reason")
		if det := d.str(MaxDetailLen, "detail"); det != "" {
			f.Refuse.Detail = []byte(det)
		}
		if d.err == nil && f.Refuse.Code == "" {
			d.fail("refusal without code")
		}
	case FrameDataRef:
		decodeDataRef(d, &f.DataRef)
	case FramePing, FramePong:
		f.Nonce = d.uvarint("nonce")
	case FrameClose:
		f.Reason = d.str(MaxReasonLen, "reason")
	case FrameControl:
		f.Control.Kind = d.str(MaxKindLen, "kind")
		f.Control.Data = d.b
		d.b = nil
		if d.err == nil && f.Control.Kind == "" {
			d.fail("control without kind")
		}
	default:
		return protoErr("unknown frame type %d", t)
	}
	d.end(t)
	return d.err
}

// TagOf returns the Tag of a message's wire bytes.
func TagOf(wire []byte) (t Tag) {
	h := sha256.Sum256(wire)
	copy(t[:], h[:])
	return t
}
