package node

import (
	"context"
	"testing"
	"time"

	"liaison/internal/message"
)

func TestFlashGate(t *testing.T) {
	g := newFlashGate(time.Hour)
	ctx := context.Background()

	// Idle: bulk work goes on at once.
	done := make(chan struct{})
	go func() { g.wait(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("wait blocked with no FLASH under way")
	}

	// Two FLASH submissions: bulk work waits for both to leave.
	leave1, leave2 := g.enter(), g.enter()
	done = make(chan struct{})
	go func() { g.wait(ctx); close(done) }()
	leave1()
	leave1() // a second call changes nothing
	select {
	case <-done:
		t.Fatal("wait returned while a FLASH was still under way")
	case <-time.After(100 * time.Millisecond):
	}
	leave2()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return once no FLASH was under way")
	}

	// A context that ends releases the wait.
	leave := g.enter()
	defer leave()
	cctx, cancel := context.WithCancel(ctx)
	done = make(chan struct{})
	go func() { g.wait(cctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return when its context ended")
	}
}

func TestFlashGateBounded(t *testing.T) {
	g := newFlashGate(50 * time.Millisecond)
	leave := g.enter() // a FLASH stuck: bulk work still goes on
	defer leave()
	done := make(chan struct{})
	go func() { g.wait(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("wait was not bounded by maxPause")
	}
}

// TestPreempt: a submission with a FLASH among its messages holds bulk
// work back until it leaves; one without does not.
func TestPreempt(t *testing.T) {
	n := &Node{flash: newFlashGate(time.Hour)}
	busy := func() bool {
		n.flash.mu.Lock()
		defer n.flash.mu.Unlock()
		return n.flash.n > 0
	}
	routine, flash := &message.Message{Precedence: message.Routine}, &message.Message{Precedence: message.Flash}
	leave := n.preempt(routine, routine)
	if busy() {
		t.Fatal("ROUTINE messages hold bulk work back")
	}
	leave()
	leave = n.preempt(routine, flash)
	if !busy() {
		t.Fatal("a FLASH among the messages does not hold bulk work back")
	}
	leave()
	if busy() {
		t.Fatal("bulk work still held back after the FLASH left")
	}
}
