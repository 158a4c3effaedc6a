package api

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"liaison/internal/message"
)

// responseValues are answers of the kinds the API gives, with the cases
// where JSON encoders differ: nil and empty slices, omitempty and
// omitzero members, nested maps (key order), HTML-special characters,
// byte slices, text marshalers and times.
func responseValues() []any {
	at := time.Date(2026, 11, 29, 21, 30, 0, 123456789, time.UTC)
	id := message.NewID()
	return []any{
		&Receipt{ID: id, Seq: 7, Recipients: []Recipient{{Party: "XBB", State: "queued", Code: "released", At: at}, {Party: "XCC", State: "denied", Reason: "not releasable <XCC> & co"}}},
		&Receipt{ID: id, Duplicate: true}, // nil recipients
		&Entry{Seq: 1, Message: &message.Message{ID: id, Channel: "chat", Origin: "XAA", Precedence: message.Flash, Created: at,
			Label: []byte("<label/>"), Alternatives: [][]byte{[]byte("a"), {}}, ContentType: "text/plain", Body: []byte{0, 1, 0xff}}, Marking: "SECRET // XAA"},
		&NodeStatus{Party: "XAA", Time: at, Agreements: []Agreement{}, Queues: map[string]map[string]int{"XCC": {"ROUTINE": 2, "FLASH": 1}, "XBB": {}}},
		map[string]ErrorBody{"error": {Code: "bad_request", Message: `unknown member "x" at <root>`}},
		&Held{ID: id, Since: at, Approvals: nil},
		[]AuditEntry{{Index: 3, Kind: "release", At: at, Pos: 2}},
		&AuditDiff{Peer: "XBB", Mismatched: []AuditMismatch{{}}},
	}
}

// writeJSON answers exactly as encoding/json's MarshalIndent would, so
// that clients see the same bytes as before it used the v2 encoder.
func TestWriteJSONMatchesEncodingJSON(t *testing.T) {
	for _, v := range responseValues() {
		want, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		writeJSON(w, 201, v)
		if got := w.Body.String(); got != string(want)+"\n" {
			t.Errorf("writeJSON(%T):\n%s\nencoding/json:\n%s", v, got, want)
		}
		if w.Code != 201 || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("writeJSON(%T): status %d, content type %q", v, w.Code, w.Header().Get("Content-Type"))
		}
	}
}

// BenchmarkWriteJSON answers with a receipt, the answer to every message
// post; the encodingjson case is the baseline: the same answer encoded
// with encoding/json's MarshalIndent, as writeJSON did before.
func BenchmarkWriteJSON(b *testing.B) {
	rc := responseValues()[0]
	b.Run("api", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			writeJSON(httptest.NewRecorder(), 201, rc)
		}
	})
	b.Run("encodingjson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			body, _ := json.MarshalIndent(rc, "", "  ")
			body = append(body, '\n')
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(201)
			w.Write(body)
		}
	})
}
