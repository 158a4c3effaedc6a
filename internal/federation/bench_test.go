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
	for _, backlog := range []int{0, 100_000} {
		name := "unloaded"
		if backlog > 0 {
			name = "backlog=100000"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				lat := flashLatencies(b, backlog, 200)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

func flashLatencies(b *testing.B, backlog, samples int) []time.Duration {
	p := newPair(b, nil, nil)
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
	for range backlog {
		p.a.out.putMsg("XBB", message.Routine, 1<<10-16)
	}
	var lat []time.Duration
	for range samples {
		if backlog > 0 && p.a.out.len("XBB") < backlog/10 {
			break // measure while the backlog is still large
		}
		c := make(chan struct{})
		start := time.Now()
		p.a.out.putMsgWatch("XBB", message.Flash, 256, func(id message.ID) {
			mu.Lock()
			arrived[id] = c
			mu.Unlock()
		})
		<-c
		lat = append(lat, time.Since(start))
	}
	if backlog > 0 {
		b.Logf("%d FLASH samples while %d ROUTINE were still queued", len(lat), p.a.out.len("XBB"))
	}
	slices.Sort(lat)
	return lat
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
