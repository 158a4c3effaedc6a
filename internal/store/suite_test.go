package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"liaison/internal/message"
)

// fakeClock is a settable clock for lease expiry tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const testLabel = `<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"><ConfidentialityInformation><PolicyIdentifier URI="urn:oid:2.25.1">XAA</PolicyIdentifier><Classification>3</Classification></ConfidentialityInformation></originatorConfidentialityLabel>`

func newMsg(channel string, p message.Precedence) *message.Message {
	return &message.Message{
		ID:           message.NewID(),
		Channel:      channel,
		Origin:       "XAA",
		Originator:   "alice",
		Precedence:   p,
		Created:      time.Unix(1_800_000_000, 123456789).UTC(),
		Label:        []byte(testLabel),
		Alternatives: [][]byte{[]byte("<alt>XBB</alt>"), []byte("<alt>XCC</alt>")},
		ContentType:  "text/plain",
		Body:         []byte("hello " + channel),
		TraceID:      "trace-1",
	}
}

func queued(peers ...string) []Route {
	var rs []Route
	for _, p := range peers {
		rs = append(rs, Route{Peer: p, State: Queued, Code: "ok", Reason: "releasable"})
	}
	return rs
}

func sameMsg(t *testing.T, got, want *message.Message) {
	t.Helper()
	if got.ID != want.ID || got.Channel != want.Channel || got.Origin != want.Origin || got.Originator != want.Originator ||
		got.Precedence != want.Precedence || !got.Created.Equal(want.Created) || !bytes.Equal(got.Label, want.Label) ||
		got.ContentType != want.ContentType || !bytes.Equal(got.Body, want.Body) || got.TraceID != want.TraceID ||
		len(got.Alternatives) != len(want.Alternatives) {
		t.Fatalf("message differs:\n got %+v\nwant %+v", got, want)
	}
	for i := range got.Alternatives {
		if !bytes.Equal(got.Alternatives[i], want.Alternatives[i]) {
			t.Fatalf("alternative %d: got %q want %q", i, got.Alternatives[i], want.Alternatives[i])
		}
	}
}

func ids(ms []*message.Message) []message.ID {
	out := make([]message.ID, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func accept(t *testing.T, s Store, m *message.Message, routes []Route) uint64 {
	t.Helper()
	seq, dup, err := s.Accept(context.Background(), m, routes)
	if err != nil || dup {
		t.Fatalf("Accept: seq=%d dup=%v err=%v", seq, dup, err)
	}
	return seq
}

// lease leases for peer and checks each message's Seq: its history seq,
// ascending within a precedence.
func lease(t *testing.T, s Store, peer string, n int) []*message.Message {
	t.Helper()
	ls, err := s.Lease(context.Background(), peer, n, time.Minute)
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	var ms []*message.Message
	for i, l := range ls {
		if _, seq, err := s.Get(context.Background(), l.ID); err != nil || seq != l.Seq {
			t.Fatalf("leased %s with Seq %d; its history seq is %d (%v)", l.ID, l.Seq, seq, err)
		}
		if i > 0 && ls[i-1].Precedence == l.Precedence && ls[i-1].Seq >= l.Seq {
			t.Fatalf("lease out of queue order: Seq %d before %d at %s", ls[i-1].Seq, l.Seq, l.Precedence)
		}
		ms = append(ms, l.Message)
	}
	return ms
}

func state(t *testing.T, s Store, id message.ID, peer string) DeliveryState {
	t.Helper()
	ds, err := s.Status(context.Background(), id)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for _, d := range ds {
		if d.Peer == peer {
			return d.State
		}
	}
	return ""
}

// runSuite runs the behaviour every Store implementation must have. open
// returns a fresh, empty store whose clock is clk.
func runSuite(t *testing.T, open func(t *testing.T, clk *fakeClock) Store) {
	ctx := context.Background()
	t.Run("dedup", func(t *testing.T) {
		s := open(t, newClock())
		m := newMsg("chat", message.Routine)
		seq := accept(t, s, m, queued("XBB"))
		m2 := *m
		m2.Body = []byte("different")
		seq2, dup, err := s.Accept(ctx, &m2, queued("XBB", "XCC"))
		if err != nil || !dup || seq2 != seq {
			t.Fatalf("second Accept: seq=%d (want %d) dup=%v err=%v", seq2, seq, dup, err)
		}
		h, err := s.History(ctx, "chat", 0, 10)
		if err != nil || len(h) != 1 || h[0].Seq != seq {
			t.Fatalf("History = %v, %v; want one entry", h, err)
		}
		sameMsg(t, h[0].Msg, m)
		if ps, _ := s.Peers(ctx); len(ps) != 1 {
			t.Fatalf("Peers = %v after dup; want only XBB", ps)
		}
		got, gseq, err := s.Get(ctx, m.ID)
		if err != nil || gseq != seq {
			t.Fatalf("Get: seq %d err %v", gseq, err)
		}
		sameMsg(t, got, m)
		if _, _, err := s.Get(ctx, message.NewID()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get unknown: %v, want ErrNotFound", err)
		}
	})
	t.Run("audit pending", func(t *testing.T) {
		s := open(t, newClock())
		m1, m2 := newMsg("chat", message.Routine), newMsg("chat", message.Flash)
		if _, _, err := s.Accept(ctx, m1, queued("XBB"), []byte("a1"), []byte("a2")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Accept(ctx, m2, nil, []byte("b1")); err != nil {
			t.Fatal(err)
		}
		if _, dup, err := s.Accept(ctx, m1, queued("XBB"), []byte("again")); err != nil || !dup {
			t.Fatalf("duplicate Accept: dup=%v err=%v", dup, err)
		}
		got, err := s.PendingAudit(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(records(got), ",") != "a1,a2,b1" {
			t.Fatalf("PendingAudit = %v, want a1,a2,b1 in acceptance order and nothing from the duplicate", records(got))
		}
		if next, err := s.PendingAudit(ctx, got[0].ID, 1); err != nil || strings.Join(records(next), ",") != "a2" {
			t.Fatalf("PendingAudit after a1, 1 = %v, %v; want a2", records(next), err)
		}
		if next, err := s.PendingAudit(ctx, got[1].ID, 10); err != nil || strings.Join(records(next), ",") != "b1" {
			t.Fatalf("PendingAudit after a2 = %v, %v; want b1", records(next), err)
		}
		// A range leaves the records outside it, on both ends.
		if err := s.DoneAudit(ctx, got[1].ID, got[1].ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.PendingAudit(ctx, 0, 10); strings.Join(records(got), ",") != "a1,b1" {
			t.Fatalf("after DoneAudit of a2, pending = %v, want a1,b1", records(got))
		}
		if err := s.DoneAudit(ctx, got[0].ID, got[1].ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.PendingAudit(ctx, 0, 10); strings.Join(records(got), ",") != "b1" {
			t.Fatalf("after DoneAudit of a1..a2, pending = %v, want b1 only", records(got))
		}
		if err := s.DoneAudit(ctx, got[2].ID, got[0].ID); err != nil { // empty range
			t.Fatal(err)
		}
		if err := s.DoneAudit(ctx, 0, got[2].ID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.PendingAudit(ctx, 0, 10); len(got) != 0 {
			t.Fatalf("after DoneAudit of everything, pending = %v", records(got))
		}
	})
	t.Run("audit range of many", func(t *testing.T) {
		// A long range removes exactly what it covers, from the middle of
		// one transaction's records to the middle of another's.
		s := open(t, newClock())
		var items []AcceptItem
		for range 552 {
			items = append(items, AcceptItem{Msg: newMsg("chat", message.Routine), Audit: [][]byte{[]byte("x"), []byte("y")}})
		}
		if _, err := s.AcceptBatch(ctx, items); err != nil {
			t.Fatal(err)
		}
		all, err := s.PendingAudit(ctx, 0, len(items)*2)
		if err != nil || len(all) != len(items)*2 {
			t.Fatalf("pending: %d, %v", len(all), err)
		}
		from, to := 5, 2*519 // a y, then an x
		if err := s.DoneAudit(ctx, all[from].ID, all[to].ID); err != nil {
			t.Fatal(err)
		}
		left, err := s.PendingAudit(ctx, 0, len(all))
		if err != nil {
			t.Fatal(err)
		}
		want := append(slices.Clone(all[:from]), all[to+1:]...)
		if len(left) != len(want) {
			t.Fatalf("%d records left, want %d", len(left), len(want))
		}
		for i := range want {
			if left[i].ID != want[i].ID {
				t.Fatalf("record %d left is %d, want %d", i, left[i].ID, want[i].ID)
			}
		}
	})
	t.Run("ack of many", func(t *testing.T) {
		// One acknowledgement of many messages delivers every one.
		s := open(t, newClock())
		var ms []message.ID
		for range 101 {
			m := newMsg("chat", message.Routine)
			accept(t, s, m, queued("XBB"))
			ms = append(ms, m.ID)
		}
		if got := lease(t, s, "XBB", len(ms)); len(got) != len(ms) {
			t.Fatalf("leased %d of %d", len(got), len(ms))
		}
		if err := s.Ack(ctx, "XBB", ms...); err != nil {
			t.Fatal(err)
		}
		for _, id := range ms {
			if got := state(t, s, id, "XBB"); got != Delivered {
				t.Fatalf("message %s is %q after the ack, want delivered", id, got)
			}
		}
		if got := lease(t, s, "XBB", len(ms)); len(got) != 0 {
			t.Fatalf("leased %d after they were acknowledged", len(got))
		}
	})
	t.Run("audit range is safe", func(t *testing.T) {
		s := open(t, newClock())
		checkAuditRange(t, []Store{s, s}, s)
	})
	t.Run("precedence", func(t *testing.T) {
		s := open(t, newClock())
		var want []*message.Message
		r1, r2 := newMsg("c", message.Routine), newMsg("c", message.Routine)
		p1 := newMsg("c", message.Priority)
		f1, f2 := newMsg("c", message.Flash), newMsg("c", message.Flash)
		i1 := newMsg("c", message.Immediate)
		for _, m := range []*message.Message{r1, p1, f1, r2, i1, f2} {
			accept(t, s, m, queued("XBB"))
		}
		want = []*message.Message{f1, f2, i1, p1, r1, r2}
		depth, err := s.QueueDepth(ctx, "XBB")
		if err != nil || depth[message.Flash] != 2 || depth[message.Routine] != 2 || depth[message.Immediate] != 1 {
			t.Fatalf("QueueDepth = %v, %v", depth, err)
		}
		got := lease(t, s, "XBB", 4)
		got = append(got, lease(t, s, "XBB", 10)...)
		if len(got) != len(want) {
			t.Fatalf("leased %d, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID {
				t.Fatalf("lease order %d: got %s (%v), want %s (%v)", i, got[i].ID, got[i].Precedence, want[i].ID, want[i].Precedence)
			}
		}
		sameMsg(t, got[0], f1)
	})
	t.Run("lease", func(t *testing.T) {
		clk := newClock()
		s := open(t, clk)
		a, b := newMsg("c", message.Routine), newMsg("c", message.Routine)
		accept(t, s, a, queued("XBB", "XCC"))
		accept(t, s, b, queued("XBB"))
		if got := lease(t, s, "XBB", 1); len(got) != 1 || got[0].ID != a.ID {
			t.Fatalf("first lease = %v", ids(got))
		}
		if got := lease(t, s, "XBB", 5); len(got) != 1 || got[0].ID != b.ID {
			t.Fatalf("second lease = %v, want only b", ids(got))
		}
		if got := lease(t, s, "XBB", 5); len(got) != 0 {
			t.Fatalf("third lease = %v, want none", ids(got))
		}
		if got := lease(t, s, "XCC", 5); len(got) != 1 || got[0].ID != a.ID {
			t.Fatalf("XCC lease = %v, want a (queues are per peer)", ids(got))
		}
		clk.Advance(time.Minute + time.Second)
		if got := lease(t, s, "XBB", 5); len(got) != 2 {
			t.Fatalf("after expiry lease = %v, want both", ids(got))
		}
		// Release makes a message leasable again at once.
		if err := s.Release(ctx, "XBB", b.ID); err != nil {
			t.Fatal(err)
		}
		if got := lease(t, s, "XBB", 5); len(got) != 1 || got[0].ID != b.ID {
			t.Fatalf("after release lease = %v, want b", ids(got))
		}
		// MarkSentBatch, then Ack removes the row and marks delivered.
		if err := s.MarkSentBatch(ctx, "XBB", a.ID); err != nil {
			t.Fatal(err)
		}
		if st := state(t, s, a.ID, "XBB"); st != Sent {
			t.Fatalf("after MarkSentBatch state = %q", st)
		}
		if err := s.Ack(ctx, "XBB", a.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		for _, id := range []message.ID{a.ID, b.ID} {
			if st := state(t, s, id, "XBB"); st != Delivered {
				t.Fatalf("after Ack state = %q", st)
			}
		}
		if st := state(t, s, a.ID, "XCC"); st != Queued {
			t.Fatalf("XCC state = %q, want queued", st)
		}
		clk.Advance(time.Hour)
		if got := lease(t, s, "XBB", 5); len(got) != 0 {
			t.Fatalf("after ack lease = %v, want none", ids(got))
		}
		if d, _ := s.QueueDepth(ctx, "XBB"); len(d) != 0 {
			t.Fatalf("QueueDepth after ack = %v", d)
		}
	})
	t.Run("accepted leased", func(t *testing.T) {
		// A route with LeaseFor is stored leased for that long: Lease
		// skips it (for that peer only) until it expires or is released.
		clk := newClock()
		s := open(t, clk)
		f := newMsg("c", message.Flash)
		routes := queued("XBB", "XCC")
		routes[0].LeaseFor = time.Minute
		accept(t, s, f, routes)
		if got := lease(t, s, "XBB", 5); len(got) != 0 {
			t.Fatalf("lease = %v, want none: it was stored leased", ids(got))
		}
		if got := lease(t, s, "XCC", 5); len(got) != 1 || got[0].ID != f.ID {
			t.Fatalf("XCC lease = %v, want f (not leased for XCC)", ids(got))
		}
		if st := state(t, s, f.ID, "XBB"); st != Queued {
			t.Fatalf("state = %q, want queued", st)
		}
		if err := s.Release(ctx, "XBB", f.ID); err != nil {
			t.Fatal(err)
		}
		if got := lease(t, s, "XBB", 5); len(got) != 1 || got[0].ID != f.ID {
			t.Fatalf("after release lease = %v, want f", ids(got))
		}
		g := newMsg("c", message.Flash)
		routes = queued("XBB")
		routes[0].LeaseFor = time.Minute
		accept(t, s, g, routes)
		clk.Advance(time.Minute + time.Second)
		if got := lease(t, s, "XBB", 5); len(got) != 2 {
			t.Fatalf("after the lease expired: %v, want f and g", ids(got))
		}
	})
	t.Run("hold", func(t *testing.T) {
		s := open(t, newClock())
		a := newMsg("c", message.Flash)
		accept(t, s, a, queued("XBB"))
		if err := s.Hold(ctx, "XBB", true, "agreement suspended"); err != nil {
			t.Fatal(err)
		}
		if got := lease(t, s, "XBB", 5); len(got) != 0 {
			t.Fatalf("held peer leased %v", ids(got))
		}
		if err := s.Hold(ctx, "XBB", false, ""); err != nil {
			t.Fatal(err)
		}
		if got := lease(t, s, "XBB", 5); len(got) != 1 {
			t.Fatalf("resumed peer leased %v", ids(got))
		}
	})
	t.Run("held-route", func(t *testing.T) {
		s := open(t, newClock())
		a, b := newMsg("c", message.Routine), newMsg("c", message.Routine)
		accept(t, s, a, []Route{{Peer: "XBB", State: Held, Code: "no-agreement", Reason: "held: no agreement"}, {Peer: "XCC", State: Denied, Code: "label", Reason: "not releasable"}})
		accept(t, s, b, queued("XBB"))
		held, err := s.HeldFor(ctx, "XBB")
		if err != nil || len(held) != 1 || held[0].ID != a.ID {
			t.Fatalf("HeldFor = %v, %v", held, err)
		}
		if d, _ := s.QueueDepth(ctx, "XBB"); d[message.Routine] != 1 {
			t.Fatalf("QueueDepth = %v, want held row excluded", d)
		}
		if got := lease(t, s, "XBB", 5); len(got) != 1 || got[0].ID != b.ID {
			t.Fatalf("lease = %v, want only b", ids(got))
		}
		if got := lease(t, s, "XCC", 5); len(got) != 0 {
			t.Fatalf("denied route leased %v", ids(got))
		}
		if err := s.SetRoute(ctx, a.ID, "XBB", Queued, "ok", "agreement in force"); err != nil {
			t.Fatal(err)
		}
		if got := lease(t, s, "XBB", 5); len(got) != 1 || got[0].ID != a.ID {
			t.Fatalf("after SetRoute lease = %v, want a", ids(got))
		}
		if held, _ := s.HeldFor(ctx, "XBB"); len(held) != 0 {
			t.Fatalf("HeldFor after SetRoute = %v", ids(held))
		}
		if err := s.SetRoute(ctx, a.ID, "XBB", Refused, "peer-refused", "no"); err != nil {
			t.Fatal(err)
		}
		ds, err := s.Status(ctx, a.ID)
		if err != nil || len(ds) != 2 || ds[0].Peer != "XBB" || ds[0].State != Refused || ds[0].Code != "peer-refused" || ds[1].State != Denied {
			t.Fatalf("Status = %+v, %v", ds, err)
		}
		if err := s.SetRoute(ctx, message.NewID(), "XBB", Queued, "", ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetRoute unknown id: %v", err)
		}
		if _, err := s.Status(ctx, message.NewID()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Status unknown id: %v", err)
		}
		if ps, err := s.Peers(ctx); err != nil || fmt.Sprint(ps) != "[XBB XCC]" {
			t.Fatalf("Peers = %v, %v", ps, err)
		}
	})
	t.Run("review", func(t *testing.T) {
		s := open(t, newClock())
		a, b := newMsg("c", message.Immediate), newMsg("c", message.Routine)
		q := []Route{{Peer: "XBB", State: Quarantined, Code: "review", Reason: "needs review"}}
		accept(t, s, a, q)
		accept(t, s, b, q)
		items, err := s.Quarantined(ctx)
		if err != nil || len(items) != 2 || items[0].Peer != "XBB" || items[0].Reason != "needs review" {
			t.Fatalf("Quarantined = %+v, %v", items, err)
		}
		sameMsg(t, items[0].Msg, a)
		if got := lease(t, s, "XBB", 5); len(got) != 0 {
			t.Fatalf("quarantined leased %v", ids(got))
		}
		out, apps, err := s.Review(ctx, a.ID, "XBB", "rev1", true)
		if err != nil || out != ReviewPending || fmt.Sprint(apps) != "[rev1]" {
			t.Fatalf("first approval: %q %v %v", out, apps, err)
		}
		if _, _, err := s.Review(ctx, a.ID, "XBB", "rev1", true); !errors.Is(err, ErrAlreadyReviewed) {
			t.Fatalf("same reviewer twice: %v", err)
		}
		if items, _ := s.Quarantined(ctx); len(items) != 2 || fmt.Sprint(items[0].Approvals) != "[rev1]" {
			t.Fatalf("Quarantined approvals = %+v", items)
		}
		if got := lease(t, s, "XBB", 5); len(got) != 0 {
			t.Fatalf("one approval leased %v", ids(got))
		}
		out, apps, err = s.Review(ctx, a.ID, "XBB", "rev2", true)
		if err != nil || out != ReviewReleased || len(apps) != 2 {
			t.Fatalf("second approval: %q %v %v", out, apps, err)
		}
		if got := lease(t, s, "XBB", 5); len(got) != 1 || got[0].ID != a.ID {
			t.Fatalf("released lease = %v", ids(got))
		}
		if _, _, err := s.Review(ctx, a.ID, "XBB", "rev3", true); !errors.Is(err, ErrNotQuarantined) {
			t.Fatalf("review after release: %v", err)
		}
		out, _, err = s.Review(ctx, b.ID, "XBB", "rev1", false)
		if err != nil || out != ReviewDenied {
			t.Fatalf("deny: %q %v", out, err)
		}
		if st := state(t, s, b.ID, "XBB"); st != Denied {
			t.Fatalf("after deny state = %q", st)
		}
		if _, _, err := s.Review(ctx, b.ID, "XBB", "rev2", true); !errors.Is(err, ErrNotQuarantined) {
			t.Fatalf("review after deny: %v", err)
		}
		if _, _, err := s.Review(ctx, b.ID, "XZZ", "rev2", true); !errors.Is(err, ErrNotQuarantined) {
			t.Fatalf("review for unknown peer: %v", err)
		}
		if items, _ := s.Quarantined(ctx); len(items) != 0 {
			t.Fatalf("Quarantined after reviews = %+v", items)
		}
	})
	t.Run("history", func(t *testing.T) {
		s := open(t, newClock())
		var chat []uint64
		var last uint64
		for i := range 25 {
			ch := "chat"
			if i%3 == 0 {
				ch = "ops"
			}
			seq := accept(t, s, newMsg(ch, message.Routine), nil)
			if seq <= last {
				t.Fatalf("seq %d after %d: not increasing", seq, last)
			}
			last = seq
			if ch == "chat" {
				chat = append(chat, seq)
			}
		}
		var got []uint64
		after := uint64(0)
		for {
			page, err := s.History(ctx, "chat", after, 4)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if len(page) > 4 {
				t.Fatalf("page of %d", len(page))
			}
			for _, e := range page {
				if e.Msg.Channel != "chat" {
					t.Fatalf("channel %q in chat history", e.Msg.Channel)
				}
				got = append(got, e.Seq)
			}
			after = page[len(page)-1].Seq
		}
		if fmt.Sprint(got) != fmt.Sprint(chat) {
			t.Fatalf("paged history %v, want %v", got, chat)
		}
	})
	t.Run("kv", func(t *testing.T) {
		s := open(t, newClock())
		for _, kv := range [][2]string{{"cis-moa v2", "doc2"}, {"cis-moa v1", "doc1"}, {"cis-moa v2", "doc2b"}} {
			if err := s.PutAgreement(ctx, kv[0], []byte(kv[1])); err != nil {
				t.Fatal(err)
			}
		}
		docs, err := s.Agreements(ctx)
		if err != nil || len(docs) != 2 || string(docs[0]) != "doc2b" || string(docs[1]) != "doc1" {
			t.Fatalf("Agreements = %q, %v", docs, err)
		}
		if err := s.PutCard(ctx, "XBB", []byte("card1")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutCard(ctx, "XBB", []byte("card2")); err != nil {
			t.Fatal(err)
		}
		if cs, err := s.Cards(ctx); err != nil || len(cs) != 1 || string(cs["XBB"]) != "card2" {
			t.Fatalf("Cards = %q, %v", cs, err)
		}
		if _, err := s.GetState(ctx, "k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetState missing: %v", err)
		}
		if err := s.PutState(ctx, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		if v, err := s.GetState(ctx, "k"); err != nil || string(v) != "v" {
			t.Fatalf("GetState = %q, %v", v, err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		s := open(t, newClock())
		const G, N = 64, 50
		var wg sync.WaitGroup
		errs := make(chan error, G)
		want := make([][]message.ID, G)
		for g := range G {
			wg.Go(func() {
				for range N {
					m := newMsg("load", message.Precedence(g%4))
					want[g] = append(want[g], m.ID)
					if _, dup, err := s.Accept(ctx, m, queued("XBB")); err != nil || dup {
						errs <- fmt.Errorf("accept: dup=%v err=%v", dup, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		h, err := s.History(ctx, "load", 0, 10000)
		if err != nil || len(h) != G*N {
			t.Fatalf("history has %d entries (%v), want %d", len(h), err, G*N)
		}
		seen := make(map[message.ID]int)
		for _, e := range h {
			seen[e.Msg.ID]++
		}
		for _, w := range want {
			for _, id := range w {
				if seen[id] != 1 {
					t.Fatalf("message %s present %d times", id, seen[id])
				}
			}
		}
		d, _ := s.QueueDepth(ctx, "XBB")
		if total := d[0] + d[1] + d[2] + d[3]; total != G*N {
			t.Fatalf("queue depth %d, want %d", total, G*N)
		}
	})
	t.Run("accept batch", func(t *testing.T) { testAcceptBatch(t, open(t, newClock())) })
	t.Run("accept batch concurrent", func(t *testing.T) { testAcceptBatchConcurrent(t, open(t, newClock())) })
	t.Run("mark sent batch", func(t *testing.T) { testMarkSentBatch(t, open(t, newClock())) })
	t.Run("batch rows", func(t *testing.T) { testBatchRows(t, open(t, newClock())) })
	t.Run("commit kinds", func(t *testing.T) { testCommitKinds(t, open(t, newClock())) })
	t.Run("close", func(t *testing.T) {
		s := open(t, newClock())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func records(ps []PendingAudit) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p.Record)
	}
	return out
}

// checkAuditRange races Accepts (two audit records each, some of them
// duplicates that roll back) through writers against a pump on pump that
// reads on from the last ID it saw and removes each batch it read with one
// DoneAudit range, as the node's pump does. Every record must be read
// exactly once: a range that removed a record committed after the read
// would lose it.
func checkAuditRange(t *testing.T, writers []Store, pump Store) {
	t.Helper()
	ctx := context.Background()
	const perWriter = 150
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want = make(map[string]bool)
		done = make(chan struct{})
	)
	for w, s := range writers {
		for g := range 4 {
			wg.Go(func() {
				var prev *message.Message
				for i := range perWriter / 4 {
					m := newMsg("c", message.Routine)
					if prev != nil && i%5 == 0 {
						m = prev // a duplicate: rolled back, no records
					}
					a, b := fmt.Sprintf("%d/%d/%d/a", w, g, i), fmt.Sprintf("%d/%d/%d/b", w, g, i)
					_, dup, err := s.Accept(ctx, m, queued("XBB"), []byte(a), []byte(b))
					if err != nil {
						t.Error(err)
						return
					}
					if !dup {
						mu.Lock()
						want[a], want[b] = true, true
						mu.Unlock()
					}
					prev = m
				}
			})
		}
	}
	go func() { wg.Wait(); close(done) }()
	seen := make(map[string]int)
	var after int64
	pumpOnce := func() int {
		got, err := pump.PendingAudit(ctx, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return 0
		}
		for _, p := range got {
			seen[string(p.Record)]++
		}
		if err := pump.DoneAudit(ctx, got[0].ID, got[len(got)-1].ID); err != nil {
			t.Fatal(err)
		}
		after = got[len(got)-1].ID
		return len(got)
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			pumpOnce()
		}
	}
	for pumpOnce() > 0 {
	}
	if t.Failed() {
		return
	}
	if left, err := pump.PendingAudit(ctx, 0, 10); err != nil || len(left) != 0 {
		t.Fatalf("records left pending after the pump read them all: %v, %v", records(left), err)
	}
	for r := range want {
		if seen[r] != 1 {
			t.Errorf("record %s read %d times, want once", r, seen[r])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("read %d distinct records, want %d", len(seen), len(want))
	}
}
