package takproto

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

func sample() *TakMessage {
	return &TakMessage{
		Control: &TakControl{MinProtoVersion: 1, MaxProtoVersion: 1},
		Event: &CotEvent{
			Type: "a-f-G-U-C", Access: "Unclassified", Qos: "1-r-c", Opex: "e-x", UID: "XAA-unit-7",
			SendTime: 1772359200000, StartTime: 1772359200000, StaleTime: 1772359320000, How: "m-g",
			Lat: 52.52, Lon: 13.4, Hae: 35, Ce: 10, Le: 9999999,
			Detail: &Detail{
				XMLDetail:         `<remarks>hi</remarks>`,
				Contact:           &Contact{Endpoint: "*:-1:stcp", Callsign: "ALPHA-7"},
				Group:             &Group{Name: "Cyan", Role: "Team Member"},
				PrecisionLocation: &PrecisionLocation{Geopointsrc: "GPS", Altsrc: "DTED0"},
				Status:            &Status{Battery: 88},
				Takv:              &Takv{Device: "d", Platform: "p", OS: "o", Version: "v"},
				Track:             &Track{Speed: 1.5, Course: 270},
			},
			Caveat: "FOUO", ReleaseableTo: "XAA XBB",
		},
		SubmissionTime: 5, CreationTime: 6,
	}
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	got, err := Unmarshal(m.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("got %+v\nwant %+v", got.Event, m.Event)
	}
}

// Field numbers on the wire: access 2, caveat 16, releaseableTo 17.
func TestMarkingFieldNumbers(t *testing.T) {
	b := (&TakMessage{Event: &CotEvent{Access: "A", Caveat: "C", ReleaseableTo: "R"}}).Marshal()
	want := []byte{0x12, 0x0b, 0x12, 0x01, 'A', 0x82, 0x01, 0x01, 'C', 0x8a, 0x01, 0x01, 'R'}
	if !bytes.Equal(b, want) {
		t.Fatalf("got % x\nwant % x", b, want)
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	for name, in := range map[string][]byte{
		"truncated":   sample().Marshal()[:20],
		"wrong type":  {0x12, 0x02, 0x08, 0x01}, // event.type as varint
		"bad utf8":    {0x12, 0x03, 0x0a, 0x01, 0xff},
		"bad tag":     {0x00},
		"long length": {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		if _, err := Unmarshal(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestReaderResyncs(t *testing.T) {
	p := sample().Marshal()
	var s []byte
	s = append(s, "junk"...)
	s = AppendStream(s, p)
	s = append(s, 0x00) // goatak's stray byte
	s = AppendStream(s, p)
	r := NewReader(iotest.OneByteReader(bytes.NewReader(s)), 0)
	for i := range 2 {
		got, err := r.Next()
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("err = %v, want EOF", err)
	}
	if r.Skipped != 5 {
		t.Errorf("skipped %d, want 5", r.Skipped)
	}
}

func TestReaderLimits(t *testing.T) {
	big := AppendStream(nil, make([]byte, 2000))
	if _, err := NewReader(bytes.NewReader(big), 1000).Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("err = %v, want ErrFrameTooLarge", err)
	}
	long := []byte{Magic, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}
	if _, err := NewReader(bytes.NewReader(long), 0).Next(); !errors.Is(err, ErrMalformed) {
		t.Errorf("err = %v, want ErrMalformed", err)
	}
	if _, err := NewReader(bytes.NewReader(big[:100]), 0).Next(); err != io.ErrUnexpectedEOF {
		t.Errorf("err = %v, want ErrUnexpectedEOF", err)
	}
}

func TestMesh(t *testing.T) {
	p := sample().Marshal()
	d := AppendMesh(nil, p)
	if !IsMesh(d) || !bytes.Equal(d[:3], []byte{0xbf, 0x01, 0xbf}) {
		t.Fatalf("mesh header % x", d[:3])
	}
	got, err := ParseMesh(d)
	if err != nil || !bytes.Equal(got, p) {
		t.Fatal(err)
	}
	if _, err := ParseMesh([]byte{0xbf, 0x02, 0xbf}); err == nil {
		t.Error("version 2 accepted")
	}
}

func FuzzReader(f *testing.F) {
	f.Add(AppendStream([]byte{0}, sample().Marshal()))
	f.Add(AppendMesh(nil, sample().Marshal()))
	f.Add([]byte{Magic, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), 4096)
		for {
			p, err := r.Next()
			if err != nil {
				return
			}
			if len(p) > 4096 {
				t.Fatalf("frame of %d bytes", len(p))
			}
			m, err := Unmarshal(p)
			if err != nil {
				continue
			}
			// What decodes re-encodes to something that decodes the same.
			m2, err := Unmarshal(m.Marshal())
			if err != nil || !bytes.Equal(m.Marshal(), m2.Marshal()) {
				t.Fatalf("re-encode: %v", err)
			}
		}
	})
}
