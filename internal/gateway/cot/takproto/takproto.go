// Package takproto encodes and decodes TAK Protocol version 1: the protobuf
// TakMessage and its two framings, stream (0xBF, uvarint length, message) and
// mesh (0xBF 0x01 0xBF, message).
//
// The messages are written by hand with protowire from the field tables of
// TAK Server's public protocol description (field numbers only; no GPL file
// was copied). Hand encoding keeps the package cgo-free and free of generated
// code, and lets decoding be strict about sizes. Unknown fields are skipped,
// as proto3 requires, so that a newer peer's additions are harmless.
//
// CotEvent carries access (2), caveat (16) and releaseableTo (17): the
// security markings that ATAK-CIV's older definition lacks. A missing marking
// decodes as the empty string; callers MUST treat that as "unmarked", never as
// "unrestricted".
package takproto

import (
	"errors"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Magic is the byte that starts every TAK Protocol v1 frame.
const Magic = 0xBF

// TakMessage is the top-level v1 payload.
type TakMessage struct {
	Control        *TakControl // 1
	Event          *CotEvent   // 2
	SubmissionTime uint64      // 3, TAK Server only
	CreationTime   uint64      // 4, TAK Server only
}

// TakControl announces the versions a mesh device supports.
type TakControl struct {
	MinProtoVersion uint32 // 1
	MaxProtoVersion uint32 // 2 (0 means 1)
}

// CotEvent is the v1 form of a CoT <event>. Times are milliseconds since the
// Unix epoch.
type CotEvent struct {
	Type          string  // 1
	Access        string  // 2
	Qos           string  // 3
	Opex          string  // 4
	UID           string  // 5
	SendTime      uint64  // 6
	StartTime     uint64  // 7
	StaleTime     uint64  // 8
	How           string  // 9
	Lat           float64 // 10
	Lon           float64 // 11
	Hae           float64 // 12
	Ce            float64 // 13
	Le            float64 // 14
	Detail        *Detail // 15
	Caveat        string  // 16
	ReleaseableTo string  // 17
}

// Detail is the v1 form of <detail>: typed messages for common elements plus
// the rest as XML text without the <detail> wrapper.
type Detail struct {
	XMLDetail         string             // 1
	Contact           *Contact           // 2
	Group             *Group             // 3
	PrecisionLocation *PrecisionLocation // 4
	Status            *Status            // 5
	Takv              *Takv              // 6
	Track             *Track             // 7
}

// Contact is <contact endpoint callsign>.
type Contact struct{ Endpoint, Callsign string }

// Group is <__group name role>.
type Group struct{ Name, Role string }

// PrecisionLocation is <precisionlocation geopointsrc altsrc>.
type PrecisionLocation struct{ Geopointsrc, Altsrc string }

// Status is <status battery>.
type Status struct{ Battery uint32 }

// Takv is <takv device platform os version>.
type Takv struct{ Device, Platform, OS, Version string }

// Track is <track speed course>.
type Track struct{ Speed, Course float64 }

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed tak protocol message")

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendDouble(b []byte, num protowire.Number, v float64) []byte {
	if v == 0 && !math.Signbit(v) {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

func appendMessage(b []byte, num protowire.Number, body []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

// Marshal returns the protobuf encoding of m.
func (m *TakMessage) Marshal() []byte { return m.AppendMarshal(nil) }

// AppendMarshal appends the protobuf encoding of m to b.
func (m *TakMessage) AppendMarshal(b []byte) []byte {
	if c := m.Control; c != nil {
		var cb []byte
		cb = appendUint(cb, 1, uint64(c.MinProtoVersion))
		cb = appendUint(cb, 2, uint64(c.MaxProtoVersion))
		b = appendMessage(b, 1, cb)
	}
	if e := m.Event; e != nil {
		b = appendMessage(b, 2, e.marshal())
	}
	b = appendUint(b, 3, m.SubmissionTime)
	b = appendUint(b, 4, m.CreationTime)
	return b
}

func (e *CotEvent) marshal() []byte {
	var b []byte
	b = appendString(b, 1, e.Type)
	b = appendString(b, 2, e.Access)
	b = appendString(b, 3, e.Qos)
	b = appendString(b, 4, e.Opex)
	b = appendString(b, 5, e.UID)
	b = appendUint(b, 6, e.SendTime)
	b = appendUint(b, 7, e.StartTime)
	b = appendUint(b, 8, e.StaleTime)
	b = appendString(b, 9, e.How)
	b = appendDouble(b, 10, e.Lat)
	b = appendDouble(b, 11, e.Lon)
	b = appendDouble(b, 12, e.Hae)
	b = appendDouble(b, 13, e.Ce)
	b = appendDouble(b, 14, e.Le)
	if d := e.Detail; d != nil {
		b = appendMessage(b, 15, d.marshal())
	}
	b = appendString(b, 16, e.Caveat)
	b = appendString(b, 17, e.ReleaseableTo)
	return b
}

func (d *Detail) marshal() []byte {
	var b []byte
	b = appendString(b, 1, d.XMLDetail)
	if c := d.Contact; c != nil {
		b = appendMessage(b, 2, appendString(appendString(nil, 1, c.Endpoint), 2, c.Callsign))
	}
	if g := d.Group; g != nil {
		b = appendMessage(b, 3, appendString(appendString(nil, 1, g.Name), 2, g.Role))
	}
	if p := d.PrecisionLocation; p != nil {
		b = appendMessage(b, 4, appendString(appendString(nil, 1, p.Geopointsrc), 2, p.Altsrc))
	}
	if s := d.Status; s != nil {
		b = appendMessage(b, 5, appendUint(nil, 1, uint64(s.Battery)))
	}
	if t := d.Takv; t != nil {
		var tb []byte
		tb = appendString(tb, 1, t.Device)
		tb = appendString(tb, 2, t.Platform)
		tb = appendString(tb, 3, t.OS)
		tb = appendString(tb, 4, t.Version)
		b = appendMessage(b, 6, tb)
	}
	if t := d.Track; t != nil {
		b = appendMessage(b, 7, appendDouble(appendDouble(nil, 1, t.Speed), 2, t.Course))
	}
	return b
}
