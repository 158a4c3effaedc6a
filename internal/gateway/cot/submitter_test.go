package cot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"liaison/internal/message"
)

// gateCore blocks every Submit until the test releases it, so that events
// accumulate behind it without sleeps. Each Submit is reported on got.
type gateCore struct {
	got     chan *message.Message
	release chan error
}

func newGateCore() *gateCore {
	return &gateCore{got: make(chan *message.Message), release: make(chan error)}
}

func (c *gateCore) Submit(ctx context.Context, m *message.Message) error {
	c.got <- m
	return <-c.release
}

func (c *gateCore) Subscribe(ctx context.Context, channel string, after uint64) (<-chan Delivery, error) {
	return make(chan Delivery), nil
}

// next returns the Submit in flight, failing after 20 s.
func (c *gateCore) next(t *testing.T) *message.Message {
	t.Helper()
	select {
	case m := <-c.got:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no submit")
		return nil
	}
}

func uidsOf(t *testing.T, m *message.Message) []string {
	t.Helper()
	raws := [][]byte{m.Body}
	switch m.ContentType {
	case ContentType:
	case BatchContentType:
		var err error
		if raws, err = ParseBatch(m.Body); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("content type %q", m.ContentType)
	}
	var out []string
	for _, r := range raws {
		e, err := ParseEvent(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.UID)
	}
	return out
}

func testSubmitter(t *testing.T, cfg Config) (*Gateway, *submitter, *gateCore, *memAudit) {
	t.Helper()
	core := newGateCore()
	a := &memAudit{}
	cfg.Origin, cfg.Auditor = "USA", a
	g, err := New(cfg, core, testLabeler())
	if err != nil {
		t.Fatal(err)
	}
	s := g.newSubmitter("alice")
	t.Cleanup(func() {
		go func() {
			for range core.got {
			}
		}()
		close(core.release) // later Submits return at once
		s.close()
		close(core.got)
	})
	return g, s, core, a
}

func ev(t *testing.T, uid, marks string) *Event {
	t.Helper()
	e, err := ParseEvent([]byte(position(uid, marks)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

const (
	marksU = `access='Unclassified' releasableTo='USA PAK'`
	marksR = `access='Restricted' releasableTo='USA PAK'`
)

func TestBatchOfOneUnchanged(t *testing.T) {
	g, s, core, _ := testSubmitter(t, Config{})
	e := ev(t, "solo", marksU)
	g.submit(s, nil, "c", []string{"sa"}, e)
	m := core.next(t)
	core.release <- nil
	if m.ContentType != ContentType || string(m.Body) != string(e.Raw) || m.Channel != "sa" || m.Originator != "alice" || m.Precedence != message.Routine {
		t.Fatalf("single event submitted as %q %q body %q", m.ContentType, m.Channel, m.Body)
	}
}

// Events that arrive while a Submit is in flight form the next batch, split
// in order at every change of label, and at MaxBatch.
func TestBatchGrouping(t *testing.T) {
	g, s, core, _ := testSubmitter(t, Config{MinBatch: 2, MaxBatch: 3})
	g.submit(s, nil, "c", []string{"sa"}, ev(t, "e0", marksU))
	first := core.next(t)
	marks := []string{marksU, marksU, marksR, marksR, marksR, marksR, marksR, marksU}
	for i, mk := range marks {
		g.submit(s, nil, "c", []string{"sa"}, ev(t, fmt.Sprint("e", i+1), mk))
	}
	core.release <- nil
	if got := uidsOf(t, first); !slices.Equal(got, []string{"e0"}) {
		t.Fatalf("first submit %v", got)
	}
	want := [][]string{{"e1", "e2"}, {"e3", "e4", "e5"}, {"e6", "e7"}, {"e8"}}
	for _, w := range want {
		m := core.next(t)
		core.release <- nil
		if got := uidsOf(t, m); !slices.Equal(got, w) {
			t.Fatalf("submitted %v, want %v", got, w)
		}
		if ct := m.ContentType; (len(w) > 1) != (ct == BatchContentType) {
			t.Errorf("%v submitted as %q", w, ct)
		}
	}
}

// Until a round finds MinBatch events waiting, runs go event by event;
// then any run of two is a batch until a round finds a single event.
// Each channel keeps its order, and batches stay within MaxBatchBytes.
func TestBatchLoadAndBounds(t *testing.T) {
	size := len(bareEvent([]byte(position("e1", marksU))))
	g, s, core, _ := testSubmitter(t, Config{MinBatch: 3, MaxBatchBytes: batchSize(4*size + 3)})
	type sub struct {
		ch   string
		uids []string
	}
	send := func(channels []string, from, to int) {
		for i := from; i <= to; i++ {
			g.submit(s, nil, "c", channels, ev(t, fmt.Sprint("e", i), marksU))
		}
	}
	expect := func(want ...sub) {
		t.Helper()
		for _, w := range want {
			m := core.next(t)
			core.release <- nil
			if got := uidsOf(t, m); m.Channel != w.ch || !slices.Equal(got, w.uids) {
				t.Fatalf("submitted %s %v, want %s %v", m.Channel, got, w.ch, w.uids)
			}
			if len(m.Body) > g.cfg.MaxBatchBytes {
				t.Errorf("batch of %d bytes, bound %d", len(m.Body), g.cfg.MaxBatchBytes)
			}
		}
	}
	send([]string{"sa"}, 0, 0)
	core.next(t)
	send([]string{"sa"}, 1, 2) // two waiting: not yet load
	core.release <- nil
	core.next(t) // e1 in flight
	send([]string{"sa", "chat"}, 3, 4)
	send([]string{"sa"}, 5, 7) // five waiting: load
	core.release <- nil
	expect(sub{"sa", []string{"e2"}})
	m := core.next(t)          // the first batch in flight
	send([]string{"sa"}, 8, 9) // two waiting, still loaded
	core.release <- nil
	if got := uidsOf(t, m); !slices.Equal(got, []string{"e3", "e4", "e5", "e6"}) {
		t.Fatalf("first batch %v", got)
	}
	expect(sub{"chat", []string{"e3", "e4"}}, sub{"sa", []string{"e7"}})
	m = core.next(t)
	send([]string{"sa"}, 10, 10) // one waiting: load is over
	core.release <- nil
	if got := uidsOf(t, m); !slices.Equal(got, []string{"e8", "e9"}) {
		t.Fatalf("second batch %v", got)
	}
	m = core.next(t)
	send([]string{"sa"}, 11, 12)
	core.release <- nil
	if got := uidsOf(t, m); !slices.Equal(got, []string{"e10"}) {
		t.Fatalf("got %v", got)
	}
	expect(sub{"sa", []string{"e11"}}, sub{"sa", []string{"e12"}})
}

// More urgent runs are submitted before ROUTINE ones taken in the same
// round; each channel's order is kept within a precedence.
func TestBatchPrecedenceFirst(t *testing.T) {
	_, s, _, _ := testSubmitter(t, Config{})
	mk := func(uid string, p message.Precedence) item {
		raw := []byte(position(uid, marksU))
		return item{channel: "sa", label: []byte("L"), prec: p, raw: raw, bare: bareEvent(raw), uid: uid}
	}
	groups := s.group([]item{mk("r1", message.Routine), mk("r2", message.Routine), mk("f1", message.Flash), mk("r3", message.Routine), mk("f2", message.Flash)})
	var got [][]string
	for _, gr := range groups {
		var u []string
		for _, it := range gr {
			u = append(u, it.uid)
		}
		got = append(got, u)
	}
	want := [][]string{{"f1"}, {"f2"}, {"r1", "r2"}, {"r3"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("groups %v, want %v", got, want)
	}
}

// A full queue blocks the reader until the core takes the batch; nothing
// is dropped.
func TestBatchQueueBlocksReader(t *testing.T) {
	g, s, core, _ := testSubmitter(t, Config{BatchQueue: 2, MinBatch: 1})
	g.submit(s, nil, "c", []string{"sa"}, ev(t, "e0", marksU))
	core.next(t)
	g.submit(s, nil, "c", []string{"sa"}, ev(t, "e1", marksU))
	g.submit(s, nil, "c", []string{"sa"}, ev(t, "e2", marksU))
	returned := make(chan struct{})
	go func() {
		g.submit(s, nil, "c", []string{"sa"}, ev(t, "e3", marksU))
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("the reader went on past a full queue")
	default:
	}
	core.release <- nil
	var got []string
	for len(got) < 3 {
		got = append(got, uidsOf(t, core.next(t))...)
		core.release <- nil
	}
	<-returned
	if !slices.Equal(got, []string{"e1", "e2", "e3"}) {
		t.Fatalf("got %v", got)
	}
}

// A failed batch is reported for each of its events.
func TestBatchSubmitErrorAuditedPerEvent(t *testing.T) {
	g, s, core, a := testSubmitter(t, Config{MinBatch: 2})
	g.submit(s, nil, "c", []string{"sa"}, ev(t, "e0", marksU))
	core.next(t)
	for _, u := range []string{"e1", "e2", "e3"} {
		g.submit(s, nil, "c", []string{"sa"}, ev(t, u, marksU))
	}
	core.release <- nil
	m := core.next(t)
	core.release <- errors.New("store full")
	if m.ContentType != BatchContentType {
		t.Fatalf("content type %q", m.ContentType)
	}
	g.submit(s, nil, "c", []string{"sa"}, ev(t, "e4", marksU)) // a barrier: the errors are audited before
	core.next(t)
	var uids []string
	for _, r := range a.records("error") {
		uids = append(uids, r.UID)
	}
	if !slices.Equal(uids, []string{"e1", "e2", "e3"}) {
		t.Fatalf("error records for %v", uids)
	}
	if n := len(a.records("label")); n != 5 {
		t.Errorf("%d label records, want one per event", n)
	}
}
