package api

import (
	"errors"
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
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Fatalf("decode error %v is not a 400 API error", err)
			}
			return
		}
		m, err := pm.Message("XAA", &Principal{Name: "fuzz"}, time.Now())
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Fatalf("message error %v is not a 400 API error", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted an invalid message: %v", err)
		}
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
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Fatalf("decode error %v is not a 400 API error", err)
			}
			return
		}
		for i := range pb.Messages {
			m, err := pb.Messages[i].Message("XAA", &Principal{Name: "fuzz"}, time.Now())
			if err != nil {
				var ae *Error
				if !errors.As(err, &ae) || ae.Status != 400 {
					t.Fatalf("message %d: error %v is not a 400 API error", i, err)
				}
				continue
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("message %d: accepted an invalid message: %v", i, err)
			}
		}
	})
}
