package node

import "sync"

// signal wakes every waiter when something changes. Waiters take the
// current channel with wait, check the state, and block on the channel; a
// fire closes it and installs a new one, so no wake-up is lost between the
// check and the block.
type signal struct {
	mu sync.Mutex // guards ch
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

// wait returns a channel that is closed at the next fire.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

// fire wakes every current waiter.
func (s *signal) fire() {
	s.mu.Lock()
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}
