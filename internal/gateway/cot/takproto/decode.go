package takproto

import (
	"fmt"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// field is one decoded top-level field of a message.
type field struct {
	num   protowire.Number
	typ   protowire.Type
	v     uint64 // varint or fixed value
	bytes []byte // length-delimited value
}

// walk calls fn for each field of b, skipping groups, and fails on any
// truncated or invalid encoding.
func walk(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v32)
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func (f field) str(dst *string) error {
	if f.typ != protowire.BytesType {
		return fmt.Errorf("%w: field %d has wire type %d, want string", ErrMalformed, f.num, f.typ)
	}
	if !utf8.Valid(f.bytes) {
		return fmt.Errorf("%w: field %d is not UTF-8", ErrMalformed, f.num)
	}
	*dst = string(f.bytes)
	return nil
}

func (f field) uint(dst *uint64) error {
	if f.typ != protowire.VarintType {
		return fmt.Errorf("%w: field %d has wire type %d, want varint", ErrMalformed, f.num, f.typ)
	}
	*dst = f.v
	return nil
}

func (f field) uint32(dst *uint32) error {
	var v uint64
	if err := f.uint(&v); err != nil {
		return err
	}
	*dst = uint32(v)
	return nil
}

func (f field) double(dst *float64) error {
	if f.typ != protowire.Fixed64Type {
		return fmt.Errorf("%w: field %d has wire type %d, want double", ErrMalformed, f.num, f.typ)
	}
	*dst = math.Float64frombits(f.v)
	return nil
}

func (f field) msg() ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, fmt.Errorf("%w: field %d has wire type %d, want message", ErrMalformed, f.num, f.typ)
	}
	return f.bytes, nil
}

// Unmarshal decodes a TakMessage.
func Unmarshal(b []byte) (*TakMessage, error) {
	m := &TakMessage{}
	err := walk(b, func(f field) error {
		switch f.num {
		case 1:
			body, err := f.msg()
			if err != nil {
				return err
			}
			c := &TakControl{}
			m.Control = c
			return walk(body, func(f field) error {
				switch f.num {
				case 1:
					return f.uint32(&c.MinProtoVersion)
				case 2:
					return f.uint32(&c.MaxProtoVersion)
				}
				return nil
			})
		case 2:
			body, err := f.msg()
			if err != nil {
				return err
			}
			m.Event, err = unmarshalEvent(body)
			return err
		case 3:
			return f.uint(&m.SubmissionTime)
		case 4:
			return f.uint(&m.CreationTime)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func unmarshalEvent(b []byte) (*CotEvent, error) {
	e := &CotEvent{}
	err := walk(b, func(f field) error {
		switch f.num {
		case 1:
			return f.str(&e.Type)
		case 2:
			return f.str(&e.Access)
		case 3:
			return f.str(&e.Qos)
		case 4:
			return f.str(&e.Opex)
		case 5:
			return f.str(&e.UID)
		case 6:
			return f.uint(&e.SendTime)
		case 7:
			return f.uint(&e.StartTime)
		case 8:
			return f.uint(&e.StaleTime)
		case 9:
			return f.str(&e.How)
		case 10:
			return f.double(&e.Lat)
		case 11:
			return f.double(&e.Lon)
		case 12:
			return f.double(&e.Hae)
		case 13:
			return f.double(&e.Ce)
		case 14:
			return f.double(&e.Le)
		case 15:
			body, err := f.msg()
			if err != nil {
				return err
			}
			e.Detail, err = unmarshalDetail(body)
			return err
		case 16:
			return f.str(&e.Caveat)
		case 17:
			return f.str(&e.ReleaseableTo)
		}
		return nil
	})
	return e, err
}

// pair decodes a message of two string fields 1 and 2.
func pair(b []byte, a, c *string) error {
	return walk(b, func(f field) error {
		switch f.num {
		case 1:
			return f.str(a)
		case 2:
			return f.str(c)
		}
		return nil
	})
}

func unmarshalDetail(b []byte) (*Detail, error) {
	d := &Detail{}
	err := walk(b, func(f field) error {
		if f.num == 1 {
			return f.str(&d.XMLDetail)
		}
		if f.num < 2 || f.num > 7 {
			return nil
		}
		body, err := f.msg()
		if err != nil {
			return err
		}
		switch f.num {
		case 2:
			d.Contact = &Contact{}
			return pair(body, &d.Contact.Endpoint, &d.Contact.Callsign)
		case 3:
			d.Group = &Group{}
			return pair(body, &d.Group.Name, &d.Group.Role)
		case 4:
			d.PrecisionLocation = &PrecisionLocation{}
			return pair(body, &d.PrecisionLocation.Geopointsrc, &d.PrecisionLocation.Altsrc)
		case 5:
			d.Status = &Status{}
			return walk(body, func(f field) error {
				if f.num == 1 {
					return f.uint32(&d.Status.Battery)
				}
				return nil
			})
		case 6:
			t := &Takv{}
			d.Takv = t
			return walk(body, func(f field) error {
				switch f.num {
				case 1:
					return f.str(&t.Device)
				case 2:
					return f.str(&t.Platform)
				case 3:
					return f.str(&t.OS)
				case 4:
					return f.str(&t.Version)
				}
				return nil
			})
		case 7:
			t := &Track{}
			d.Track = t
			return walk(body, func(f field) error {
				switch f.num {
				case 1:
					return f.double(&t.Speed)
				case 2:
					return f.double(&t.Course)
				}
				return nil
			})
		}
		return nil
	})
	return d, err
}
