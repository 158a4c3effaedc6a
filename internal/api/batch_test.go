package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	. "liaison/internal/api"
	"liaison/internal/message"
)

// batchBody is a POST /v1/messages/batch body of the given message bodies
// (each a JSON object, as postBody makes).
func batchBody(msgs ...string) string {
	return `{"messages":[` + strings.Join(msgs, ",") + `]}`
}

func TestPostBatch(t *testing.T) {
	ts, fb := newTestServer(t)
	dup := message.NewID().String()
	if code, v := do(t, ts, "POST", "/v1/messages", senderToken, postBody(dup, "exercise", "ROUTINE")); code != 201 {
		t.Fatalf("single post: %d %v", code, v)
	}
	fresh1, fresh2 := message.NewID().String(), message.NewID().String()
	body := batchBody(
		postBody(fresh1, "exercise", "flash"),
		`{"channel":"exercise","precedence":"URGENT","label":"x","body":"b"}`,
		postBody(dup, "exercise", "ROUTINE"),
		postBody(message.NewID().String(), "closed", "ROUTINE"),
		`{"channel":"exercise","precedence":"FLASH","body":"b"}`,
		postBody(fresh2, "exercise", "priority"),
	)
	code, v := do(t, ts, "POST", "/v1/messages/batch", senderToken, body)
	if code != 200 {
		t.Fatalf("batch = %d %v, want 200", code, v)
	}
	var ans BatchAnswer
	remarshal(t, v, &ans)
	want := []struct {
		status int
		id     string
		code   string
		dup    bool
	}{
		{201, fresh1, "", false},
		{400, "", "bad-message", false},
		{200, dup, "", true},
		{409, "", "no-agreement", false},
		{400, "", "no-label", false},
		{201, fresh2, "", false},
	}
	if len(ans.Results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(ans.Results), len(want), ans)
	}
	for i, w := range want {
		r := ans.Results[i]
		switch {
		case r.Status != w.status:
			t.Errorf("result %d: status %d, want %d (%+v)", i, r.Status, w.status, r)
		case w.code != "" && (r.Error == nil || r.Error.Code != w.code || r.Error.Message == "" || r.Receipt != nil):
			t.Errorf("result %d: %+v, want error %q with a message and no receipt", i, r, w.code)
		case w.code == "" && (r.Receipt == nil || r.Receipt.ID.String() != w.id || r.Receipt.Duplicate != w.dup || r.Error != nil):
			t.Errorf("result %d: %+v, want receipt for %s (duplicate %v)", i, r, w.id, w.dup)
		}
	}
	if ans.Accepted != 3 || ans.Refused != 3 {
		t.Errorf("accepted %d, refused %d; want 3 and 3", ans.Accepted, ans.Refused)
	}
	// Stored once each, in batch order, with the sender as originator.
	var got []string
	for _, m := range fb.Msgs {
		got = append(got, m.ID.String())
		if m.Originator != "alice" || m.Origin != "XAA" {
			t.Errorf("stored %s with originator %q, origin %q; want alice, XAA", m.ID, m.Originator, m.Origin)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{dup, fresh1, fresh2}) {
		t.Errorf("backend holds %v, want %v", got, []string{dup, fresh1, fresh2})
	}
}

func TestPostBatchRefusedWhole(t *testing.T) {
	ts, fb := newTestServer(t)
	many := make([]string, MaxBatch+1)
	for i := range many {
		many[i] = postBody(message.NewID().String(), "exercise", "ROUTINE")
	}
	tests := []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"empty", senderToken, `{"messages":[]}`, 400, "bad-batch"},
		{"missing", senderToken, `{}`, 400, "bad-batch"},
		{"too many", senderToken, batchBody(many...), 400, "bad-batch"},
		{"not json", senderToken, `{"messages":[`, 400, "bad-json"},
		{"unknown member", senderToken, `{"messages":[],"colour":"red"}`, 400, "bad-json"},
		{"unknown member in a message", senderToken, batchBody(`{"channel":"c","precedence":"FLASH","label":"x","body":"b","colour":"red"}`), 400, "bad-json"},
		{"trailing data", senderToken, batchBody(postBody(message.NewID().String(), "exercise", "FLASH")) + "[]", 400, "bad-json"},
		{"over its bound", senderToken, batchBody(`{"channel":"c","precedence":"FLASH","label":"x","body":"` + strings.Repeat("a", 16<<20) + `"}`), 413, "too-large"},
		{"reviewer may not send", reviewerToken, batchBody(postBody(message.NewID().String(), "exercise", "FLASH")), 403, "forbidden"},
		{"no token", "", batchBody(postBody(message.NewID().String(), "exercise", "FLASH")), 401, "unauthenticated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, v := do(t, ts, "POST", "/v1/messages/batch", tt.token, tt.body)
			if code != tt.status || errCode(v) != tt.code {
				t.Errorf("= %d %q (%.200v), want %d %q", code, errCode(v), v, tt.status, tt.code)
			}
		})
	}
	if len(fb.Msgs) != 0 {
		t.Errorf("backend holds %d messages after refused batches, want 0", len(fb.Msgs))
	}
}

func remarshal(t *testing.T, from, to any) {
	t.Helper()
	b, err := json.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, to); err != nil {
		t.Fatal(err)
	}
}
