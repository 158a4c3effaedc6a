package api

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// postFixture is a POST /v1/messages body as a client sends it: a 525-byte
// label and a 1 KiB text body.
func postFixture(b testing.TB) []byte {
	lbl := `<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0" ReviewDateTime="2036-11-29T10:28:06Z"><ConfidentialityInformation><PolicyIdentifier URI="urn:oid:2.25.1">XAA-POLICY</PolicyIdentifier><Classification>CONFIDENTIAL</Classification><Category TagName="Releasable To" Type="PERMISSIVE"><GenericValue>XAA</GenericValue><GenericValue>XBB</GenericValue></Category></ConfidentialityInformation><CreationDateTime>2026-11-29T10:28:06Z</CreationDateTime></originatorConfidentialityLabel>`
	body := string(bytes.Repeat([]byte("abcdEFGH0123+/xy"), 64))
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(PostMessage{Channel: "exercise", Precedence: "routine", Label: lbl, ContentType: "text/plain", Body: &body}); err != nil {
		b.Fatal(err)
	}
	return out.Bytes()
}

// BenchmarkDecodePost decodes a message post the way the API does; the
// encodingjson case is the baseline: encoding/json's Decoder with unknown
// fields disallowed, as the API used before.
func BenchmarkDecodePost(b *testing.B) {
	data := postFixture(b)
	b.Run("api", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var pm PostMessage
			if err := decodeJSON(httptest.NewRequest("POST", "/v1/messages", bytes.NewReader(data)), &pm); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encodingjson", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var pm PostMessage
			dec := json.NewDecoder(httptest.NewRequest("POST", "/v1/messages", bytes.NewReader(data)).Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&pm); err != nil {
				b.Fatal(err)
			}
		}
	})
}
