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
		if got := names(q.take(2)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("take %d = %v, want %v: most urgent precedence only, arrival order within it", i, got, want)
		}
	}
	q.close()
	if got := q.take(10); got != nil {
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
	if got := q.take(10); len(got) != 1 || len(got[0].wire) != 50 {
		t.Fatalf("take = %v", got)
	}
	if !<-pushed {
		t.Fatal("push after room was made failed")
	}
	// Closing leaves what is queued to be taken.
	q.close()
	if got := q.take(10); len(got) != 1 || string(got[0].wire) != "b" {
		t.Fatalf("take after close = %v, want the queued job", got)
	}
	if got := q.take(10); got != nil {
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
