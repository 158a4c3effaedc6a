package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	. "liaison/internal/api"
	"liaison/internal/api/apitest"
	"liaison/internal/message"
)

type announceKey struct{}

// announcingFake records announcements and whether each submission came
// with the context of one.
type announcingFake struct {
	*apitest.Fake
	mu                 sync.Mutex
	announced, dropped int
	submitted          []bool // per Submit or SubmitBatch: its context carried an announcement
}

func (f *announcingFake) Announce(ctx context.Context) (context.Context, func()) {
	f.mu.Lock()
	f.announced++
	f.mu.Unlock()
	var once sync.Once
	return context.WithValue(ctx, announceKey{}, true), func() {
		once.Do(func() { f.mu.Lock(); f.dropped++; f.mu.Unlock() })
	}
}

func (f *announcingFake) note(ctx context.Context) {
	f.mu.Lock()
	f.submitted = append(f.submitted, ctx.Value(announceKey{}) != nil)
	f.mu.Unlock()
}

func (f *announcingFake) Submit(ctx context.Context, m *message.Message) (*Receipt, error) {
	f.note(ctx)
	return f.Fake.Submit(ctx, m)
}

func (f *announcingFake) SubmitBatch(ctx context.Context, ms []*message.Message) []SubmitResult {
	f.note(ctx)
	return f.Fake.SubmitBatch(ctx, ms)
}

// The API announces each post to a backend that takes announcements, once
// its body is read, submits it with the announcing context, and ends
// every announcement, also for messages it refuses before submitting. A
// body that does not decode is refused before any announcement.
func TestPostsAreAnnounced(t *testing.T) {
	af := &announcingFake{Fake: apitest.NewFake("XAA")}
	s, err := New(Config{Backend: af, Tokens: []Token{{Name: "alice", SHA256: HashToken(senderToken), Roles: []Role{RoleSender}}}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	if code, v := do(t, ts, "POST", "/v1/messages", senderToken, postBody(message.NewID().String(), "exercise", "routine")); code != http.StatusCreated {
		t.Fatalf("post: %d %v", code, v)
	}
	if code, v := do(t, ts, "POST", "/v1/messages/batch", senderToken, `{"messages":[`+postBody(message.NewID().String(), "exercise", "routine")+`]}`); code != http.StatusOK {
		t.Fatalf("batch: %d %v", code, v)
	}
	if code, _ := do(t, ts, "POST", "/v1/messages", senderToken, `{"channel":`); code != http.StatusBadRequest {
		t.Fatalf("bad JSON: %d", code)
	}
	if code, _ := do(t, ts, "POST", "/v1/messages", senderToken, postBody(message.NewID().String(), "exercise", "no-such-precedence")); code != http.StatusBadRequest {
		t.Fatalf("bad precedence: %d", code)
	}
	af.mu.Lock()
	defer af.mu.Unlock()
	if af.announced != 3 || af.dropped != 3 {
		t.Errorf("%d announced, %d ended; want 3 and 3", af.announced, af.dropped)
	}
	if len(af.submitted) != 2 || !af.submitted[0] || !af.submitted[1] {
		t.Errorf("submissions with an announcing context: %v, want [true true]", af.submitted)
	}
}
