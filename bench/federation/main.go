// Command federation measures Liaison's federation end to end: 1 KiB
// messages from a USA node to a PAK node on loopback, each real (SQLite
// store on disk with synchronous=FULL, audit log on, TLS 1.3 link with
// hybrid post-quantum key exchange, messages sealed to PAK's HPKE key,
// labels checked and mapped), through a linksim proxy that counts the
// bytes on the wire. As in any deployment, each node runs in a process of
// its own (PAK and the proxy are this binary, started by it with
// -pak-home and -proxy-to and driven over their stdin and stdout; PAK
// reports each arrival with the time its subscriber saw it), so each has
// its own Go runtime; -one-process runs both nodes and the proxy in one.
//
//	go run ./bench/federation -duration 10s -backlog 100000
//
// It reports, each next to a baseline measured in the same run:
//
//   - throughput and p50/p99 latency from Submit at USA to the message's
//     appearance in PAK's channel (node.Subscribe), next to the raw
//     durable append rate of the store alone (store.Accept from 64
//     goroutines on a temp file);
//   - FLASH p99 latency while a ROUTINE backlog (-backlog, queued while the
//     link was partitioned) drains, next to FLASH p99 on an idle link (400
//     probes, about as many as a 100,000 backlog's drain takes: the p99 of
//     100 is the second-largest sample and swung 11-29 ms between runs);
//   - bytes on the wire per message next to the payload size;
//   - goodput over an emulated poor link (-poor-*: 64 kbit/s, 300 ms one
//     way, stalls with probability 2% per KiB as linksim emulates loss) as a
//     share of the link rate.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"liaison/bench/internal/rig"
	"liaison/internal/federation/linksim"
	"liaison/internal/message"
)

type options struct {
	duration    time.Duration
	size        int
	senders     int
	backlog     int
	probes      int
	poorRate    int
	poorDelay   time.Duration
	poorStallP  float64
	poorStall   time.Duration
	poorCutP    float64
	poorSize    int
	poorFor     time.Duration
	dir         string
	cpuProfile  string
	skipBacklog bool
	skipPoor    bool
	oneProcess  bool
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long senders submit in the throughput run")
	flag.IntVar(&o.size, "size", 1024, "message body bytes")
	flag.IntVar(&o.senders, "senders", 64, "concurrent submitters at USA (and raw-store goroutines)")
	flag.IntVar(&o.backlog, "backlog", 10000, "ROUTINE messages queued behind a partition before FLASH probes")
	flag.IntVar(&o.probes, "probes", 400, "FLASH probes on the idle link (about as many as the backlog run takes, so that both p99 come from samples of a size)")
	flag.IntVar(&o.poorRate, "poor-rate", 64000, "poor link: bits per second each way")
	flag.DurationVar(&o.poorDelay, "poor-delay", 300*time.Millisecond, "poor link: one-way delay")
	flag.Float64Var(&o.poorStallP, "poor-stall-every", 0.02, "poor link: stall probability per KiB (linksim's loss emulation)")
	flag.DurationVar(&o.poorStall, "poor-stall", 600*time.Millisecond, "poor link: length of a stall (one retransmission round trip)")
	flag.Float64Var(&o.poorCutP, "poor-cut-every", 0, "poor link: probability per KiB that the connection is cut")
	flag.IntVar(&o.poorSize, "poor-size", 200, "poor link: message body bytes")
	flag.DurationVar(&o.poorFor, "poor-duration", 20*time.Second, "poor link: measurement window")
	flag.StringVar(&o.dir, "dir", "", "directory for the homes (default: a new temp dir, removed after)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the throughput run to this file (of USA's process; both nodes with -one-process)")
	flag.BoolVar(&o.skipBacklog, "skip-backlog", false, "skip the FLASH-behind-backlog run")
	flag.BoolVar(&o.skipPoor, "skip-poor", false, "skip the poor-link run")
	flag.IntVar(&rig.LeaseBatch, "lease-batch", 0, "messages a link leases from the store at a time (0: the node's default)")
	flag.BoolVar(&o.oneProcess, "one-process", false, "run PAK in this process instead of a process of its own (the two nodes then share one Go runtime)")
	pakHome := flag.String("pak-home", "", "internal: run as PAK's process on this home (the bench starts it)")
	proxyTo := flag.String("proxy-to", "", "internal: run as the proxy's process, to this address (the bench starts it)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060) while running")
	flag.Parse()
	if *pakHome != "" || *proxyTo != "" {
		var err error
		if *pakHome != "" {
			err = runChildPAK(*pakHome)
		} else {
			err = runChildProxy(*proxyTo)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "federation bench, child process:", err)
			os.Exit(1)
		}
		return
	}
	if *pprofAddr != "" {
		go http.ListenAndServe(*pprofAddr, nil)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "federation bench:", err)
		os.Exit(1)
	}
}

// tracker matches arrivals at PAK with submissions at USA.
type tracker struct {
	mu        sync.Mutex
	sent      map[message.ID]time.Time
	waiters   map[message.ID]chan time.Duration
	lat       [message.Routine + 1]*rig.Latencies // per precedence, current run
	delivered atomic.Int64
	bytes     atomic.Int64
	last      atomic.Int64 // unix nanos of the last arrival
}

func newTracker() *tracker {
	t := &tracker{sent: map[message.ID]time.Time{}, waiters: map[message.ID]chan time.Duration{}}
	t.reset()
	return t
}

// reset starts a new run's latency samples.
func (t *tracker) reset() {
	t.mu.Lock()
	for i := range t.lat {
		t.lat[i] = &rig.Latencies{}
	}
	t.mu.Unlock()
}

func (t *tracker) latencies(p message.Precedence) *rig.Latencies {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lat[p]
}

func (t *tracker) submitted(id message.ID, at time.Time, wait chan time.Duration) {
	t.mu.Lock()
	t.sent[id] = at
	if wait != nil {
		t.waiters[id] = wait
	}
	t.mu.Unlock()
}

func (t *tracker) arrived(a arrival) {
	t.mu.Lock()
	sent, ok := t.sent[a.id]
	delete(t.sent, a.id)
	w := t.waiters[a.id]
	delete(t.waiters, a.id)
	lat := t.lat[a.prec]
	t.mu.Unlock()
	if !ok {
		return
	}
	d := a.at.Sub(sent)
	lat.Add(d)
	t.delivered.Add(1)
	t.bytes.Add(int64(a.size))
	t.last.Store(a.at.UnixNano())
	if w != nil {
		w <- d
	}
}

type bench struct {
	o     options
	usa   *rig.Party
	pak   receiver
	proxy wire
	t     *tracker
	lbl   []byte
}

func run(o options) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if o.dir == "" {
		var err error
		if o.dir, err = os.MkdirTemp("", "liaison-bench-fed-"); err != nil {
			return err
		}
		defer os.RemoveAll(o.dir)
	}
	start := time.Now()
	b := &bench{o: o, t: newTracker()}
	fmt.Printf("federation bench: %d B bodies, GOMAXPROCS=%d, %s, dir %s\n", o.size, runtime.GOMAXPROCS(0), b.layout(), o.dir)
	var err error
	fmt.Println("starting USA and PAK nodes, exchanging cards, signing the agreement...")
	if b.usa, err = rig.NewParty(ctx, o.dir, "USA", nil); err != nil {
		return err
	}
	defer b.usa.Node.Close()
	pak, err := rig.NewParty(ctx, o.dir, "PAK", nil)
	if err != nil {
		return err
	}
	if err := rig.Exchange(ctx, b.usa, pak); err != nil {
		pak.Node.Close()
		return err
	}
	if err := rig.Agree(ctx, b.usa, pak); err != nil {
		pak.Node.Close()
		return err
	}
	if o.oneProcess {
		local := localPAK{pak}
		b.pak = local
		if err := local.subscribe(ctx, b.t.arrived); err != nil {
			local.close()
			return err
		}
	} else {
		// PAK's home is ready: hand it to a process of its own.
		if err := pak.Node.Close(); err != nil {
			return err
		}
		if b.pak, err = startChildPAK(ctx, pak.Home, b.t.arrived); err != nil {
			return err
		}
	}
	defer b.pak.close()
	if o.oneProcess {
		b.proxy, err = linksim.New(b.pak.addr(), linksim.Config{})
	} else {
		b.proxy, err = startChildProxy(ctx, b.pak.addr())
	}
	if err != nil {
		return err
	}
	defer b.proxy.Close()
	if err := b.usa.Node.AddPeer("PAK", b.proxy.Addr()); err != nil {
		return err
	}
	if !rig.WaitFor(ctx, 20*time.Second, func() bool { return rig.LinkState(ctx, b.usa, "PAK") == "up" }) {
		return fmt.Errorf("the USA–PAK link did not come up: %s", rig.LinkState(ctx, b.usa, "PAK"))
	}
	b.lbl = b.usa.Label()
	fmt.Printf("link up after %s\n", time.Since(start).Round(time.Millisecond))

	// Warm up: TLS session, statements, caches.
	if _, err := b.flood(ctx, 500*time.Millisecond, message.Routine, o.size); err != nil {
		return err
	}
	b.drain(ctx, 30*time.Second)

	fmt.Printf("baseline: store.Accept directly, %d goroutines, %s...\n", o.senders, o.duration)
	body := rig.Body(o.size)
	raw, err := rig.RawStore(ctx, o.dir, o.senders, o.duration, func() *message.Message { return b.usa.Message(message.Routine, b.lbl, body) })
	if err != nil {
		return err
	}
	fmt.Println("  ", raw)

	fmt.Printf("throughput: %d submitters at USA for %s, until PAK has them all...\n", o.senders, o.duration)
	tp, err := b.throughput(ctx)
	if err != nil {
		return err
	}

	fmt.Printf("FLASH on the idle link: %d probes, one at a time...\n", o.probes)
	idle, idleAcc, err := b.probe(ctx, o.probes, nil)
	if err != nil {
		return err
	}
	fmt.Printf("   FLASH idle p50 %s p99 %s\n", rig.Round(idle.Pct(50)), rig.Round(idle.Pct(99)))

	var loaded *rig.Latencies
	var bl backlogResult
	if !o.skipBacklog {
		if loaded, bl, err = b.backlog(ctx); err != nil {
			return err
		}
	}
	var poor poorResult
	if !o.skipPoor {
		if poor, err = b.poorLink(ctx); err != nil {
			return err
		}
	}

	fmt.Printf("\nResults (%d B bodies, GOMAXPROCS=%d, %s, total run %s)\n", o.size, runtime.GOMAXPROCS(0), b.layout(), time.Since(start).Round(time.Second))
	fmt.Printf("  raw store.Accept, %d goroutines            %s\n", o.senders, raw)
	fmt.Printf("  USA→PAK end to end, %d submitters          %9.0f msgs/s  p50 %8s  p99 %8s  = %.2f× raw (goal ≥ 0.5×: %s)\n",
		o.senders, tp.rate, rig.Round(tp.p50), rig.Round(tp.p99), tp.rate/raw.PerSec(), verdict(tp.rate/raw.PerSec() >= 0.5))
	fmt.Printf("  CPU during it                              %.2f cores (both nodes and the load; not the proxy) of %d\n", tp.cpu, runtime.NumCPU())
	if tp.commits != "" {
		fmt.Printf("     USA's store during it                   %s\n", tp.commits)
	}
	fmt.Printf("  audit entries/s during it                  USA %.0f, PAK %.0f (%.1f and %.1f per message)\n", tp.auditUSA, tp.auditPAK, tp.auditUSA/tp.rate, tp.auditPAK/tp.rate)
	fmt.Printf("  wire bytes per message                     %.0f B up + %.0f B down for a %d B body (%.2f× the body; the label alone is %d B)\n", tp.up, tp.down, o.size, (tp.up+tp.down)/float64(o.size), len(b.lbl))
	fmt.Printf("  FLASH idle                                 p50 %8s  p99 %8s  (%d probes)\n", rig.Round(idle.Pct(50)), rig.Round(idle.Pct(99)), idle.Len())
	fmt.Printf("     of which USA's accept                   p50 %8s  p99 %8s\n", rig.Round(idleAcc.Pct(50)), rig.Round(idleAcc.Pct(99)))
	if loaded != nil {
		r := float64(loaded.Pct(99)) / float64(idle.Pct(99))
		fmt.Printf("  FLASH behind %d ROUTINE draining          p50 %8s  p99 %8s  (%d probes) = %.2f× idle p99 (goal ≤ 2×: %s)\n",
			o.backlog, rig.Round(loaded.Pct(50)), rig.Round(loaded.Pct(99)), loaded.Len(), r, verdict(r <= 2))
		fmt.Printf("     of which USA's accept                   p50 %8s  p99 %8s\n", rig.Round(bl.accept.Pct(50)), rig.Round(bl.accept.Pct(99)))
		fmt.Printf("  backlog: queued in %s (%.0f msgs/s), drained in %s (%.0f msgs/s, %.2f cores)\n", bl.queue.Round(time.Millisecond), float64(o.backlog)/bl.queue.Seconds(), bl.drain.Round(time.Millisecond), float64(o.backlog)/bl.drain.Seconds(), bl.cpu)
		if bl.commits != "" {
			fmt.Printf("     USA's store while it drained            %s\n", bl.commits)
		}
	}
	if !o.skipPoor {
		fmt.Printf("  poor link %d bit/s, %s one way, stall p=%.3f/KiB × %s, cut p=%.3f/KiB\n", o.poorRate, o.poorDelay, o.poorStallP, o.poorStall, o.poorCutP)
		fmt.Printf("     %d B bodies: %d delivered in %s, goodput %.0f bit/s = %.1f%% of the link rate; %.0f B on the wire per message (%.1f%% payload); %d cuts\n",
			o.poorSize, poor.n, poor.window.Round(time.Millisecond), poor.goodput, 100*poor.goodput/float64(o.poorRate), poor.wirePerMsg, 100*float64(o.poorSize)/poor.wirePerMsg, poor.cuts)
	}
	return nil
}

// layout says where the nodes run.
func (b *bench) layout() string {
	if b.o.oneProcess {
		return "USA and PAK in one process"
	}
	return "USA, PAK and the proxy each in a process of its own"
}

// cpu is the CPU time used so far by both nodes and the load.
func (b *bench) cpu() time.Duration { return rig.CPU() + b.pak.cpu() }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// submit submits one message at USA and notes its time.
func (b *bench) submit(ctx context.Context, prec message.Precedence, body []byte, wait chan time.Duration) error {
	m := b.usa.Message(prec, b.lbl, body)
	b.t.submitted(m.ID, time.Now(), wait)
	rc, err := b.usa.Node.Submit(ctx, m)
	if err != nil {
		return err
	}
	if len(rc.Recipients) != 1 || rc.Recipients[0].State != "queued" {
		return fmt.Errorf("message not released to PAK: %+v", rc.Recipients)
	}
	return nil
}

// flood submits from o.senders goroutines for d and returns how many.
func (b *bench) flood(ctx context.Context, d time.Duration, prec message.Precedence, size int) (int64, error) {
	body := rig.Body(size)
	r, err := rig.Load(ctx, b.o.senders, d, func(ctx context.Context) error { return b.submit(ctx, prec, body, nil) })
	return r.N, err
}

// drain waits until every submitted message arrived (or d passes).
func (b *bench) drain(ctx context.Context, d time.Duration) bool {
	return rig.WaitFor(ctx, d, func() bool {
		b.t.mu.Lock()
		defer b.t.mu.Unlock()
		return len(b.t.sent) == 0
	})
}

type throughputResult struct {
	rate               float64
	p50, p99           time.Duration
	auditUSA, auditPAK float64
	up, down           float64
	cpu                float64 // cores used
	commits            string  // what USA's store committed meanwhile
}

func (b *bench) throughput(ctx context.Context) (throughputResult, error) {
	var res throughputResult
	a0, p0 := rig.SettledAuditEntries(ctx, b.usa), b.pak.auditSize(ctx)
	up0, down0 := b.proxy.Bytes()
	d0 := b.t.delivered.Load()
	b.t.reset()
	var stop func()
	if b.o.cpuProfile != "" {
		f, err := os.Create(b.o.cpuProfile)
		if err != nil {
			return res, err
		}
		pprof.StartCPUProfile(f)
		stop = func() { pprof.StopCPUProfile(); f.Close() }
	}
	commits0, _ := b.usa.Node.CommitStats()
	start, cpu0 := time.Now(), b.cpu()
	n, err := b.flood(ctx, b.o.duration, message.Routine, b.o.size)
	if err != nil {
		return res, err
	}
	fmt.Printf("   submitted %d in %s; waiting for PAK...\n", n, time.Since(start).Round(time.Millisecond))
	progress := time.NewTicker(5 * time.Second)
	go func() {
		for {
			select {
			case <-progress.C:
				fmt.Printf("   %s: PAK has %d; USA queue for PAK %v\n", time.Since(start).Round(time.Second), b.t.delivered.Load()-d0, queueDepth(ctx, b.usa, "PAK"))
			case <-ctx.Done():
				return
			}
		}
	}()
	defer progress.Stop()
	if !b.drain(ctx, 5*time.Minute) {
		return res, fmt.Errorf("PAK did not receive everything within 5 minutes")
	}
	if stop != nil {
		stop()
	}
	got := b.t.delivered.Load() - d0
	elapsed := time.Unix(0, b.t.last.Load()).Sub(start)
	res.cpu = float64(b.cpu()-cpu0) / float64(time.Since(start))
	if c, ok := b.usa.Node.CommitStats(); ok {
		c = c.Sub(commits0)
		res.commits = fmt.Sprintf("%d durable and %d relaxed commits; %s", c.Durable, c.Relaxed, rig.Commits(c))
	}
	up1, down1 := b.proxy.Bytes()
	a1, p1 := rig.SettledAuditEntries(ctx, b.usa), b.pak.auditSize(ctx)
	lat := b.t.latencies(message.Routine)
	res.rate = float64(got) / elapsed.Seconds()
	res.p50, res.p99 = lat.Pct(50), lat.Pct(99)
	res.auditUSA, res.auditPAK = float64(a1-a0)/elapsed.Seconds(), float64(p1-p0)/elapsed.Seconds()
	res.up, res.down = float64(up1-up0)/float64(got), float64(down1-down0)/float64(got)
	fmt.Printf("   %d delivered in %s: %.0f msgs/s, p50 %s p99 %s; %.0f+%.0f wire B/msg\n", got, elapsed.Round(time.Millisecond), res.rate, rig.Round(res.p50), rig.Round(res.p99), res.up, res.down)
	return res, nil
}

// probe sends FLASH messages one at a time, each after the previous
// arrived plus a 20 ms gap, until k were sent or more() says stop.
// It returns the latencies to PAK's subscriber and, of the same probes,
// those of USA's accept (Submit: checked and stored durably at USA).
func (b *bench) probe(ctx context.Context, k int, more func() bool) (lat, accept *rig.Latencies, _ error) {
	lat, accept = &rig.Latencies{}, &rig.Latencies{}
	body := rig.Body(b.o.size)
	for i := 0; (k == 0 || i < k) && (more == nil || more()); i++ {
		w := make(chan time.Duration, 1)
		start := time.Now()
		if err := b.submit(ctx, message.Flash, body, w); err != nil {
			return nil, nil, err
		}
		accept.Add(time.Since(start))
		select {
		case d := <-w:
			lat.Add(d)
		case <-time.After(2 * time.Minute):
			return nil, nil, fmt.Errorf("FLASH probe %d did not arrive within 2 minutes", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return lat, accept, nil
}

type backlogResult struct {
	queue, drain time.Duration
	cpu          float64        // cores used while draining
	accept       *rig.Latencies // USA's accept of the FLASH probes
	commits      string         // what USA's store committed while draining
}

// backlog partitions the link, queues o.backlog ROUTINE messages, heals
// the link and probes FLASH latency until the backlog has drained.
func (b *bench) backlog(ctx context.Context) (*rig.Latencies, backlogResult, error) {
	var res backlogResult
	fmt.Printf("FLASH behind a backlog: partition, queue %d ROUTINE, heal, probe FLASH while it drains...\n", b.o.backlog)
	b.proxy.Partition()
	if !rig.WaitFor(ctx, 20*time.Second, func() bool { return rig.LinkState(ctx, b.usa, "PAK") != "up" }) {
		return nil, res, fmt.Errorf("the partition did not take the link down")
	}
	start := time.Now()
	body := rig.Body(b.o.size)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range b.o.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.o.backlog) {
				if err := b.submit(ctx, message.Routine, body, nil); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	tick := time.NewTicker(5 * time.Second)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			fmt.Printf("   queued %d of %d...\n", min(next.Load(), int64(b.o.backlog)), b.o.backlog)
		}
	}
	tick.Stop()
	if firstErr != nil {
		return nil, res, firstErr
	}
	res.queue = time.Since(start)
	fmt.Printf("   queued %d in %s; healing the link\n", b.o.backlog, res.queue.Round(time.Millisecond))
	b.t.reset()
	b.proxy.Heal()
	healed, cpu0 := time.Now(), b.cpu()
	commits0, _ := b.usa.Node.CommitStats()
	if !rig.WaitFor(ctx, 30*time.Second, func() bool { return rig.LinkState(ctx, b.usa, "PAK") == "up" }) {
		return nil, res, fmt.Errorf("the link did not come back")
	}
	pending := func() int {
		b.t.mu.Lock()
		defer b.t.mu.Unlock()
		return len(b.t.sent)
	}
	var lastPrint time.Time
	lat, acc, err := b.probe(ctx, 0, func() bool {
		p := pending()
		if time.Since(lastPrint) > 5*time.Second {
			fmt.Printf("   %d ROUTINE still to arrive...\n", p)
			lastPrint = time.Now()
		}
		return p > b.o.backlog/20 // probe while at least 5% remain
	})
	if err != nil {
		return nil, res, err
	}
	if !b.drain(ctx, 10*time.Minute) {
		return nil, res, fmt.Errorf("the backlog did not drain within 10 minutes")
	}
	res.drain = time.Unix(0, b.t.last.Load()).Sub(healed)
	res.cpu = float64(b.cpu()-cpu0) / float64(time.Since(healed))
	fmt.Printf("   drained in %s; FLASH p50 %s p99 %s over %d probes\n", res.drain.Round(time.Millisecond), rig.Round(lat.Pct(50)), rig.Round(lat.Pct(99)), lat.Len())
	if c, ok := b.usa.Node.CommitStats(); ok {
		c = c.Sub(commits0)
		res.commits = fmt.Sprintf("%d durable (%.0f/s) and %d relaxed commits; %s",
			c.Durable, float64(c.Durable)/res.drain.Seconds(), c.Relaxed, rig.Commits(c))
	}
	res.accept = acc
	return lat, res, nil
}

type poorResult struct {
	n          int64
	window     time.Duration
	goodput    float64 // payload bits per second
	wirePerMsg float64
	cuts       int64
}

// poorLink re-points USA's link to PAK through a second proxy emulating a
// poor bearer, keeps a backlog of small messages queued and counts the
// payload delivered in a window.
func (b *bench) poorLink(ctx context.Context) (poorResult, error) {
	var res poorResult
	o := b.o
	fmt.Printf("poor link: %d bit/s, %s one way, stalls p=%.3f/KiB × %s, cuts p=%.3f/KiB; %d B bodies for %s...\n",
		o.poorRate, o.poorDelay, o.poorStallP, o.poorStall, o.poorCutP, o.poorSize, o.poorFor)
	poor, err := linksim.New(b.pak.addr(), linksim.Config{Rate: o.poorRate, Delay: o.poorDelay, StallEvery: o.poorStallP, Stall: o.poorStall, CutEvery: o.poorCutP})
	if err != nil {
		return res, err
	}
	defer poor.Close()
	if err := b.usa.Node.AddPeer("PAK", poor.Addr()); err != nil {
		return res, err
	}
	b.proxy.Partition()
	if !rig.WaitFor(ctx, 60*time.Second, func() bool {
		up, _ := poor.Bytes()
		return up > 0 && rig.LinkState(ctx, b.usa, "PAK") == "up"
	}) {
		return res, fmt.Errorf("the link did not come up over the poor proxy")
	}
	b.t.reset()
	body := rig.Body(o.poorSize)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Keep about 30 s of link time queued, so the link never idles.
	window := int64(max(50, 30*o.poorRate/8/(o.poorSize+1500)))
	sent := atomic.Int64{}
	errc := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if sent.Load()-b.t.delivered.Load() >= window {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if err := b.submit(ctx, message.Routine, body, nil); err != nil {
				if ctx.Err() == nil {
					errc <- err
				}
				return
			}
			sent.Add(1)
		}
	}()
	// Measure from the first delivery over the poor link, for o.poorFor.
	d0 := b.t.delivered.Load()
	if !rig.WaitFor(ctx, 60*time.Second, func() bool { return b.t.delivered.Load() > d0 }) {
		return res, fmt.Errorf("nothing arrived over the poor link within 60 s")
	}
	n0, by0 := b.t.delivered.Load(), b.t.bytes.Load()
	up0, _ := poor.Bytes()
	start := time.Now()
	for time.Since(start) < o.poorFor {
		select {
		case err := <-errc:
			return res, err
		case <-time.After(5 * time.Second):
		}
		fmt.Printf("   %s: %d delivered\n", time.Since(start).Round(time.Second), b.t.delivered.Load()-n0)
	}
	res.window = time.Since(start)
	res.n = b.t.delivered.Load() - n0
	payload := b.t.bytes.Load() - by0
	up1, _ := poor.Bytes()
	res.goodput = float64(payload*8) / res.window.Seconds()
	if res.n > 0 {
		res.wirePerMsg = float64(up1-up0) / float64(res.n)
	}
	res.cuts = poor.Cuts()
	cancel()
	return res, nil
}

func queueDepth(ctx context.Context, p *rig.Party, peer string) map[string]int {
	st, err := p.Node.Status(ctx)
	if err != nil {
		return nil
	}
	return st.Queues[peer]
}
