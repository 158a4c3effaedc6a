package cot

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseEvent(t *testing.T) {
	e, err := ParseEvent([]byte(ev2))
	if err != nil {
		t.Fatal(err)
	}
	if e.UID != "b" || e.Type != "a-h-G" || e.Point.Ce != 9999999 || e.Time.Nanosecond() != 123456789 {
		t.Errorf("parsed %+v", e)
	}
	e, err = ParseEvent([]byte(position("x", `access='Unclassified' caveat='FOUO' releaseableTo='XAA XBB'`)))
	if err != nil {
		t.Fatal(err)
	}
	if e.Access != "Unclassified" || e.Caveat != "FOUO" || e.ReleasableTo != "XAA XBB" || e.Callsign != "ALPHA-7" || e.Endpoint != "*:-1:stcp" {
		t.Errorf("parsed %+v", e)
	}
	if !strings.HasPrefix(string(e.Detail), "<contact callsign='ALPHA-7'") || !strings.HasSuffix(string(e.Detail), "</x:odd>") {
		t.Errorf("detail %q", e.Detail)
	}
}

func TestParseEventRefuses(t *testing.T) {
	base := `<event version="2.0" uid="u" type="a-f-G" how="m-g" time="2026-03-01T10:00:00Z" start="2026-03-01T10:00:00Z" stale="2026-03-01T10:02:00Z"><point lat="1" lon="2" hae="3" ce="4" le="5"/>%s</event>`
	tests := map[string]string{
		"dtd":          `<!DOCTYPE event [<!ENTITY x "y">]>` + strings.Replace(base, "%s", "", 1),
		"entity":       strings.Replace(base, "%s", "<detail>&x;</detail>", 1),
		"no point":     `<event version="2.0" uid="u" type="a" how="m-g" time="2026-03-01T10:00:00Z" start="2026-03-01T10:00:00Z" stale="2026-03-01T10:02:00Z"></event>`,
		"no uid":       `<event type="a" time="2026-03-01T10:00:00Z" start="2026-03-01T10:00:00Z" stale="2026-03-01T10:02:00Z"><point lat="1" lon="2" hae="3" ce="4" le="5"/></event>`,
		"bad time":     strings.Replace(strings.Replace(base, "%s", "", 1), `time="2026-03-01T10:00:00Z"`, `time="yesterday"`, 1),
		"bad number":   strings.Replace(strings.Replace(base, "%s", "", 1), `lat="1"`, `lat="north"`, 1),
		"mismatched":   strings.Replace(base, "%s", "<detail><a></b></detail>", 1),
		"unclosed":     strings.Replace(strings.Replace(base, "%s", "<detail>", 1), "</event>", "", 1),
		"two events":   strings.Replace(base, "%s", "", 1) + strings.Replace(base, "%s", "", 1),
		"other root":   `<auth/>`,
		"spellings":    strings.Replace(strings.Replace(base, "%s", "", 1), `uid="u"`, `uid="u" releasableTo="A" releaseableTo="B"`, 1),
		"pi in event":  strings.Replace(base, "%s", "<?php x?>", 1),
		"text outside": strings.Replace(base, "%s", "", 1) + "tail",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseEvent([]byte(in)); !errors.Is(err, ErrBadEvent) {
				t.Errorf("err = %v, want ErrBadEvent", err)
			}
		})
	}
}

func TestWithMarkings(t *testing.T) {
	in := position("x", `access='Unclassified' releaseableTo='XAA' opex="e-x"`)
	in = in[strings.Index(in, "<event"):]
	e, err := ParseEvent([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out := e.WithMarkings("Restricted", "", "XAA XBB")
	o, err := ParseEvent(out)
	if err != nil {
		t.Fatal(err)
	}
	if o.Access != "Restricted" || o.Caveat != "" || o.ReleasableTo != "XAA XBB" || o.Opex != "e-x" || o.UID != "x" {
		t.Errorf("got %s", out)
	}
	if strings.Contains(string(out), "releaseableTo") || string(o.Detail) != string(e.Detail) {
		t.Errorf("got %s", out)
	}
	if !strings.HasSuffix(string(out), in[e.bodyAt:]) {
		t.Errorf("body after start tag changed")
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(ev1))
	f.Add([]byte(ev2))
	f.Add([]byte(position("x", `access='Unclassified' caveat='FOUO' releasableTo='XAA'`)))
	f.Add([]byte(`<!DOCTYPE x><event/>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := ParseEvent(in)
		if err != nil {
			return
		}
		// Rewriting markings keeps an event that parses to the same thing.
		o, err := ParseEvent(e.WithMarkings(e.Access, e.Caveat, e.ReleasableTo))
		if err != nil {
			t.Fatalf("rewritten event does not parse: %v", err)
		}
		if o.UID != e.UID || o.ReleasableTo != e.ReleasableTo || o.Access != e.Access || string(o.Detail) != string(e.Detail) {
			t.Fatalf("rewrite changed the event: %+v vs %+v", o, e)
		}
		// And so does a trip through protocol 1.
		x, err := FromProto(e.ToProto().Event)
		if err != nil {
			t.Fatal(err)
		}
		for _, tm := range []time.Time{e.Time, e.Start, e.Stale} {
			if tm.Year() < 1970 || tm.Year() > 9999 {
				return // outside what uint64 milliseconds and xs:dateTime share
			}
		}
		r, err := ParseEvent(x)
		if err != nil {
			t.Fatalf("v1 round trip: %v\n%s", err, x)
		}
		if r.UID != e.UID || r.Type != e.Type || r.ReleasableTo != e.ReleasableTo || r.Caveat != e.Caveat {
			t.Fatalf("v1 round trip changed the event: %+v vs %+v", r, e)
		}
	})
}
