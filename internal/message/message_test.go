package message

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func valid() *Message {
	return &Message{ID: NewID(), Channel: "exercise", Origin: "USA", Originator: "officer", Precedence: Priority,
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Label: []byte("<label/>"), ContentType: "text/plain", Body: []byte("hello")}
}

func TestParsePrecedence(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Precedence
		err  bool
	}{
		{"FLASH", Flash, false},
		{"flash", Flash, false},
		{" Immediate ", Immediate, false},
		{"PRIORITY", Priority, false},
		{"routine", Routine, false},
		{"Z", Flash, false},
		{"o", Immediate, false},
		{"P", Priority, false},
		{"R", Routine, false},
		{"", 0, true},
		{"FLASH OVERRIDE", 0, true},
		{"Y", 0, true},
		{"0", 0, true},
	} {
		got, err := ParsePrecedence(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParsePrecedence(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), `"`+tc.in+`"`) {
			t.Errorf("ParsePrecedence(%q) error %q does not quote the input", tc.in, err)
		}
	}
	for _, p := range Precedences {
		back, err := ParsePrecedence(p.String())
		if err != nil || back != p {
			t.Errorf("round trip of %v: %v, %v", p, back, err)
		}
	}
	if Precedence(7).Valid() || Precedence(7).String() != "Precedence(7)" {
		t.Errorf("Precedence(7): valid %v, %q", Precedence(7).Valid(), Precedence(7).String())
	}
	if _, err := Precedence(4).MarshalText(); err == nil {
		t.Error("MarshalText of an invalid precedence succeeded")
	}
	if !(Flash < Immediate && Immediate < Priority && Priority < Routine) {
		t.Error("precedences must sort most urgent first")
	}
}

func TestValidate(t *testing.T) {
	v4 := uuid.New()
	for _, tc := range []struct {
		name   string
		modify func(*Message)
		want   string // substring of the error; "" means valid
	}{
		{"valid", func(*Message) {}, ""},
		{"empty body is fine", func(m *Message) { m.Body = nil }, ""},
		{"no id", func(m *Message) { m.ID = ID{} }, "id is empty"},
		{"uuid v4", func(m *Message) { m.ID = v4 }, "not a UUIDv7"},
		{"no channel", func(m *Message) { m.Channel = "" }, "channel"},
		{"channel with space", func(m *Message) { m.Channel = "ex ercise" }, "channel"},
		{"channel with control", func(m *Message) { m.Channel = "ex\x7f" }, "channel"},
		{"long channel", func(m *Message) { m.Channel = strings.Repeat("c", MaxNameLen+1) }, "channel"},
		{"max channel", func(m *Message) { m.Channel = strings.Repeat("c", MaxNameLen) }, ""},
		{"no origin", func(m *Message) { m.Origin = "" }, "origin"},
		{"long originator", func(m *Message) { m.Originator = strings.Repeat("o", MaxNameLen+1) }, "originator"},
		{"bad precedence", func(m *Message) { m.Precedence = 4 }, "precedence"},
		{"no created", func(m *Message) { m.Created = time.Time{} }, "created"},
		{"no label", func(m *Message) { m.Label = nil }, "label is missing"},
		{"huge label", func(m *Message) { m.Label = make([]byte, MaxLabel+1) }, "label is"},
		{"too many alternatives", func(m *Message) { m.Alternatives = make([][]byte, MaxAlternates+1) }, "alternative labels"},
		{"empty alternative", func(m *Message) { m.Alternatives = [][]byte{[]byte("<a/>"), nil} }, "alternative label 1"},
		{"no content type", func(m *Message) { m.ContentType = "" }, "content type"},
		{"long content type", func(m *Message) { m.ContentType = strings.Repeat("t", MaxContentType+1) }, "content type"},
		{"huge body", func(m *Message) { m.Body = make([]byte, MaxBody+1) }, "body is"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			tc.modify(m)
			err := m.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v, want valid", err)
			case tc.want != "" && err == nil:
				t.Fatalf("Validate passed, want an error about %q", tc.want)
			case tc.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	m := valid()
	m.Alternatives = [][]byte{[]byte("<alt/>")}
	m.TraceID = "trace-1"
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"precedence":"PRIORITY"`)) {
		t.Errorf("precedence is not written by name: %s", b)
	}
	var back Message
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != m.ID || back.Precedence != m.Precedence || !back.Created.Equal(m.Created) || string(back.Label) != string(m.Label) ||
		string(back.Body) != string(m.Body) || len(back.Alternatives) != 1 || back.TraceID != m.TraceID {
		t.Errorf("round trip changed the message:\n%+v\n%+v", m, back)
	}
	if err := json.Unmarshal([]byte(`{"precedence":"URGENT"}`), &back); err == nil {
		t.Error("unknown precedence name decoded")
	}
}

func TestParseID(t *testing.T) {
	id := NewID()
	if got, err := ParseID(id.String()); err != nil || got != id {
		t.Fatalf("ParseID(%s) = %v, %v", id, got, err)
	}
	if _, err := ParseID("not-an-id"); err == nil || !strings.Contains(err.Error(), `"not-an-id"`) {
		t.Errorf("ParseID of garbage: %v", err)
	}
	a, b := NewID(), NewID()
	if bytes.Compare(a[:], b[:]) >= 0 {
		t.Errorf("ids do not sort by creation: %s then %s", a, b)
	}
}

// FuzzMessageJSON decodes arbitrary JSON as a message and validates it:
// neither may panic, and a message that validates survives a JSON round
// trip unchanged and still validates.
func FuzzMessageJSON(f *testing.F) {
	b, _ := json.Marshal(valid())
	f.Add(b)
	f.Add([]byte(`{"id":"018f3b9e-0000-7000-8000-000000000000","channel":"c","origin":"USA","precedence":"Z","created":"2026-01-01T00:00:00Z","label":"PGxhYmVsLz4=","content_type":"text/plain","body":""}`))
	f.Add([]byte(`{"precedence":9}`))
	f.Add([]byte(`{"alternatives":[null,""],"label":null}`))
	f.Add([]byte(`{"created":"0000-01-01T00:00:00Z","id":""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Message
		if err := json.Unmarshal(data, &m); err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate error %v does not wrap ErrInvalid", err)
			}
			return
		}
		out, err := json.Marshal(&m)
		if err != nil {
			t.Fatalf("a valid message does not marshal: %v", err)
		}
		var back Message
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("round trip made a valid message invalid: %v", err)
		}
		again, _ := json.Marshal(&back)
		if !bytes.Equal(out, again) {
			t.Fatalf("round trip is not stable:\n%s\n%s", out, again)
		}
	})
}
