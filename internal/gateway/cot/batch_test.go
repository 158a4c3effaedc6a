package cot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

const (
	evA = `<event version="2.0" uid="a" type="a-f-G" how="m-g" time="2026-03-01T10:00:00Z" start="2026-03-01T10:00:00Z" stale="2026-03-01T10:02:00Z"><point lat="1" lon="2" hae="0" ce="9" le="9"/><detail><x:odd xmlns:x="urn:x">keep &amp; me</x:odd></detail></event>`
	evB = `<event version='2.0' uid='b' type='a-f-G' how='m-g' time='2026-03-01T10:00:00Z' start='2026-03-01T10:00:00Z' stale='2026-03-01T10:02:00Z'><point lat='1' lon='2' hae='0' ce='9' le='9'/><detail remarks="a > b"/></event>`
)

func TestParseBatch(t *testing.T) {
	got, err := ParseBatch(appendBatch(nil, [][]byte{[]byte(evA), []byte(evB)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0]) != evA || string(got[1]) != evB {
		t.Fatalf("got %q", got)
	}
	for _, b := range got {
		if _, err := ParseEvent(b); err != nil {
			t.Errorf("split event does not parse: %v", err)
		}
	}
	ok := []string{
		"\n<events>\n" + evA + "\n" + evB + "\n</events>\n",
		"<events></events>",
		"<events>" + `<event uid="x"><![CDATA[</event>]]><!-- </event> --><?pi </event>?><a b='>'/></event>` + "</events>",
	}
	for _, in := range ok {
		if _, err := ParseBatch([]byte(in)); err != nil {
			t.Errorf("%.40q: %v", in, err)
		}
	}
	bad := []string{
		``,
		`<events/>`,
		`<events>` + evA + `<!-- c --></events>`,
		`<events><event><!DOCTYPE x></event></events>`,
		`<events><event><!ENTITY x "y"></event></events>`,
		`<events><event><!-- unterminated </event></events>`,
		`<!DOCTYPE events [<!ENTITY x "boom">]><events>` + evA + `</events>`,
		`<events>&x;` + evA + `</events>`,
		`<?xml version="1.0"?><events>` + evA + `</events>`,
		`<events><?php x?>` + evA + `</events>`,
		`<events>text` + evA + `</events>`,
		`<events>` + evA + `</events>trailing`,
		`<events>` + evA + `</events><events/>`,
		`<event>` + evA + `</event>`,
		`<events id="1">` + evA + `</events>`,
		`<events><point/></events>`,
		`<events>` + evA,
		`<events><event></events>`,
		`<events></event>`,
		`<events>` + strings.Repeat("<event>", 70) + `</events>`,
		"<events>" + strings.Repeat(" ", HardMaxEvent) + "</events>",
	}
	for _, in := range bad {
		if _, err := ParseBatch([]byte(in)); !errors.Is(err, ErrBadBatch) {
			t.Errorf("%.60q: err %v, want ErrBadBatch", in, err)
		}
	}
}

func TestBareEvent(t *testing.T) {
	for in, want := range map[string]string{
		evA:          evA,
		"\n  " + evA: evA,
		`<?xml version="1.0" encoding="UTF-8"?>` + evA: evA,
		`<!-- c -->` + evA:          "",
		`<?xml version="1.0"` + evA: "",
		`<eventx/>`:                 "",
	} {
		if got := bareEvent([]byte(in)); string(got) != want {
			t.Errorf("bareEvent(%.40q) = %.40q, want %.40q", in, got, want)
		}
	}
}

// realDepth is encoding/xml's view of b's nesting; ok is false if b is
// not well formed.
func realDepth(b []byte) (depth int, ok bool) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	n := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return depth, n == 0
		}
		if err != nil {
			return 0, false
		}
		switch tok.(type) {
		case xml.StartElement:
			n++
			depth = max(depth, n)
		case xml.EndElement:
			n--
		}
	}
}

func TestXMLDepth(t *testing.T) {
	for in, want := range map[string]int{
		evA:                  3,
		evB:                  2,
		`<a x="/>"><b/></a>`: 2,
		`<a><!-- <b><c><d> --><![CDATA[<e><f>]]></a>`: 1,
		`<a><b><c/></b><b/></a>`:                      3,
		strings.Repeat("<a>", 70):                     70,
		`<a x="`:                                      maxXMLDepth,
	} {
		if got := xmlDepth([]byte(in)); got != want {
			t.Errorf("xmlDepth(%.40q) = %d, want %d", in, got, want)
		}
	}
}

// A batch is never deeper than the guard allows: xmlDepth never
// underestimates a well-formed document.
func FuzzXMLDepth(f *testing.F) {
	f.Add([]byte(evA))
	f.Add([]byte(`<a x="/>" y='>'><b/><!-- <c> --></a>`))
	f.Add([]byte(`<a><![CDATA[<b>]]><c/></a>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		got := xmlDepth(b)
		if want, ok := realDepth(b); ok && got < want {
			t.Fatalf("xmlDepth(%q) = %d, real depth %d", b, got, want)
		}
	})
}

func FuzzParseBatch(f *testing.F) {
	f.Add(appendBatch(nil, [][]byte{[]byte(evA), []byte(evB)}))
	f.Add([]byte(`<events/>`))
	f.Add([]byte(`<!DOCTYPE events [<!ENTITY x "boom">]><events>&x;</events>`))
	f.Add([]byte(`<events><event uid="&lt;"><point/></event></events>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		evs, err := ParseBatch(b)
		if err != nil {
			if !errors.Is(err, ErrBadBatch) {
				t.Fatalf("error %v does not wrap ErrBadBatch", err)
			}
			return
		}
		if bytes.Contains(b, []byte("<!DOCTYPE")) && !bytes.Contains(b, []byte("<!--")) {
			t.Fatalf("entity declaration accepted: %q", b)
		}
		// Re-wrapping the split events gives a batch that splits the same.
		again, err := ParseBatch(appendBatch(nil, evs))
		if err != nil || len(again) != len(evs) {
			t.Fatalf("rewrapped %q: %d events, %v; first split %d", b, len(again), err, len(evs))
		}
		for i := range evs {
			if !bytes.HasPrefix(evs[i], []byte("<event")) || !bytes.Equal(evs[i], again[i]) {
				t.Fatalf("event %d: %q then %q", i, evs[i], again[i])
			}
		}
	})
}

// BenchmarkParseBatch splits a batch of 64 events (per event figures).
func BenchmarkParseBatch(b *testing.B) {
	evs := make([][]byte, 64)
	for i := range evs {
		evs[i] = benchEvent
	}
	body := appendBatch(nil, evs)
	b.ReportAllocs()
	b.SetBytes(int64(len(body) / len(evs)))
	for b.Loop() {
		if got, err := ParseBatch(body); err != nil || len(got) != len(evs) {
			b.Fatal(len(got), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}
