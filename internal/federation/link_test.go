package federation

import (
	"bytes"
	"crypto/tls"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"liaison/internal/federation/linkproto"
	"liaison/internal/federation/linksim"
	"liaison/internal/message"
)

func TestExchangeBothWays(t *testing.T) {
	p := newPair(t, nil, nil)
	var sizes = []int{1, 100, 1 << 10, 40 << 10, 200 << 10}
	var fromA, fromB []message.ID
	for i := range 50 {
		pr := message.Precedences[i%4]
		fromA = append(fromA, p.a.out.putMsg("XBB", pr, sizes[i%len(sizes)]))
		fromB = append(fromB, p.b.out.putMsg("XAA", pr, sizes[(i+2)%len(sizes)]))
	}
	waitFor(t, 10*time.Second, "all delivered", func() bool {
		return p.b.in.unique() == len(fromA) && p.a.in.unique() == len(fromB) &&
			p.a.out.len("XBB") == 0 && p.b.out.len("XAA") == 0
	})
	for _, n := range []*testNode{p.a, p.b} {
		if n.in.calls != n.in.unique() {
			t.Errorf("%s: %d Accept calls for %d messages, want no retransmission on a clean link", n.party, n.in.calls, n.in.unique())
		}
	}
	waitFor(t, 5*time.Second, "delivery reports", func() bool { return p.a.deliveredCount(Delivered) == len(fromA) })
	if got := p.a.deliveredCount(Sent); got != len(fromA) {
		t.Errorf("sent reports = %d, want %d", got, len(fromA))
	}
	p.a.m.mu.Lock()
	cs := p.a.m.peers["XBB"].sess.conn.ConnectionState()
	p.a.m.mu.Unlock()
	if cs.Version != tls.VersionTLS13 || cs.CurveID != tls.X25519MLKEM768 {
		t.Errorf("link negotiated version %x, key exchange %v; want TLS 1.3 with X25519MLKEM768", cs.Version, cs.CurveID)
	}
	if ups := p.a.eventsOf(LinkUp); len(ups) == 0 || ups[0].Party != "XBB" {
		t.Errorf("XAA link-up events = %+v, want one for XBB", ups)
	}
}

func TestFlashOvertakesRoutineBacklog(t *testing.T) {
	p := newPair(t, nil, nil)
	const backlog = 3000
	for range backlog {
		p.a.out.putMsg("XBB", message.Routine, 1<<10)
	}
	waitFor(t, 10*time.Second, "backlog draining", func() bool { return p.b.in.unique() >= 100 })
	at := p.b.in.unique()
	flash := p.a.out.putMsg("XBB", message.Flash, 1<<10)
	waitFor(t, 20*time.Second, "all delivered", func() bool { return p.b.in.unique() == backlog+1 })
	pos := slices.Index(p.b.in.order, flash)
	// Everything already sent when the FLASH was queued may arrive first:
	// at most a window and the leases at hand, never the rest of the backlog.
	if limit := at + DefaultWindow + 2*DefaultLeaseBatch + 4; pos > limit {
		t.Errorf("FLASH arrived at position %d of %d (queued when %d had arrived), want <= %d", pos, backlog+1, at, limit)
	}
}

func TestFlashPreemptsLargeTransfer(t *testing.T) {
	p := newPair(t, nil, nil)
	big := p.a.out.putMsg("XBB", message.Routine, 50<<20)
	waitFor(t, 20*time.Second, "big transfer under way", func() bool {
		st := p.b.m.Status()
		return len(st) == 1 && st[0].Partials == 1 && p.a.m.dataBytes.Load() > 2<<20
	})
	flash := p.a.out.putMsg("XBB", message.Flash, 2<<10)
	waitFor(t, 60*time.Second, "both delivered", func() bool { return p.b.in.unique() == 2 })
	if want := []message.ID{flash, big}; !slices.Equal(p.b.in.order, want) {
		t.Errorf("arrival order %v, want FLASH %v before the big ROUTINE %v", p.b.in.order, flash, big)
	}
}

func TestResumeAfterSenderRestart(t *testing.T) {
	p := newPair(t, nil, nil)
	const size = 24 << 20
	big := p.a.out.putMsg("XBB", message.Routine, size)
	for range 20 {
		p.a.out.putMsg("XBB", message.Priority, 300)
	}
	waitFor(t, 20*time.Second, "transfer under way", func() bool { return p.a.m.dataBytes.Load() > 6<<20 })
	p.a.m.Close() // the sender stops mid-transfer; its leases are released
	var held uint64
	for _, r := range p.b.m.lookup("XAA").in.resume() {
		if r.ID == big {
			held = r.Offset
		}
	}
	if held == 0 {
		t.Fatal("receiver holds no partial of the big message after the sender stopped")
	}
	// A new process for XAA, same queue.
	a2 := startNode(t, "XAA", p.certA, p.trust, p.a.out, p.a.in, nil)
	a2.m.AddPeer("XBB", p.b.addr)
	waitFor(t, 30*time.Second, "all delivered", func() bool { return p.b.in.unique() == 21 && p.a.out.len("XBB") == 0 })
	if sent := a2.m.dataBytes.Load(); uint64(sent) > size-held+64<<10 {
		t.Errorf("restarted sender wrote %d bytes; the receiver held %d of %d, so want <= %d", sent, held, size, size-held+64<<10)
	}
	if p.b.in.calls > p.b.in.unique()+20 {
		t.Errorf("%d Accept calls for %d unique messages", p.b.in.calls, p.b.in.unique())
	}
}

func TestCutsAndPartitionDeliverExactlyOnceInPrecedenceOrder(t *testing.T) {
	p, px := newPairProxy(t, nil, nil, linksim.Config{})
	waitFor(t, 5*time.Second, "link up", func() bool { return p.a.up("XBB") })

	// Cut the link repeatedly during a large transfer: it resumes.
	big := p.a.out.putMsg("XBB", message.Routine, 8<<20)
	for range 3 {
		before := p.a.m.dataBytes.Load()
		waitFor(t, 20*time.Second, "progress", func() bool { return p.a.m.dataBytes.Load() > before+1<<20 || p.b.in.unique() == 1 })
		px.CutAll()
	}
	waitFor(t, 30*time.Second, "big delivered", func() bool { return p.b.in.unique() == 1 })
	if sent := p.a.m.dataBytes.Load(); sent > 8<<20+2<<20 {
		t.Errorf("wrote %d bytes for an 8 MiB message over 3 cuts: transfers did not resume", sent)
	}

	// Partition, queue every precedence, heal.
	px.Partition()
	waitFor(t, 5*time.Second, "link down", func() bool { return !p.a.up("XBB") })
	want := map[message.ID]message.Precedence{}
	for i := range 200 {
		pr := message.Precedences[3-i%4] // ROUTINE first, FLASH last
		want[p.a.out.putMsg("XBB", pr, 512+i)] = pr
	}
	px.Heal()
	waitFor(t, 30*time.Second, "all delivered", func() bool { return p.b.in.unique() == 201 && p.a.out.len("XBB") == 0 })
	var got []message.Precedence
	for _, id := range p.b.in.order {
		if id != big {
			got = append(got, want[id])
		}
	}
	if !slices.IsSorted(got) {
		t.Errorf("after the partition healed, precedences arrived as %v, want FLASH first", got)
	}
	if p.b.in.unique() != len(want)+1 {
		t.Errorf("unique deliveries %d, want %d", p.b.in.unique(), len(want)+1)
	}
}

func TestRefusal(t *testing.T) {
	p := newPair(t, nil, nil)
	var refused message.ID
	p.b.in.refuse = func(wire []byte) error {
		if id, _ := wireID(wire); id == refused {
			return &RefusalError{Code: "not-releasable", Reason: "label not releasable to XBB"}
		}
		return nil
	}
	refused = p.a.out.putMsg("XBB", message.Priority, 100)
	ok := p.a.out.putMsg("XBB", message.Priority, 100)
	waitFor(t, 5*time.Second, "settled", func() bool { return p.a.out.len("XBB") == 0 && p.a.deliveredCount(Refused) == 1 })
	if got := p.a.out.refused[refused]; got != "not-releasable: label not releasable to XBB" {
		t.Errorf("outbox refusal = %q", got)
	}
	if p.b.in.unique() != 1 || p.b.in.order[0] != ok {
		t.Errorf("inbox holds %v, want only %v", p.b.in.order, ok)
	}
}

func TestRefusedPeers(t *testing.T) {
	caA, caB, rogue := newCA(t, "XAA"), newCA(t, "XBB"), newCA(t, "XZZ")
	certB := caB.leaf(t, "XBB", time.Time{})
	tests := []struct {
		name   string
		cert   func() ([]byte, any)
		trustB trustSet // what XBB pins
		want   string
	}{
		{"unknown CA", nil, trustSet{"XAA": caA, "XBB": caB}, "certificate"},
		{"expired", nil, trustSet{"XAA": caA, "XBB": caB}, "expired"},
		{"no agreement", nil, trustSet{"XBB": caB, "XCC": caA}, "not"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certA := caA.leaf(t, "XAA", time.Time{})
			switch tc.name {
			case "unknown CA":
				certA = rogue.leaf(t, "XAA", time.Time{})
			case "expired":
				certA = caA.leaf(t, "XAA", time.Now().Add(-time.Hour))
			}
			b := startNode(t, "XBB", certB, tc.trustB, newOutbox(), newInbox(), nil)
			b.m.AddPeer("XAA", "") // for "no agreement", configured but Authorize refuses
			a := startNode(t, "XAA", certA, trustSet{"XAA": caA, "XBB": caB}, newOutbox(), newInbox(), nil)
			a.out.putMsg("XBB", message.Flash, 10)
			a.m.AddPeer("XBB", b.addr)
			waitFor(t, 5*time.Second, "refusal reported", func() bool { return len(b.eventsOf(LinkRefused)) > 0 })
			e := b.eventsOf(LinkRefused)[0]
			if !strings.Contains(e.Reason, tc.want) {
				t.Errorf("refusal reason %q, want it to mention %q", e.Reason, tc.want)
			}
			if len(b.eventsOf(LinkUp)) != 0 || b.in.unique() != 0 {
				t.Errorf("refused peer got a link (%d up events, %d messages)", len(b.eventsOf(LinkUp)), b.in.unique())
			}
		})
	}
}

func TestHeartbeatDetectsBlackhole(t *testing.T) {
	fast := func(c *Config) { c.Heartbeat = 50 * time.Millisecond; c.DialTimeout = 300 * time.Millisecond }
	p, px := newPairProxy(t, fast, fast, linksim.Config{})
	waitFor(t, 5*time.Second, "link up", func() bool { return p.a.up("XBB") && p.b.up("XAA") })
	px.Blackhole(true)
	start := time.Now()
	waitFor(t, 5*time.Second, "dead link detected", func() bool { return !p.a.up("XBB") && !p.b.up("XAA") })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dead link took %v to detect with a 50 ms heartbeat", d)
	}
	id := p.a.out.putMsg("XBB", message.Immediate, 10)
	px.Blackhole(false)
	waitFor(t, 10*time.Second, "delivered after the link came back", func() bool { return p.b.in.unique() == 1 })
	if p.b.in.order[0] != id {
		t.Errorf("got %v, want %v", p.b.in.order[0], id)
	}
}

func TestHeldPeerKeepsQueue(t *testing.T) {
	p := newPair(t, nil, nil)
	waitFor(t, 5*time.Second, "link up", func() bool { return p.a.up("XBB") })
	p.a.m.SetAllowed("XBB", false, "agreement suspended")
	waitFor(t, 5*time.Second, "link down", func() bool { return !p.a.up("XBB") && !p.b.up("XAA") })
	id := p.a.out.putMsg("XBB", message.Flash, 10)
	p.b.m.SetAllowed("XAA", false, "agreement suspended")
	p.a.m.SetAllowed("XBB", true, "")
	// XBB still holds XAA: XAA's dials are refused, the message stays queued.
	waitFor(t, 5*time.Second, "refusal", func() bool { return len(p.b.eventsOf(LinkRefused)) > 0 })
	if p.b.in.unique() != 0 || p.a.out.len("XBB") != 1 {
		t.Fatalf("held link moved a message (%d delivered, %d queued)", p.b.in.unique(), p.a.out.len("XBB"))
	}
	if !strings.Contains(p.b.eventsOf(LinkRefused)[0].Reason, "held") {
		t.Errorf("refusal reason %q, want held", p.b.eventsOf(LinkRefused)[0].Reason)
	}
	p.b.m.SetAllowed("XAA", true, "")
	waitFor(t, 5*time.Second, "delivered", func() bool { return p.b.in.unique() == 1 && p.a.out.len("XBB") == 0 })
	if p.b.in.order[0] != id {
		t.Errorf("got %v want %v", p.b.in.order[0], id)
	}
	if st := p.a.m.Status(); !st[0].Allowed || st[0].Held != "" {
		t.Errorf("status after release %+v", st[0])
	}
}

func TestControl(t *testing.T) {
	p := newPair(t, nil, nil)
	waitFor(t, 5*time.Second, "link up", func() bool { return p.a.up("XBB") })
	if err := p.a.m.SendControl("XBB", "card", []byte("rotated")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "control received", func() bool {
		p.b.mu.Lock()
		defer p.b.mu.Unlock()
		return slices.Contains(p.b.controls, "XAA/card/rotated")
	})
	if err := p.a.m.SendControl("XCC", "card", nil); err == nil {
		t.Error("SendControl to an unknown party succeeded")
	}
}

func TestInboundReassembly(t *testing.T) {
	in := newInbound(2, 1<<20)
	id := message.NewID()
	wire := bytes.Repeat([]byte("x"), 100)
	tag := linkproto.TagOf(wire)
	d := func(off, end int) *linkproto.Data {
		return &linkproto.Data{ID: id, Tag: tag, Offset: uint64(off), Total: 100, Chunk: wire[off:end]}
	}
	if w, have, rw := in.add(d(0, 40)); w != nil || have != 40 || rw {
		t.Fatalf("first fragment: %v %d %v", w, have, rw)
	}
	if _, have, rw := in.add(d(60, 100)); !rw || have != 40 {
		t.Fatalf("gap: have %d rewind %v, want 40 true", have, rw)
	}
	if _, have, _ := in.add(d(20, 50)); have != 50 {
		t.Fatalf("overlap: have %d, want 50", have)
	}
	other := &linkproto.Data{ID: id, Tag: linkproto.Tag{1}, Offset: 50, Total: 100, Chunk: wire[50:]}
	if _, have, rw := in.add(other); !rw || have != 0 {
		t.Fatalf("different wire version: have %d rewind %v, want 0 true", have, rw)
	}
	in.add(d(0, 50))
	w, have, _ := in.add(d(50, 100))
	if !bytes.Equal(w, wire) || have != 100 || in.count() != 0 {
		t.Fatalf("complete: %d bytes, have %d, %d partials left", len(w), have, in.count())
	}
	for range 3 {
		in.add(&linkproto.Data{ID: message.NewID(), Offset: 0, Total: 10, Chunk: []byte("abc")})
	}
	if in.count() != 2 {
		t.Errorf("%d partials kept, limit 2", in.count())
	}
	in.add(&linkproto.Data{ID: message.NewID(), Offset: 0, Total: 1 << 20, Chunk: []byte("abc")})
	if in.count() != 1 || in.bytes != 1<<20 {
		t.Errorf("after a 1 MiB partial: %d partials, %d bytes reserved; want the others evicted", in.count(), in.bytes)
	}
}

func TestBothSidesDial(t *testing.T) {
	p := newPairNoDial(t, nil, nil)
	p.a.m.AddPeer("XBB", p.b.addr)
	p.b.m.AddPeer("XAA", p.a.addr)
	for range 20 {
		p.a.out.putMsg("XBB", message.Routine, 5000)
		p.b.out.putMsg("XAA", message.Flash, 100)
	}
	waitFor(t, 10*time.Second, "all delivered", func() bool {
		return p.a.in.unique() == 20 && p.b.in.unique() == 20 && p.a.out.len("XBB") == 0 && p.b.out.len("XAA") == 0
	})
	waitFor(t, 5*time.Second, "one session each", func() bool { return p.a.up("XBB") && p.b.up("XAA") })
}

func TestConfigErrors(t *testing.T) {
	_, err := New(Config{FragmentSize: 10})
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	for _, want := range []string{"Self", "TLS", "PartyOf", "Authorize", "Outbox", "Inbox", "FragmentSize"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("config error %q does not name %s", err, want)
		}
	}
}

func TestResumeAfterReceiverRestart(t *testing.T) {
	spool := t.TempDir()
	withSpool := func(c *Config) { c.SpoolDir = spool }
	p := newPair(t, nil, withSpool)
	const size = 16 << 20
	big := p.a.out.putMsg("XBB", message.Routine, size)
	waitFor(t, 20*time.Second, "transfer under way", func() bool {
		rs := p.b.m.lookup("XAA").in.resume()
		return len(rs) == 1 && rs[0].Offset > 4<<20
	})
	p.b.m.Close() // the receiver stops mid-transfer; its partial stays on disk
	before := p.a.m.dataBytes.Load()
	b2 := startNode(t, "XBB", p.certB, p.trust, p.b.out, newInbox(), withSpool)
	b2.m.AddPeer("XAA", "")
	rs := b2.m.lookup("XAA").in.resume()
	if len(rs) != 1 || rs[0].ID != big || rs[0].Offset == 0 {
		t.Fatalf("restarted receiver resumes %+v, want the partial of %v", rs, big)
	}
	held := rs[0].Offset
	p.a.m.AddPeer("XBB", b2.addr)
	waitFor(t, 30*time.Second, "delivered", func() bool { return b2.in.unique() == 1 && p.a.out.len("XBB") == 0 })
	if sent := p.a.m.dataBytes.Load() - before; uint64(sent) > size-held+1<<20 {
		t.Errorf("after the receiver restarted the sender wrote %d bytes; it held %d of %d", sent, held, size)
	}
	if ents, _ := filepath.Glob(filepath.Join(spool, "*", "*.part")); len(ents) != 0 {
		t.Errorf("spool files left after delivery: %v", ents)
	}
}

func TestInboxFailureRetries(t *testing.T) {
	p := newPair(t, nil, nil)
	var mu sync.Mutex
	fails := 2
	p.b.in.refuse = func([]byte) error {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return errors.New("store unavailable")
		}
		return nil
	}
	id := p.a.out.putMsg("XBB", message.Immediate, 40<<10)
	waitFor(t, 10*time.Second, "delivered after the store recovered", func() bool { return p.b.in.unique() == 1 && p.a.out.len("XBB") == 0 })
	if p.b.in.order[0] != id || p.b.in.calls != 1 {
		t.Errorf("inbox has %v after %d stored calls, want %v once", p.b.in.order, p.b.in.calls, id)
	}
	if downs := p.a.eventsOf(LinkDown); len(downs) < 2 || !strings.Contains(downs[0].Reason, "could not store") {
		t.Errorf("sender saw link-down events %+v, want the receiver's reason twice", downs)
	}
}

func TestWindowAndFlashBypass(t *testing.T) {
	const window = 5
	p := newPair(t, func(c *Config) { c.Window = window }, nil)
	p.b.in.gate = make(chan struct{}) // the receiver's store is slow: nothing commits
	for range 20 {
		p.a.out.putMsg("XBB", message.Routine, 100)
	}
	inflight := func() int { return p.a.m.Status()[0].InFlight }
	most := 0
	waitFor(t, 5*time.Second, "window full", func() bool { most = max(most, inflight()); return inflight() == window })
	flash := p.a.out.putMsg("XBB", message.Flash, 100)
	waitFor(t, 5*time.Second, "FLASH started past the full window", func() bool {
		most = max(most, inflight())
		return inflight() == window+1
	})
	// From here on custody ACKs free the window at once, while Status
	// counts a message until the Outbox has deleted it: InFlight lags the
	// window and is no measure of it.
	close(p.b.in.gate)
	waitFor(t, 10*time.Second, "all delivered", func() bool {
		return p.b.in.unique() == 21 && p.a.out.len("XBB") == 0
	})
	if most > window+1 {
		t.Errorf("%d messages in flight at once, window %d (+1 FLASH)", most, window)
	}
	if !slices.Contains(p.b.in.order, flash) {
		t.Error("FLASH not delivered")
	}
}

func TestSessionSetupBytes(t *testing.T) {
	p, px := newPairProxy(t, nil, nil, linksim.Config{})
	waitFor(t, 5*time.Second, "link up", func() bool { return p.a.up("XBB") && p.b.up("XAA") })
	up, down := px.Bytes()
	first := up + down
	px.CutAll()
	waitFor(t, 5*time.Second, "link back", func() bool { return len(p.a.eventsOf(LinkUp)) == 2 && p.a.up("XBB") && p.b.up("XAA") })
	up, down = px.Bytes()
	again := up + down - first
	// TLS 1.3 mutual auth with X25519MLKEM768, P-256 certificates, no
	// session tickets, both HELLOs: about 4.1 KB each time.
	const limit = 4500
	if first > limit || again > limit {
		t.Errorf("session set-up took %d then %d bytes, want <= %d each", first, again, limit)
	}
	id := p.a.out.putMsg("XBB", message.Flash, 10)
	waitFor(t, 5*time.Second, "delivered after reconnect", func() bool { return p.b.in.unique() == 1 && p.b.in.order[0] == id })
}

func TestFlashBypassesFullPipe(t *testing.T) {
	// Single-fragment messages hold the pipe until their custody ACK; the
	// receiver's store is stuck, so ROUTINE fills the pipe, not the window.
	const size = 100 // wire bytes 116: a pipe of 1024 takes 9
	p := newPair(t, func(c *Config) { c.FragmentSize, c.PipeBytes, c.Window = 1024, 1024, 1000 }, nil)
	p.b.in.gate = make(chan struct{})
	var routine []message.ID
	for range 20 {
		routine = append(routine, p.a.out.putMsg("XBB", message.Routine, size))
	}
	inflight := func() int { return p.a.m.Status()[0].InFlight }
	waitFor(t, 5*time.Second, "pipe full of ROUTINE", func() bool { return inflight() == 9 })
	flash := p.a.out.putMsg("XBB", message.Flash, size)
	waitFor(t, 5*time.Second, "FLASH started past the full pipe", func() bool { return inflight() == 10 })
	close(p.b.in.gate)
	waitFor(t, 10*time.Second, "all delivered", func() bool { return p.b.in.unique() == 21 && p.a.out.len("XBB") == 0 })
	p.b.in.mu.Lock()
	defer p.b.in.mu.Unlock()
	pos := slices.Index(p.b.in.order, flash)
	if pos > 9 {
		t.Errorf("FLASH stored at position %d, want before the ROUTINE still queued behind the pipe (<= 9)", pos)
	}
	// FIFO within ROUTINE, whatever the FLASH did.
	var got []message.ID
	for _, id := range p.b.in.order {
		if id != flash {
			got = append(got, id)
		}
	}
	if !slices.Equal(got, routine) {
		t.Error("ROUTINE not stored in the order queued")
	}
}

// TestAcksGather: custody ACKs that arrive in many frames (the receiver
// stores one message at a time) reach the Outbox in one call once
// AckGather of them came, and a few ACKs that never make AckGather are
// written when AckLinger runs out.
func TestAcksGather(t *testing.T) {
	acks := func(p *pairT) (calls, acked int) {
		p.a.out.mu.Lock()
		defer p.a.out.mu.Unlock()
		return p.a.out.ackCalls, p.a.out.acked
	}
	t.Run("gather", func(t *testing.T) {
		p := newPair(t, func(c *Config) { c.AckLinger, c.AckGather = time.Minute, 20 }, func(c *Config) { c.AcceptBatch = 1 })
		for range 20 {
			p.a.out.putMsg("XBB", message.Routine, 100)
		}
		waitFor(t, 10*time.Second, "all acknowledged", func() bool { return p.a.out.len("XBB") == 0 })
		if calls, acked := acks(p); calls != 1 || acked != 20 {
			t.Errorf("20 custody ACKs, one message a commit, reached the Outbox in %d calls (%d ACKs), want 1", calls, acked)
		}
		if b := p.b.in.batchCount(); b < 10 {
			t.Fatalf("the receiver stored them in %d batches: its ACKs did not come one at a time", b)
		}
	})
	t.Run("linger", func(t *testing.T) {
		p := newPair(t, func(c *Config) { c.AckLinger, c.AckGather = 20*time.Millisecond, 1000 }, nil)
		for range 3 {
			p.a.out.putMsg("XBB", message.Routine, 100)
		}
		waitFor(t, 10*time.Second, "all acknowledged", func() bool { return p.a.out.len("XBB") == 0 })
		if _, acked := acks(p); acked != 3 {
			t.Errorf("%d ACKs reached the Outbox, want 3", acked)
		}
	})
}
