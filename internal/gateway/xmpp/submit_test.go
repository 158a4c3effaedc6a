package xmpp

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"liaison/internal/message"
)

// gateCore records the calls a submitter makes; the first call waits
// until release is closed. With batch false it is a plain Core.
type gateCore struct {
	entered chan struct{} // closed when the first call starts
	release chan struct{}
	once    sync.Once

	mu    sync.Mutex
	calls [][]string // bodies per call
}

func newGateCore() *gateCore {
	return &gateCore{entered: make(chan struct{}), release: make(chan struct{})}
}

func (c *gateCore) call(ms []*message.Message) []error {
	c.once.Do(func() { close(c.entered) })
	<-c.release
	c.mu.Lock()
	defer c.mu.Unlock()
	var bodies []string
	errs := make([]error, len(ms))
	for i, m := range ms {
		bodies = append(bodies, string(m.Body))
		if strings.HasPrefix(string(m.Body), "bad") {
			errs[i] = errors.New("refused " + string(m.Body))
		}
	}
	c.calls = append(c.calls, bodies)
	return errs
}

func (c *gateCore) Submit(_ context.Context, m *message.Message) error {
	return c.call([]*message.Message{m})[0]
}

func (c *gateCore) Subscribe(context.Context, string, uint64) (<-chan Delivery, error) {
	return nil, errors.New("no subscriptions")
}

type gateBatchCore struct{ *gateCore }

func (c gateBatchCore) SubmitBatch(_ context.Context, ms []*message.Message) []error {
	return c.call(ms)
}

// TestSubmitter checks that a submitter hands messages to the core in the
// order added, in batches of what queued while the core was busy (one
// call each without SubmitBatch), that refusals come back to each
// message's handler in order, and that flush waits for all of it.
func TestSubmitter(t *testing.T) {
	for _, batch := range []bool{true, false} {
		t.Run(map[bool]string{true: "batch", false: "single"}[batch], func(t *testing.T) {
			gc := newGateCore()
			var core Core = gc
			if batch {
				core = gateBatchCore{gc}
			}
			q := newSubmitter(t.Context(), core)
			var mu sync.Mutex
			var refused []string
			add := func(body string) {
				q.add(pending{m: &message.Message{Body: []byte(body)}, refused: func(err error) {
					mu.Lock()
					refused = append(refused, body+": "+err.Error())
					mu.Unlock()
				}})
			}
			add("m0")
			<-gc.entered // m0 is with the core; the rest queue behind it
			want := [][]string{{"m0"}}
			var next []string
			for i := 1; i <= submitMax+10; i++ {
				body := "m" + string(rune('0'+i%10))
				if i%7 == 0 {
					body = "bad" + body
				}
				if i == submitMax+1 {
					// The queue is full: this add waits for the core.
					close(gc.release)
				}
				add(body)
				next = append(next, body)
			}
			q.flush()
			q.stop()
			var got []string
			for _, c := range gc.calls {
				got = append(got, c...)
			}
			if !slices.Equal(got, append(want[0], next...)) {
				t.Fatalf("core got %q", got)
			}
			if !batch {
				if len(gc.calls) != len(got) {
					t.Errorf("%d calls for %d messages without SubmitBatch", len(gc.calls), len(got))
				}
			} else if len(gc.calls[1]) != submitMax {
				t.Errorf("second call took %d messages, want the %d queued", len(gc.calls[1]), submitMax)
			}
			var wantRefused []string
			for _, b := range next {
				if strings.HasPrefix(b, "bad") {
					wantRefused = append(wantRefused, b+": refused "+b)
				}
			}
			if !slices.Equal(refused, wantRefused) {
				t.Errorf("refused %q\nwant %q", refused, wantRefused)
			}
		})
	}
}

// TestSubmitterBounds checks that the queue never holds more than
// submitMax messages, however fast they come, and that stop handles
// everything queued.
func TestSubmitterBounds(t *testing.T) {
	gc := newGateCore()
	q := newSubmitter(t.Context(), gateBatchCore{gc})
	const total = 3*submitMax + 5
	added := make(chan struct{})
	go func() {
		defer close(added)
		for range total {
			q.add(pending{m: &message.Message{Body: []byte("x")}, refused: func(error) {}})
		}
	}()
	<-gc.entered
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.mu.Lock()
		n := len(q.queue)
		q.mu.Unlock()
		if n > submitMax {
			t.Fatalf("queue holds %d messages, bound %d", n, submitMax)
		}
		if n == submitMax {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue stuck at %d", n)
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	select {
	case <-added:
		t.Fatal("every add returned while the core was busy and the queue full")
	default:
	}
	close(gc.release)
	<-added
	q.stop()
	n := 0
	for _, c := range gc.calls {
		n += len(c)
		if len(c) > submitMax {
			t.Errorf("a call took %d messages, bound %d", len(c), submitMax)
		}
	}
	if n != total {
		t.Errorf("core got %d messages, want %d", n, total)
	}
}

// batchFake is the fake core with SubmitBatch; it counts the calls.
type batchFake struct {
	*fakeCore
	mu      sync.Mutex
	batches int
}

func (c *batchFake) SubmitBatch(ctx context.Context, ms []*message.Message) []error {
	c.mu.Lock()
	c.batches++
	c.mu.Unlock()
	errs := make([]error, len(ms))
	for i, m := range ms {
		errs[i] = c.Submit(ctx, m)
	}
	return errs
}

// TestSessionBatches sends a burst of chats, some of which the core
// refuses, then an XEP-0198 <r/>: the recipient gets the accepted ones in
// order, the sender gets one bounce per refusal, in order, all before the
// ack, whose h counts every message.
func TestSessionBatches(t *testing.T) {
	var bf *batchFake
	n := startNodeCore(t, newTestPKI(t), "c.test", "XCC", nil, func(c *fakeCore) Core {
		c.refuse = func(m *message.Message) error {
			if strings.HasPrefix(string(m.Body), "bad") {
				return errors.New("no")
			}
			return nil
		}
		bf = &batchFake{fakeCore: c}
		return bf
	})
	alice, bob := n.login(t, "alice"), n.login(t, "bob")
	bob.send("<enable xmlns='urn:xmpp:sm:3'/>")
	if _, _, err := bob.next("enabled", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	const total = 200
	var burst strings.Builder
	var want, wantBounced []string
	for i := range total {
		body := "m" + strings.Repeat("i", i%5) + string(rune('a'+i%26))
		if i%9 == 4 {
			body = "bad" + body
			wantBounced = append(wantBounced, "e"+body)
		} else {
			want = append(want, body)
		}
		burst.WriteString(strings.Replace(labelledChat("alice@c.test", "UNCLASSIFIED", body), "id='x'", "id='e"+body+"'", 1))
	}
	burst.WriteString("<r xmlns='urn:xmpp:sm:3'/>")
	bob.send(burst.String())
	var bounced []string
	for {
		e, _, err := bob.next("", 10*time.Second)
		if err != nil {
			t.Fatalf("after %d bounces: %v", len(bounced), err)
		}
		if e.Name.Local == "a" {
			if h := e.AttrValue("h"); h != "200" {
				t.Errorf("ack h = %s, want 200", h)
			}
			break
		}
		if e.Name.Local == "message" && e.AttrValue("type") == "error" {
			bounced = append(bounced, e.AttrValue("id"))
		}
	}
	if !slices.Equal(bounced, wantBounced) {
		t.Errorf("bounces before the ack %q\nwant %q", bounced, wantBounced)
	}
	var got []string
	for len(got) < len(want) {
		e, _, err := alice.next("message", 10*time.Second)
		if err != nil {
			t.Fatalf("alice after %d: %v", len(got), err)
		}
		got = append(got, e.Child("", "body").Text)
	}
	if !slices.Equal(got, want) {
		t.Errorf("alice got %q\nwant %q", got, want)
	}
	bf.mu.Lock()
	defer bf.mu.Unlock()
	if bf.batches == 0 {
		t.Error("SubmitBatch never called")
	}
}
