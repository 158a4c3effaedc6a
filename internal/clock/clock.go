// Package clock gives Liaison's long-lived components their notion of now.
//
// Agreements come into force and expire by the calendar, so every decision
// that depends on time takes it from a [Clock]. Production nodes use [Real];
// tests and the demo use a [Sim], which moves only when told to, so that a
// fifteen-year term passes in a second and no test sleeps.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// Real is the system clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Sim is a simulated clock that moves only by [Sim.Set] and [Sim.Advance].
// Watchers registered with [Sim.Watch] are signalled after every move, so
// components that act on time (agreement expiry) react without polling.
type Sim struct {
	mu       sync.Mutex // guards the fields below
	now      time.Time
	watchers []chan struct{}
}

// NewSim returns a simulated clock reading start.
func NewSim(start time.Time) *Sim { return &Sim{now: start} }

// Now returns the simulated time.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Set moves the clock to t (forwards or backwards) and signals watchers.
func (s *Sim) Set(t time.Time) {
	s.mu.Lock()
	s.now = t
	ws := append([]chan struct{}(nil), s.watchers...)
	s.mu.Unlock()
	for _, w := range ws {
		select {
		case w <- struct{}{}:
		default: // a signal is already pending
		}
	}
}

// Advance moves the clock forward by d.
func (s *Sim) Advance(d time.Duration) { s.Set(s.Now().Add(d)) }

// Watch returns a channel that receives a value after the clock moves. The
// channel has a buffer of one: several moves between reads coalesce.
func (s *Sim) Watch() <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.watchers = append(s.watchers, ch)
	s.mu.Unlock()
	return ch
}

// Watcher is implemented by clocks that signal their moves. A component
// that needs to react to time checks for it and otherwise polls.
type Watcher interface {
	Watch() <-chan struct{}
}

var _ Watcher = (*Sim)(nil)
