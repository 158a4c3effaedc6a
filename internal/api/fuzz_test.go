package api

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"liaison/internal/message"
)

func FuzzPostMessage(f *testing.F) {
	f.Add([]byte(`{"id":"` + message.NewID().String() + `","channel":"exercise","precedence":"FLASH","label":"<x/>","body":"hi"}`))
	f.Add([]byte(`{"channel":"c","precedence":"R","label":"x","body_base64":"aGVsbG8="}`))
	f.Add([]byte(`{"id":"","channel":"","precedence":"","label":""}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1/messages", strings.NewReader(string(body)))
		var pm PostMessage
		if err := decodeJSON(req, &pm); err != nil {
			want400(t, "decode", err)
			return
		}
		checkPost(t, "the message", &pm)
	})
}

// FuzzPostBatch: a batch body either fails as a whole with a 400, or every
// message in it either becomes a valid message or is refused with a 400.
func FuzzPostBatch(f *testing.F) {
	f.Add([]byte(`{"messages":[{"channel":"exercise","precedence":"FLASH","label":"<x/>","body":"hi"},{"channel":"c","precedence":"R","label":"x","body_base64":"aGVsbG8="}]}`))
	f.Add([]byte(`{"messages":[]}`))
	f.Add([]byte(`{"messages":[{}],"messages":null}`))
	f.Add([]byte(`{"messages":{"channel":"c"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1/messages/batch", strings.NewReader(string(body)))
		var pb PostBatch
		if err := decodeJSON(req, &pb); err != nil {
			want400(t, "decode", err)
			return
		}
		for i := range pb.Messages {
			checkPost(t, fmt.Sprintf("message %d", i), &pb.Messages[i])
		}
	})
}

// checkPost fails t unless pm becomes a valid message or is refused with
// a 400 API error.
func checkPost(t *testing.T, what string, pm *PostMessage) {
	t.Helper()
	m, err := pm.Message("XAA", &Principal{Name: "fuzz"}, time.Now())
	if err != nil {
		want400(t, what, err)
		return
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("%s: accepted an invalid message: %v", what, err)
	}
}

// want400 fails t unless err is a 400 API error.
func want400(t *testing.T, what string, err error) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 400 {
		t.Fatalf("%s: error %v is not a 400 API error", what, err)
	}
}
