package federation

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"liaison/internal/federation/linksim"
	"liaison/internal/message"
)

// BenchmarkLink measures 1 KiB messages through the fakes over loopback
// TLS (through an unlimited linksim proxy, to count bytes on the wire).
func BenchmarkLink(b *testing.B) {
	p, px := newPairProxy(b, nil, nil, linksim.Config{})
	waitFor(b, 10*time.Second, "link up", func() bool { return p.a.up("XBB") })
	hsUp, hsDown := px.Bytes()
	const batch = 2000
	const payload = 1 << 10
	total := 0
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		for range batch {
			p.a.out.putMsg("XBB", message.Routine, payload-16)
		}
		total += batch
		waitFor(b, 60*time.Second, "batch delivered", func() bool { return p.a.out.len("XBB") == 0 })
	}
	el := time.Since(start)
	up, down := px.Bytes()
	b.ReportMetric(float64(total)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(up+down-hsUp-hsDown)/float64(total), "wire-B/msg")
	b.ReportMetric(float64(up+down-hsUp-hsDown)/float64(total)/payload, "wire/payload")
	b.ReportMetric(float64(hsUp+hsDown), "handshake-B")
}

// BenchmarkFlashLatency measures the time from queueing a FLASH to its
// acceptance by the peer, unloaded and while a 100,000-message ROUTINE
// backlog drains (run with -benchtime=1x).
func BenchmarkFlashLatency(b *testing.B) {
	benchFlash(b, 100_000, flashRun{size: 1<<10 - 16})
}

// benchFlash runs r unloaded and behind a backlog of ROUTINE messages.
func benchFlash(b *testing.B, backlog int, r flashRun) {
	for _, backlog := range []int{0, backlog} {
		name := "unloaded"
		if backlog > 0 {
			name = fmt.Sprintf("backlog=%d", backlog)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				lat, rate := flashLatencies(b, backlog, 200, r)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				if r.drain && backlog > 0 {
					b.ReportMetric(rate, "drain-msgs/s")
				}
			}
		})
	}
}

// flashRun is how flashLatencies sets up and probes a pair.
type flashRun struct {
	a, b  func(*Config) // configure the sending and receiving side (nil: defaults)
	size  int           // body bytes of every message
	gap   time.Duration // pause between probes
	drain bool          // wait for the backlog to drain and report its rate
}

// flashLatencies queues backlog ROUTINE messages, then up to samples FLASH
// probes one at a time while the backlog is still large, and returns their
// latencies sorted, with the backlog's drain rate if r.drain.
func flashLatencies(b *testing.B, backlog, samples int, r flashRun) ([]time.Duration, float64) {
	p := newPair(b, r.a, r.b)
	waitFor(b, 10*time.Second, "link up", func() bool { return p.a.up("XBB") })
	var mu sync.Mutex
	arrived := map[message.ID]chan struct{}{}
	p.b.in.onNew = func(id message.ID) {
		mu.Lock()
		if c := arrived[id]; c != nil {
			close(c)
		}
		mu.Unlock()
	}
	begin := time.Now()
	for range backlog {
		p.a.out.putMsg("XBB", message.Routine, r.size)
	}
	var lat []time.Duration
	for range samples {
		if backlog > 0 && p.a.out.len("XBB") < backlog/10 {
			break // measure while the backlog is still large
		}
		c := make(chan struct{})
		start := time.Now()
		p.a.out.putMsgWatch("XBB", message.Flash, r.size, func(id message.ID) {
			mu.Lock()
			arrived[id] = c
			mu.Unlock()
		})
		<-c
		lat = append(lat, time.Since(start))
		time.Sleep(r.gap)
	}
	if backlog > 0 {
		b.Logf("%d FLASH samples while %d ROUTINE were still queued", len(lat), p.a.out.len("XBB"))
	}
	var rate float64
	if r.drain {
		waitFor(b, 5*time.Minute, "backlog drained", func() bool { return p.b.in.unique() >= backlog+len(lat) })
		rate = float64(backlog) / time.Since(begin).Seconds()
	}
	slices.Sort(lat)
	return lat, rate
}

// BenchmarkSlowLink measures goodput and FLASH latency over an emulated
// 64 kbit/s link with 300 ms one-way delay (run with -benchtime=1x).
func BenchmarkSlowLink(b *testing.B) {
	// pipe=8KiB ≈ rate × RTT (4.8 KB) plus slack; pipe=2KiB trades
	// goodput for a shorter FLASH wait.
	for _, pipe := range []int{8 << 10, 2 << 10} {
		b.Run(fmt.Sprintf("pipe=%dKiB", pipe>>10), func(b *testing.B) { slowLink(b, pipe) })
	}
}

func slowLink(b *testing.B, pipe int) {
	const rate = 64_000
	slow := func(c *Config) {
		c.FragmentSize = 1 << 10
		c.PipeBytes = pipe
		c.Heartbeat = 10 * time.Second
	}
	for b.Loop() {
		p, px := newPairProxy(b, slow, slow, linksim.Config{Rate: rate, Delay: 300 * time.Millisecond})
		waitFor(b, 60*time.Second, "link up", func() bool { return p.a.up("XBB") })
		hsUp, hsDown := px.Bytes()
		const n, size = 40, 1 << 10
		start := time.Now()
		for range n {
			p.a.out.putMsg("XBB", message.Routine, size-16)
		}
		waitFor(b, 120*time.Second, "delivered", func() bool { return p.b.in.unique() == n })
		el := time.Since(start)
		up, down := px.Bytes()
		goodput := float64(n*size*8) / el.Seconds()
		b.ReportMetric(goodput, "goodput-bit/s")
		b.ReportMetric(100*goodput/rate, "%-of-link")
		b.ReportMetric(float64(up+down-hsUp-hsDown)/float64(n), "wire-B/msg")
		b.ReportMetric(float64(hsUp+hsDown), "handshake-B")

		// A FLASH queued while a 64 KiB ROUTINE is on the air.
		p.a.out.putMsg("XBB", message.Routine, 64<<10)
		waitFor(b, 60*time.Second, "routine under way", func() bool { return p.a.m.dataBytes.Load() > int64(n*size)+8<<10 })
		c := make(chan struct{})
		fstart := time.Now()
		p.a.out.putMsgWatch("XBB", message.Flash, 200, func(id message.ID) {
			p.b.in.mu.Lock()
			p.b.in.onNew = func(got message.ID) {
				if got == id {
					close(c)
				}
			}
			p.b.in.mu.Unlock()
		})
		<-c
		b.ReportMetric(float64(time.Since(fstart).Milliseconds()), "flash-during-64KiB-ms")
	}
}
