package node

import (
	"context"
	"sync"
	"time"
)

// flashGate lets a FLASH message submitted here preempt the node's bulk
// work, as higher precedence preempts lower in military precedence
// schemes. From the checks of a local FLASH until it is handed to its
// links, a link's next lease and sealing of queued messages and the audit
// pump's next chunk wait, so that the FLASH has the node's CPU and its
// store writer without them. The wait is bounded (maxPause each time), so
// a stream of FLASH slows bulk work but never stops it, and a FLASH stuck
// in its store write holds nothing back for long.
type flashGate struct {
	maxPause time.Duration

	mu   sync.Mutex
	n    int           // FLASH submissions under way
	idle chan struct{} // closed while n is 0
}

func newFlashGate(maxPause time.Duration) *flashGate {
	idle := make(chan struct{})
	close(idle)
	return &flashGate{maxPause: maxPause, idle: idle}
}

// enter counts a FLASH submission in; leave, which the caller must call
// once, counts it out.
func (g *flashGate) enter() (leave func()) {
	g.mu.Lock()
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.n--
			if g.n == 0 {
				close(g.idle)
			}
			g.mu.Unlock()
		})
	}
}

// wait returns once no FLASH submission is under way, maxPause has passed
// or ctx ends, whichever comes first. A nil gate holds nothing back.
func (g *flashGate) wait(ctx context.Context) {
	if g == nil {
		return
	}
	g.mu.Lock()
	idle := g.idle
	busy := g.n > 0
	g.mu.Unlock()
	if !busy {
		return
	}
	t := time.NewTimer(g.maxPause)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
	}
}
