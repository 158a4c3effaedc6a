package federation

import (
	"context"
	"fmt"
	"testing"
	"time"

	"liaison/internal/message"
)

func TestAcceptQueueOrder(t *testing.T) {
	q := newAcceptQueue(16, 1<<20)
	ctx := context.Background()
	push := func(name string, p message.Precedence) {
		var id message.ID
		copy(id[:], name)
		if !q.push(ctx, acceptJob{id: id, prec: p, wire: []byte(name)}) {
			t.Fatalf("push %s failed", name)
		}
	}
	push("r1", message.Routine)
	push("p1", message.Priority)
	push("r2", message.Routine)
	push("f1", message.Flash)
	push("p2", message.Priority)
	push("f2", message.Flash)
	push("f3", message.Flash)
	for i, want := range [][]string{{"f1", "f2"}, {"f3"}, {"i1"}, {"p1", "p2"}, {"r1", "r2"}} {
		if i == 2 {
			push("i1", message.Immediate)
		}
		if got := names(q.take(2, false)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("take %d = %v, want %v: most urgent precedence only, arrival order within it", i, got, want)
		}
	}
	q.close()
	if got := q.take(10, false); got != nil {
		t.Fatalf("take after close on an empty queue = %v, want nil", got)
	}
	if q.push(ctx, acceptJob{wire: []byte("x")}) {
		t.Fatal("push after close succeeded")
	}
}

func TestAcceptQueueBounds(t *testing.T) {
	q := newAcceptQueue(2, 10)
	ctx := context.Background()
	big := acceptJob{wire: make([]byte, 50)}
	if !q.push(ctx, big) {
		t.Fatal("a message larger than the byte bound must fit an empty queue")
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if q.push(short, acceptJob{wire: []byte("a")}) {
		t.Fatal("push over the byte bound did not wait")
	}
	pushed := make(chan bool)
	go func() { pushed <- q.push(ctx, acceptJob{wire: []byte("b")}) }()
	if got := q.take(10, false); len(got) != 1 || len(got[0].wire) != 50 {
		t.Fatalf("take = %v", got)
	}
	if !<-pushed {
		t.Fatal("push after room was made failed")
	}
	// Closing leaves what is queued to be taken.
	q.close()
	if got := q.take(10, false); len(got) != 1 || string(got[0].wire) != "b" {
		t.Fatalf("take after close = %v, want the queued job", got)
	}
	if got := q.take(10, false); got != nil {
		t.Fatalf("second take after close = %v", got)
	}
}

func names(js []acceptJob) []string {
	var out []string
	for _, j := range js {
		out = append(out, string(j.wire))
	}
	return out
}

// With noFlash, take leaves FLASH jobs to takeFlash, which waits for them;
// once the queue closes takeFlash returns nil and take drains the rest,
// FLASH included.
func TestAcceptQueueFlashApart(t *testing.T) {
	q := newAcceptQueue(16, 1<<20)
	ctx := context.Background()
	push := func(name string, p message.Precedence) {
		var id message.ID
		copy(id[:], name)
		if !q.push(ctx, acceptJob{id: id, prec: p, wire: []byte(name)}) {
			t.Fatalf("push %s failed", name)
		}
	}
	push("r1", message.Routine)
	push("f1", message.Flash)
	if got := names(q.take(10, true)); fmt.Sprint(got) != "[r1]" {
		t.Fatalf("take without FLASH = %v, want [r1]", got)
	}
	if got := names(q.takeFlash(10)); fmt.Sprint(got) != "[f1]" {
		t.Fatalf("takeFlash = %v, want [f1]", got)
	}
	// takeFlash waits for a FLASH, not for anything else.
	got := make(chan []acceptJob, 1)
	go func() { got <- q.takeFlash(10) }()
	push("r2", message.Routine)
	select {
	case g := <-got:
		t.Fatalf("takeFlash returned %v for a ROUTINE push", names(g))
	case <-time.After(50 * time.Millisecond):
	}
	push("f2", message.Flash)
	if g := names(<-got); fmt.Sprint(g) != "[f2]" {
		t.Fatalf("takeFlash = %v, want [f2]", g)
	}
	// Closing: takeFlash stops; take drains FLASH too.
	push("f3", message.Flash)
	q.close()
	if g := q.takeFlash(10); g != nil {
		t.Fatalf("takeFlash after close = %v, want nil", names(g))
	}
	if g := names(q.take(10, true)); fmt.Sprint(g) != "[f3]" {
		t.Fatalf("take after close = %v, want [f3]", g)
	}
	if g := names(q.take(10, true)); fmt.Sprint(g) != "[r2]" {
		t.Fatalf("take after close = %v, want [r2]", g)
	}
	if g := q.take(10, true); g != nil {
		t.Fatalf("take on the closed, empty queue = %v", names(g))
	}
}
