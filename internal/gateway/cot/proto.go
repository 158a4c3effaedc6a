package cot

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"liaison/internal/gateway/cot/takproto"
)

// ToProto converts a parsed event to TAK Protocol v1. The whole <detail>
// goes into xmlDetail, which the protocol lets win over typed fields, so
// nothing in it is re-encoded.
func (e *Event) ToProto() *takproto.TakMessage {
	ce := &takproto.CotEvent{
		Type: e.Type, Access: e.Access, Qos: e.Qos, Opex: e.Opex, UID: e.UID,
		SendTime:  uint64(e.Time.UnixMilli()),
		StartTime: uint64(e.Start.UnixMilli()),
		StaleTime: uint64(e.Stale.UnixMilli()),
		How:       e.How,
		Lat:       e.Point.Lat, Lon: e.Point.Lon, Hae: e.Point.Hae, Ce: e.Point.Ce, Le: e.Point.Le,
		Caveat: e.Caveat, ReleaseableTo: e.ReleasableTo,
	}
	if len(e.Detail) > 0 {
		ce.Detail = &takproto.Detail{XMLDetail: string(e.Detail)}
	}
	return &takproto.TakMessage{Event: ce}
}

// FromProto renders a v1 CotEvent as CoT XML: typed detail messages become
// their elements unless xmlDetail already holds one of the same name.
func FromProto(ce *takproto.CotEvent) ([]byte, error) {
	if ce == nil {
		return nil, fmt.Errorf("%w: v1 message has no cotEvent", ErrBadEvent)
	}
	var b bytes.Buffer
	b.WriteString("<event")
	writeAttr(&b, "version", "2.0")
	writeAttr(&b, "uid", ce.UID)
	writeAttr(&b, "type", ce.Type)
	writeAttr(&b, "how", ce.How)
	writeAttr(&b, "time", FormatTime(time.UnixMilli(int64(ce.SendTime))))
	writeAttr(&b, "start", FormatTime(time.UnixMilli(int64(ce.StartTime))))
	writeAttr(&b, "stale", FormatTime(time.UnixMilli(int64(ce.StaleTime))))
	for _, kv := range [][2]string{{"qos", ce.Qos}, {"opex", ce.Opex}, {"access", ce.Access}, {"caveat", ce.Caveat}, {"releasableTo", ce.ReleaseableTo}} {
		if kv[1] != "" {
			writeAttr(&b, kv[0], kv[1])
		}
	}
	b.WriteString("><point")
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	writeAttr(&b, "lat", f(ce.Lat))
	writeAttr(&b, "lon", f(ce.Lon))
	writeAttr(&b, "hae", f(ce.Hae))
	writeAttr(&b, "ce", f(ce.Ce))
	writeAttr(&b, "le", f(ce.Le))
	b.WriteString("/><detail>")
	if d := ce.Detail; d != nil {
		x := d.XMLDetail
		has := func(name string) bool {
			return bytes.Contains([]byte(x), []byte("<"+name+" ")) || bytes.Contains([]byte(x), []byte("<"+name+"/")) || bytes.Contains([]byte(x), []byte("<"+name+">"))
		}
		el := func(name string, kv ...string) {
			if has(name) {
				return
			}
			b.WriteString("<" + name)
			for i := 0; i+1 < len(kv); i += 2 {
				writeAttr(&b, kv[i], kv[i+1])
			}
			b.WriteString("/>")
		}
		if c := d.Contact; c != nil {
			if c.Endpoint != "" {
				el("contact", "endpoint", c.Endpoint, "callsign", c.Callsign)
			} else {
				el("contact", "callsign", c.Callsign)
			}
		}
		if g := d.Group; g != nil {
			el("__group", "name", g.Name, "role", g.Role)
		}
		if p := d.PrecisionLocation; p != nil {
			el("precisionlocation", "geopointsrc", p.Geopointsrc, "altsrc", p.Altsrc)
		}
		if s := d.Status; s != nil {
			el("status", "battery", strconv.FormatUint(uint64(s.Battery), 10))
		}
		if t := d.Takv; t != nil {
			el("takv", "device", t.Device, "platform", t.Platform, "os", t.OS, "version", t.Version)
		}
		if t := d.Track; t != nil {
			el("track", "speed", f(t.Speed), "course", f(t.Course))
		}
		b.WriteString(x)
	}
	b.WriteString("</detail></event>")
	return b.Bytes(), nil
}
