package apitest

import (
	"context"
	"slices"
	"testing"
	"time"

	"liaison/internal/api"
	"liaison/internal/message"
)

func newMessage(t *testing.T, body string) *message.Message {
	t.Helper()
	b := body
	m, err := (&api.PostMessage{Channel: "exercise", Precedence: "ROUTINE", Label: TestLabel, Body: &b}).Message("XAA", &api.Principal{Name: "sam"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// next reads one entry from a subscription, failing after a deadline.
func next(t *testing.T, ch <-chan api.Entry) api.Entry {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no entry within 5s")
		return api.Entry{}
	}
}

func TestLinkDeliversToEverySubscriber(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := NewFake("XAA"), NewFake("XBB")
	Link(a, b)
	// Two subscribers on one fake must both be woken.
	s1, _ := b.Subscribe(ctx, "exercise", 0)
	s2, _ := b.Subscribe(ctx, "exercise", 0)
	m := newMessage(t, "hello")
	rc, err := a.Submit(ctx, m)
	if err != nil || len(rc.Recipients) != 1 || rc.Recipients[0] != (api.Recipient{Party: "XBB", State: "delivered", At: rc.Recipients[0].At}) {
		t.Fatalf("submit = %+v, %v; want delivered to XBB", rc, err)
	}
	for _, s := range []<-chan api.Entry{s1, s2} {
		if e := next(t, s); e.Message.ID != m.ID || e.Marking != "XAA CONFIDENTIAL" {
			t.Errorf("XBB subscriber got %+v, want %s marked XAA CONFIDENTIAL", e, m.ID)
		}
	}
	if es, _ := a.History(ctx, "exercise", 0, 10); len(es) != 1 || es[0].Recipients[0].State != "delivered" {
		t.Errorf("XAA history = %+v, want the message with its delivery", es)
	}
}

func TestQuarantineTwoPersonRelease(t *testing.T) {
	ctx := context.Background()
	a, b := NewFake("XAA"), NewFake("XBB")
	a.QuarantineWord = "ZULU"
	Link(a, b)
	m := newMessage(t, "ZULU at dawn")
	rc, err := a.Submit(ctx, m)
	if err != nil || rc.Recipients[0].State != "quarantined" {
		t.Fatalf("submit = %+v, %v; want quarantined", rc, err)
	}
	if es, _ := b.History(ctx, "exercise", 0, 10); len(es) != 0 {
		t.Fatalf("XBB received a held message: %+v", es)
	}
	steps := []struct {
		reviewer string
		outcome  string // "" for refused
		needed   int    // still needed afterwards; -1 when no longer held
	}{
		{"rita", "pending", 1},
		{"rita", "", 1},
		{"raj", "released", -1},
	}
	for _, s := range steps {
		res, err := a.Review(ctx, m.ID, "XBB", s.reviewer, true)
		switch {
		case s.outcome == "" && err == nil:
			t.Errorf("%s approving again = %+v, want refused", s.reviewer, res)
		case s.outcome != "" && (err != nil || res.Outcome != s.outcome):
			t.Errorf("%s approving = %+v, %v; want %s", s.reviewer, res, err, s.outcome)
		}
		hs, _ := a.Quarantine(ctx)
		if s.needed < 0 && len(hs) != 0 || s.needed >= 0 && (len(hs) != 1 || hs[0].Needed != s.needed) {
			t.Errorf("after %s: quarantine = %+v, want %d still needed", s.reviewer, hs, s.needed)
		}
	}
	if es, _ := b.History(ctx, "exercise", 0, 10); len(es) != 1 || es[0].Message.ID != m.ID {
		t.Errorf("XBB history after release = %+v, want the message", es)
	}
	av, _ := a.Audit(ctx, m.ID.String(), 10)
	var kinds []string
	for _, e := range av.Entries {
		kinds = append(kinds, e.Kind+":"+e.Actor)
	}
	if want := []string{"release:rita, raj", "review:raj", "review:rita", "submit:sam"}; !slices.Equal(kinds, want) {
		t.Errorf("audit of %s = %v, want %v", m.ID, kinds, want)
	}
}

func TestDenyEndsHold(t *testing.T) {
	ctx := context.Background()
	a, b := NewFake("XAA"), NewFake("XBB")
	a.QuarantineWord = "ZULU"
	Link(a, b)
	m := newMessage(t, "ZULU")
	a.Submit(ctx, m)
	if res, err := a.Review(ctx, m.ID, "XBB", "rita", false); err != nil || res.Outcome != "denied" {
		t.Fatalf("deny = %+v, %v", res, err)
	}
	if hs, _ := a.Quarantine(ctx); len(hs) != 0 {
		t.Errorf("quarantine after a denial = %+v, want empty", hs)
	}
	if es, _ := b.History(ctx, "exercise", 0, 10); len(es) != 0 {
		t.Errorf("a denied message reached XBB: %+v", es)
	}
}
