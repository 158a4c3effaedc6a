package federation

import (
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
