package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	. "liaison/internal/api"
	"liaison/internal/api/apitest"
	"liaison/internal/message"
)

const (
	senderToken   = "sender-secret"
	reviewerToken = "reviewer-secret"
	reviewer2     = "reviewer-two"
	operatorToken = "operator-secret"
)

func newTestServer(t *testing.T) (*httptest.Server, *apitest.Fake) {
	t.Helper()
	fb := apitest.NewFake("XAA")
	s, err := New(Config{Backend: fb, Tokens: []Token{
		{Name: "alice", SHA256: HashToken(senderToken), Roles: []Role{RoleSender}},
		{Name: "rev1", SHA256: HashToken(reviewerToken), Roles: []Role{RoleReviewer}},
		{Name: "rev2", SHA256: HashToken(reviewer2), Roles: []Role{RoleReviewer}},
		{Name: "op", SHA256: HashToken(operatorToken), Roles: []Role{RoleOperator}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, fb
}

func do(t *testing.T, ts *httptest.Server, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

func errCode(v map[string]any) string {
	e, _ := v["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

const testLabel = apitest.TestLabel

func postBody(id, channel, prec string) string {
	b, _ := json.Marshal(map[string]any{"id": id, "channel": channel, "precedence": prec, "label": testLabel, "body": "hello"})
	return string(b)
}

func TestAuthAndRoles(t *testing.T) {
	ts, _ := newTestServer(t)
	tests := []struct {
		name, method, path, token string
		want                      int
		code                      string
	}{
		{"health needs nothing", "GET", "/healthz", "", 200, ""},
		{"ready needs nothing", "GET", "/readyz", "", 200, ""},
		{"no token", "GET", "/v1/status", "", 401, "unauthenticated"},
		{"unknown token", "GET", "/v1/status", "nope", 401, "unauthenticated"},
		{"sender cannot install", "POST", "/v1/agreements", senderToken, 403, "forbidden"},
		{"sender cannot review", "POST", "/v1/quarantine/" + message.NewID().String() + "/XBB/release", senderToken, 403, "forbidden"},
		{"reviewer cannot send", "POST", "/v1/messages", reviewerToken, 403, "forbidden"},
		{"operator may do anything", "GET", "/v1/quarantine", operatorToken, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, v := do(t, ts, tt.method, tt.path, tt.token, "")
			if got != tt.want || errCode(v) != tt.code {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, got, errCode(v), tt.want, tt.code)
			}
		})
	}
}

func TestPostMessage(t *testing.T) {
	ts, fb := newTestServer(t)
	id := message.NewID().String()
	code, v := do(t, ts, "POST", "/v1/messages", senderToken, postBody(id, "exercise", "flash"))
	if code != 201 || v["id"] != id {
		t.Fatalf("post = %d %v, want 201 with id %s", code, v, id)
	}
	if fb.Msgs[0].Originator != "alice" || fb.Msgs[0].Origin != "XAA" || fb.Msgs[0].Precedence != message.Flash {
		t.Errorf("stored message %+v: want originator alice, origin XAA, FLASH", fb.Msgs[0])
	}
	code, v = do(t, ts, "POST", "/v1/messages", senderToken, postBody(id, "exercise", "flash"))
	if code != 200 || v["duplicate"] != true {
		t.Errorf("repost = %d %v, want 200 duplicate", code, v)
	}
	if len(fb.Msgs) != 1 {
		t.Errorf("backend holds %d messages after a duplicate post, want 1", len(fb.Msgs))
	}

	bad := []struct{ name, body, code string }{
		{"not json", "{", "bad-json"},
		{"unknown field", `{"channel":"c","precedence":"FLASH","label":"x","body":"b","colour":"red"}`, "bad-json"},
		{"no label", `{"channel":"c","precedence":"FLASH","body":"b"}`, "no-label"},
		{"bad precedence", `{"channel":"c","precedence":"URGENT","label":"x","body":"b"}`, "bad-message"},
		{"both bodies", `{"channel":"c","precedence":"FLASH","label":"x","body":"b","body_base64":"YQ=="}`, "bad-message"},
		{"no body", `{"channel":"c","precedence":"FLASH","label":"x"}`, "bad-message"},
		{"bad id", `{"id":"123","channel":"c","precedence":"FLASH","label":"x","body":"b"}`, "bad-message"},
		{"uuid v4 id", `{"id":"` + "0b0e2f4c-6a8e-4e0a-9b1e-2c9d0f6a7b3c" + `","channel":"c","precedence":"FLASH","label":"x","body":"b"}`, "bad-message"},
		{"trailing data", postBody(message.NewID().String(), "c", "FLASH") + "{}", "bad-json"},
		{"repeated member", `{"channel":"c","channel":"d","precedence":"FLASH","label":"x","body":"b"}`, "bad-json"},
		{"member name in another case", `{"Channel":"c","precedence":"FLASH","label":"x","body":"b"}`, "bad-json"},
		{"invalid UTF-8", "{\"channel\":\"c\xff\",\"precedence\":\"FLASH\",\"label\":\"x\",\"body\":\"b\"}", "bad-json"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			code, v := do(t, ts, "POST", "/v1/messages", senderToken, tt.body)
			if code != 400 || errCode(v) != tt.code {
				t.Errorf("= %d %q (%v), want 400 %q", code, errCode(v), v, tt.code)
			}
		})
	}
	code, v = do(t, ts, "POST", "/v1/messages", senderToken, postBody(message.NewID().String(), "closed", "ROUTINE"))
	if code != 409 || errCode(v) != "no-agreement" {
		t.Errorf("post to closed channel = %d %v, want 409 no-agreement", code, v)
	}
}

func TestBodyBound(t *testing.T) {
	ts, _ := newTestServer(t)
	big := `{"channel":"c","precedence":"FLASH","label":"x","body":"` + strings.Repeat("a", (1<<20)+10) + `"}`
	code, v := do(t, ts, "POST", "/v1/agreements", operatorToken, big)
	if code != 413 || errCode(v) != "too-large" {
		t.Errorf("oversized agreement = %d %v, want 413 too-large", code, v)
	}
}

func TestHistoryAndReview(t *testing.T) {
	ts, _ := newTestServer(t)
	var ids []string
	for _, p := range []string{"ROUTINE", "FLASH", "PRIORITY"} {
		id := message.NewID().String()
		ids = append(ids, id)
		if code, v := do(t, ts, "POST", "/v1/messages", senderToken, postBody(id, "exercise", p)); code != 201 {
			t.Fatalf("post: %d %v", code, v)
		}
	}
	code, v := do(t, ts, "GET", "/v1/channels/exercise/messages?after=1&limit=10", senderToken, "")
	msgs, _ := v["messages"].([]any)
	if code != 200 || len(msgs) != 2 || v["next"] != float64(3) {
		t.Fatalf("history after 1 = %d, %d messages, next %v; want 200, 2, 3", code, len(msgs), v["next"])
	}
	if code, v := do(t, ts, "GET", "/v1/channels/exercise/messages?limit=0", senderToken, ""); code != 400 {
		t.Errorf("limit=0 = %d %v, want 400", code, v)
	}

	path := "/v1/quarantine/" + ids[0] + "/XBB/release"
	if _, v := do(t, ts, "POST", path, reviewerToken, ""); v["outcome"] != "pending" {
		t.Errorf("first approval = %v, want pending", v)
	}
	if code, v := do(t, ts, "POST", path, reviewerToken, ""); code != 409 || errCode(v) != "already-reviewed" {
		t.Errorf("same reviewer again = %d %v, want 409 already-reviewed", code, v)
	}
	if _, v := do(t, ts, "POST", path, reviewer2, ""); v["outcome"] != "released" {
		t.Errorf("second reviewer = %v, want released", v)
	}
	if code, _ := do(t, ts, "GET", "/v1/messages/"+ids[1], senderToken, ""); code != 200 {
		t.Errorf("status of a known message = %d, want 200", code)
	}
	if code, v := do(t, ts, "GET", "/v1/messages/"+message.NewID().String(), senderToken, ""); code != 404 {
		t.Errorf("status of an unknown message = %d %v, want 404", code, v)
	}
}

func TestStream(t *testing.T) {
	ts, _ := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/channels/exercise/stream", nil)
	req.Header.Set("Authorization", "Bearer "+senderToken)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	id := message.NewID().String()
	if code, v := do(t, ts, "POST", "/v1/messages", senderToken, postBody(id, "exercise", "FLASH")); code != 201 {
		t.Fatalf("post: %d %v", code, v)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var e Entry
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Fatal(err)
			}
			if e.Message.ID.String() != id || e.Seq != 1 {
				t.Fatalf("streamed %v seq %d, want %s seq 1", e.Message.ID, e.Seq, id)
			}
			return
		}
	}
	t.Fatalf("stream ended without the message: %v", sc.Err())
}

// TestDocsListEveryRoute keeps docs/API.md true: it must list exactly the
// routes the server serves.
func TestDocsListEveryRoute(t *testing.T) {
	doc, err := os.ReadFile("../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?m)^\\| `((?:GET|POST|PUT|DELETE) [^`]+)` \\|")
	var documented []string
	for _, m := range re.FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1])
	}
	served := Patterns()
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Errorf("docs/API.md lists\n  %v\nbut the server serves\n  %v", documented, served)
	}
}
