package takproto

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// DefaultMaxFrame bounds one frame's payload unless a Reader says otherwise.
const DefaultMaxFrame = 1 << 20

// HardMaxFrame is the largest payload any Reader accepts (TAK Server's cap).
const HardMaxFrame = 8 << 20

// ErrFrameTooLarge is returned when a frame announces more than the limit.
var ErrFrameTooLarge = errors.New("tak protocol frame too large")

// AppendStream appends one stream frame (0xBF, uvarint length, payload).
func AppendStream(b, payload []byte) []byte {
	b = append(b, Magic)
	b = protowire.AppendVarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// AppendMesh appends one mesh datagram (0xBF 0x01 0xBF, payload).
func AppendMesh(b, payload []byte) []byte {
	return append(append(b, Magic, 0x01, Magic), payload...)
}

// ParseMesh returns the payload of a mesh datagram.
func ParseMesh(d []byte) ([]byte, error) {
	if len(d) < 3 || d[0] != Magic || d[2] != Magic {
		return nil, fmt.Errorf("%w: not a mesh datagram", ErrMalformed)
	}
	if d[1] != 0x01 {
		return nil, fmt.Errorf("%w: mesh version %d, want 1", ErrMalformed, d[1])
	}
	return d[3:], nil
}

// Reader reads stream frames. Bytes before a 0xBF (goatak's stray 0x00 after
// each frame, or garbage) are skipped and counted: the reader resynchronises
// on the next magic byte.
type Reader struct {
	r   *bufio.Reader
	max int
	buf []byte
	// Skipped counts bytes discarded while looking for a magic byte.
	Skipped int64
}

// NewReader returns a Reader on r whose frames may hold at most max bytes
// (DefaultMaxFrame if max <= 0, never more than HardMaxFrame). If r is
// already a *bufio.Reader it is used directly, so that bytes it buffered
// while the connection spoke XML are not lost.
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	max = min(max, HardMaxFrame)
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Reader{r: br, max: max}
}

// Next returns the next frame's payload, valid until the next call. A frame
// whose announced length exceeds the limit yields ErrFrameTooLarge; the
// stream cannot be trusted after it and the caller should close it.
func (fr *Reader) Next() ([]byte, error) {
	for {
		c, err := fr.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if c == Magic {
			break
		}
		fr.Skipped++
	}
	var n uint64
	for i := 0; ; i++ {
		if i == 10 {
			return nil, fmt.Errorf("%w: length varint longer than 10 bytes", ErrMalformed)
		}
		c, err := fr.r.ReadByte()
		if err != nil {
			return nil, noEOF(err)
		}
		n |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			break
		}
	}
	if n > uint64(fr.max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, fr.max)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	fr.buf = fr.buf[:n]
	if _, err := io.ReadFull(fr.r, fr.buf); err != nil {
		return nil, noEOF(err)
	}
	return fr.buf, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// IsMesh reports whether d starts like a mesh datagram.
func IsMesh(d []byte) bool { return len(d) >= 3 && d[0] == Magic && d[1] == 0x01 && d[2] == Magic }
