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
		if got := names(q.take(2, i < 2)); fmt.Sprint(got) != fmt.Sprint(want) {
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
	big := acceptJob{prec: message.Routine, wire: make([]byte, 50)}
	if !q.push(ctx, big) {
		t.Fatal("a message larger than the byte bound must fit an empty queue")
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if q.push(short, acceptJob{prec: message.Routine, wire: []byte("a")}) {
		t.Fatal("push over the byte bound did not wait")
	}
	pushed := make(chan bool)
	go func() { pushed <- q.push(ctx, acceptJob{prec: message.Routine, wire: []byte("b")}) }()
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

// TestAcceptQueueLanes: FLASH jobs go to the FLASH accepter's takes only,
// the others to the accepter's; flashWait is open only while no FLASH
// pushed is waiting to be stored.
func TestAcceptQueueLanes(t *testing.T) {
	q := newAcceptQueue(16, 1<<20)
	ctx := context.Background()
	isOpen := func() bool {
		select {
		case <-q.flashWait():
			return true
		default:
			return false
		}
	}
	if !isOpen() {
		t.Fatal("flashWait closed on an empty queue")
	}
	q.push(ctx, acceptJob{prec: message.Routine, wire: []byte("r1")})
	q.push(ctx, acceptJob{prec: message.Flash, wire: []byte("f1")})
	q.push(ctx, acceptJob{prec: message.Immediate, wire: []byte("i1")})
	if isOpen() {
		t.Fatal("flashWait open with a FLASH queued")
	}
	if got := names(q.take(10, false)); fmt.Sprint(got) != "[i1]" {
		t.Fatalf("the accepter took %v, want [i1]: no FLASH, most urgent first", got)
	}
	if got := names(q.take(10, true)); fmt.Sprint(got) != "[f1]" {
		t.Fatalf("the FLASH accepter took %v, want [f1]", got)
	}
	if isOpen() {
		t.Fatal("flashWait open before the FLASH taken was stored")
	}
	q.flashStored(1)
	if !isOpen() {
		t.Fatal("flashWait closed after the FLASH was stored")
	}
	// A FLASH take waits for a FLASH, not for the others.
	got := make(chan []acceptJob)
	go func() { got <- q.take(10, true) }()
	select {
	case js := <-got:
		t.Fatalf("the FLASH accepter took %v with no FLASH queued", names(js))
	case <-time.After(20 * time.Millisecond):
	}
	q.push(ctx, acceptJob{prec: message.Flash, wire: []byte("f2")})
	if js := <-got; fmt.Sprint(names(js)) != "[f2]" {
		t.Fatalf("the FLASH accepter took %v, want [f2]", names(js))
	}
	q.close()
	if got := names(q.take(10, false)); fmt.Sprint(got) != "[r1]" {
		t.Fatalf("after close the accepter took %v, want what was left: [r1]", got)
	}
	if q.take(10, false) != nil || q.take(10, true) != nil {
		t.Fatal("takes after close on empty lanes did not return nil")
	}
}
