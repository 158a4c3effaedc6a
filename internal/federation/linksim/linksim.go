// Package linksim is a TCP proxy that emulates a poor link between two
// nodes, for tests and benchmarks: a bit rate, a one-way delay, loss, cuts,
// partitions and blackholes.
//
// # Loss
//
// A TCP proxy cannot drop a segment: TCP retransmits underneath and the
// application only ever sees delay. linksim therefore emulates loss in the
// two ways an application does observe it:
//
//   - Config.CutEvery: with that probability per KiB forwarded, the
//     connection is cut (both sides closed), as a radio bearer that fades
//     out does; this exercises reconnection and resumption.
//   - Config.Stall/StallEvery: a random stall of the stream (a burst of
//     retransmissions) with that probability per KiB.
//
// Rate limiting is done at the reading side, so that bytes wait in the
// sender's socket (and in the application's pipe) rather than in a large
// proxy buffer: what linksim holds is about one chunk plus rate × delay.
package linksim

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes the emulated link; the zero value is a perfect link.
type Config struct {
	Listen     string        // address to listen on; "" is 127.0.0.1:0
	Rate       int           // bits per second in each direction; 0 is unlimited
	Delay      time.Duration // one-way propagation delay
	CutEvery   float64       // probability per KiB forwarded that the connection is cut
	StallEvery float64       // probability per KiB forwarded of a stall
	Stall      time.Duration // length of a stall
	Seed       uint64        // for the random draws; 0 picks one
}

// Proxy forwards connections from its address to a target.
type Proxy struct {
	cfg    Config
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	up, down atomic.Int64 // bytes forwarded client→target, target→client
	cuts     atomic.Int64

	mu          sync.Mutex // guards below
	rng         *rand.Rand
	conns       map[net.Conn]bool
	partitioned bool
	blackhole   bool
	resume      chan struct{} // closed when a blackhole ends
	closed      bool
}

// New starts a proxy on cfg.Listen to target.
func New(target string, cfg Config) (*Proxy, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	p := &Proxy{cfg: cfg, target: target, ln: ln, conns: map[net.Conn]bool{}, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where peers should dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Bytes returns the bytes forwarded in each direction so far.
func (p *Proxy) Bytes() (up, down int64) { return p.up.Load(), p.down.Load() }

// Cuts returns how many connections were cut by CutEvery.
func (p *Proxy) Cuts() int64 { return p.cuts.Load() }

// Partition cuts every connection and refuses new ones until Heal.
func (p *Proxy) Partition() {
	p.mu.Lock()
	p.partitioned = true
	p.mu.Unlock()
	p.CutAll()
}

// Heal ends a partition.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.partitioned = false
	p.mu.Unlock()
}

// Blackhole stops (on) or restarts (off) the flow of bytes on every
// connection without closing any: the peers see silence.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on && !p.blackhole {
		p.resume = make(chan struct{})
	}
	if !on && p.blackhole {
		close(p.resume)
	}
	p.blackhole = on
}

// CutAll closes every current connection.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.CutAll()
	p.wg.Wait()
	return nil
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.partitioned || p.closed
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		t, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[t] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(c, t, &p.up)
		go p.pump(t, c, &p.down)
	}
}

// hold waits out a blackhole.
func (p *Proxy) hold() {
	p.mu.Lock()
	bh, ch := p.blackhole, p.resume
	p.mu.Unlock()
	if bh {
		<-ch
	}
}

type chunk struct {
	b  []byte
	at time.Time
}

// pump forwards src to dst with the link's rate, delay and faults.
func (p *Proxy) pump(src, dst net.Conn, count *atomic.Int64) {
	defer p.wg.Done()
	size := 32 << 10
	if p.cfg.Rate > 0 {
		size = max(64, min(size, p.cfg.Rate/8/50)) // about 20 ms of airtime
	}
	// Bytes in propagation: at most rate×delay plus slack.
	q := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer dst.Close()
		for c := range q {
			if d := time.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			p.hold()
			if _, err := dst.Write(c.b); err != nil {
				src.Close()
				for range q {
				}
				return
			}
		}
	}()
	next := time.Now() // when the link is free to serialise the next byte
	buf := make([]byte, size)
	var err error
	for err == nil {
		var n int
		n, err = src.Read(buf)
		if n == 0 {
			continue
		}
		p.hold()
		count.Add(int64(n))
		now := time.Now()
		if next.Before(now) {
			next = now
		}
		if p.cfg.Rate > 0 {
			next = next.Add(time.Duration(int64(n) * 8 * int64(time.Second) / int64(p.cfg.Rate)))
		}
		kib := float64(n) / 1024
		p.mu.Lock()
		cut := p.cfg.CutEvery > 0 && p.rng.Float64() < p.cfg.CutEvery*kib
		stall := p.cfg.StallEvery > 0 && p.rng.Float64() < p.cfg.StallEvery*kib
		p.mu.Unlock()
		if stall {
			next = next.Add(p.cfg.Stall)
		}
		if cut {
			p.cuts.Add(1)
			err = errors.New("cut")
			break
		}
		q <- chunk{b: append([]byte(nil), buf[:n]...), at: next.Add(p.cfg.Delay)}
		if d := time.Until(next); d > 0 {
			time.Sleep(d) // serialisation: read no faster than the rate
		}
	}
	close(q)
	if err != nil && !errors.Is(err, io.EOF) {
		dst.Close()
	}
	<-done
	src.Close()
	p.mu.Lock()
	delete(p.conns, src)
	delete(p.conns, dst)
	p.mu.Unlock()
}
