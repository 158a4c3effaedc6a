package federation

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"liaison/internal/federation/linksim"
	"liaison/internal/message"
)

// TestSharedRangesTravelOnce sends messages whose shared ranges repeat:
// after the first, they cross the link by reference, the receiver gets
// every message's exact bytes, and across cuts (each new session starts
// with empty tables) every message still arrives exactly once.
func TestSharedRangesTravelOnce(t *testing.T) {
	p, px := newPairProxy(t, nil, nil, linksim.Config{Rate: 4 << 20})
	waitFor(t, 5*time.Second, "link up", func() bool { return p.a.up("XBB") })
	// testWire's filler is the same in every message: two ranges of it
	// (1,012 of a message's 1,216 bytes) repeat, the id before them does not.
	const size = 1200
	p.a.out.mu.Lock()
	p.a.out.shared = [][2]int{{16, 528}, {600, 1100}}
	p.a.out.mu.Unlock()
	up0, _ := px.Bytes()
	const n = 200
	for i := range n {
		p.a.out.putMsg("XBB", message.Precedences[i%4], size)
	}
	waitFor(t, 10*time.Second, "all delivered", func() bool { return p.b.in.unique() == n && p.a.out.len("XBB") == 0 })
	up, _ := px.Bytes()
	perMsg := float64(up-up0) / n
	if perMsg > (16+size)/3 {
		t.Errorf("%.0f bytes on the wire per %d-byte message: the shared ranges did not go by reference", perMsg, 16+size)
	}
	t.Logf("%.0f bytes up per %d-byte message", perMsg, 16+size)
	if p.b.in.calls != n {
		t.Errorf("%d Accept calls for %d messages on a clean link", p.b.in.calls, n)
	}

	// Cuts in the middle: new sessions, new tables.
	const m = 3000
	for i := range m {
		p.a.out.putMsg("XBB", message.Precedences[i%4], size+i%7)
	}
	midway := 0
	for range 3 {
		before := p.b.in.unique()
		waitFor(t, 10*time.Second, "progress", func() bool { return p.b.in.unique() > before+300 || p.b.in.unique() == n+m })
		if p.b.in.unique() < n+m {
			midway++
		}
		px.CutAll()
	}
	if midway == 0 {
		t.Error("every cut came after the last delivery: the test cut nothing")
	}
	waitFor(t, 30*time.Second, "all delivered after cuts", func() bool { return p.b.in.unique() == n+m && p.a.out.len("XBB") == 0 })
}

// TestFlashLeaseOnNews: while a large lease is stuck in the store, a FLASH
// queued behind the backlog is leased by the small lease the link makes on
// news, marked so (LeaseOnNews) for the Outbox to put it first, and
// delivered before the stuck lease returns.
func TestFlashLeaseOnNews(t *testing.T) {
	p := newPair(t, nil, nil)
	waitFor(t, 5*time.Second, "link up", func() bool { return p.a.up("XBB") })
	stuck := make(chan struct{})
	var news, stuckOnce atomic.Int32
	p.a.out.mu.Lock()
	p.a.out.hook = func(ctx context.Context, n int) {
		if LeaseOnNews(ctx) {
			news.Add(1)
			return
		}
		if stuckOnce.Add(1) == 3 { // let two leases through, then one sticks
			<-stuck
		}
	}
	p.a.out.mu.Unlock()
	defer close(stuck)
	for range 200 {
		p.a.out.putMsg("XBB", message.Routine, 1<<10)
	}
	waitFor(t, 5*time.Second, "a lease stuck", func() bool { return stuckOnce.Load() >= 3 })
	flash := p.a.out.putMsg("XBB", message.Flash, 1<<10)
	waitFor(t, 5*time.Second, "FLASH delivered beside the stuck lease", func() bool { return slices.Contains(p.b.in.orderCopy(), flash) })
	if news.Load() == 0 {
		t.Error("no lease was marked LeaseOnNews")
	}
}
