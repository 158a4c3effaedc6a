package node

import (
	"encoding/json"
	"testing"
	"time"

	"liaison/internal/audit"
)

func TestDecodeRecord(t *testing.T) {
	good, err := json.Marshal(audit.Record{Index: 3, Entry: audit.Entry{Kind: audit.KindReceived, At: time.Unix(1700000000, 0).UTC(),
		MessageID: "m1", Digest: "sha256:00", Party: "PAK", Peer: "USA", Decision: audit.DecisionAccepted}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := decodeRecord(good); err != nil || r.Index != 3 || r.Entry.MessageID != "m1" {
		t.Fatalf("decodeRecord(good) = %+v, %v", r, err)
	}
	for name, raw := range map[string]string{
		"empty":    ``,
		"unknown":  `{"index":1,"entry":{"kind":"received","at":"2023-11-14T22:13:20Z"},"extra":1}`,
		"no kind":  `{"index":1,"entry":{"at":"2023-11-14T22:13:20Z"}}`,
		"trailing": string(good) + `{}`,
		"not json": `index=1`,
	} {
		if _, err := decodeRecord([]byte(raw)); err == nil {
			t.Errorf("%s: decodeRecord(%q) accepted", name, raw)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"index":1,"entry":{"kind":"received","at":"2023-11-14T22:13:20Z","message_id":"m","peer":"USA"}}`))
	f.Add([]byte(`{"index":18446744073709551615,"entry":{"kind":"delivered","at":"0001-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"entry":{"detail":{"a":"b"}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := decodeRecord(raw)
		if err != nil {
			return
		}
		if err := r.Entry.Validate(); err != nil {
			t.Fatalf("decoded an invalid entry: %v", err)
		}
		if _, err := r.Entry.MarshalBinary(); err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
	})
}
