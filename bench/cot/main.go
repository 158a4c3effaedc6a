// Command cot is the load tool for Liaison's TAK gateway. It starts a
// gateway on loopback with an in-memory core, connects senders and
// receivers over streaming TCP (CoT XML), has each sender send positions at
// a fixed rate and every client ping every 10 s, and reports events/s in,
// deliveries/s out, p50/p99 latency, loss and CPU.
//
//	go run ./bench/cot -senders 10 -rate 1000 -receivers 4 -duration 5s
//
// With -nodes it instead starts two real nodes, USA and PAK (SQLite stores
// on disk, audit logs, a signed agreement with the channel, federated over
// loopback TLS), each with its CoT gateway; the senders connect to USA and
// the receivers are split between USA and PAK (-pak receivers at PAK).
// -sweep runs a list of total rates in one process.
//
//	go run ./bench/cot -nodes -senders 10 -receivers 4 -pak 2 -sweep 500,1000,2000
//
// Latency is measured end to end: the send time travels in the event uid.
// Loss is deliveries expected (events sent × receivers) minus received; the
// gateway never drops silently, so any loss is a bug or an audited
// slow-client disconnect (counted in audits).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"liaison/internal/gateway/cot"
	"liaison/internal/gateway/cot/memcore"
)

type auditCount struct{ slow, other atomic.Int64 }

func (a *auditCount) Audit(_ context.Context, r cot.Record) {
	switch r.Kind {
	case "slow-client":
		a.slow.Add(1)
	case "label":
	default:
		a.other.Add(1)
	}
}

func main() {
	senders := flag.Int("senders", 10, "sending clients")
	rate := flag.Float64("rate", 1, "positions per second per sender")
	receivers := flag.Int("receivers", 4, "receiving clients")
	duration := flag.Duration("duration", 5*time.Second, "how long senders send")
	queue := flag.Int("queue", 1024, "per-client queue length")
	nodes := flag.Bool("nodes", false, "run against two real federated nodes (USA and PAK) instead of an in-memory core")
	pak := flag.Int("pak", 2, "with -nodes: how many of the receivers connect to PAK (the rest to USA)")
	sweep := flag.String("sweep", "", "with -nodes: comma-separated total rates (events/s); overrides -rate")
	drain := flag.Duration("drain", 30*time.Second, "how long to wait for deliveries after sending")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cot bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var err error
	if *nodes {
		err = runNodes(*senders, *rate, *receivers, *pak, *sweep, *duration, *drain)
	} else {
		err = run(*senders, *rate, *receivers, *duration, *queue)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cot bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func run(senders int, rate float64, receivers int, duration time.Duration, queue int) error {
	l := &cot.MappingLabeler{PolicyID: "2.25.4242", PolicyName: "BENCH", Classifications: map[string]string{"Unclassified": "UNCLASSIFIED"}}
	audits := &auditCount{}
	g, err := cot.New(cot.Config{
		Origin: "XAA", TCP: "127.0.0.1:0", AnonymousGroups: []string{"Cyan"},
		Channels:      map[string]string{"Cyan": "sa"},
		DefaultLabels: map[string][]byte{"sa": l.Label("UNCLASSIFIED", nil, []string{"XAA"})},
		QueueLen:      queue, Auditor: audits,
	}, &memcore.Core{}, l)
	if err != nil {
		return err
	}
	if err := g.Start(context.Background()); err != nil {
		return err
	}
	defer g.Close()
	addr, _, _ := g.Addrs()

	var (
		mu        sync.Mutex
		latencies []time.Duration
		received  atomic.Int64
		pongs     atomic.Int64
	)
	var rwg sync.WaitGroup
	var rconns []net.Conn
	for range receivers {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			return err
		}
		rconns = append(rconns, c)
		rwg.Go(func() {
			sp := cot.NewSplitter(bufio.NewReaderSize(c, 256<<10), 0)
			var local []time.Duration
			for {
				b, err := sp.Next()
				if err != nil {
					break
				}
				s := string(b)
				i := strings.Index(s, `uid="b-`)
				if i < 0 {
					continue
				}
				s = s[i+7:]
				s = s[:strings.IndexByte(s, '"')]
				ns, _ := strconv.ParseInt(s[strings.LastIndexByte(s, '-')+1:], 10, 64)
				local = append(local, time.Since(time.Unix(0, ns)))
				received.Add(1)
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		})
	}
	var sent atomic.Int64
	cpu0, t0 := cpu(), time.Now()
	var swg sync.WaitGroup
	for s := range senders {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		go func() { // drain offers and pongs
			sp := cot.NewSplitter(bufio.NewReader(c), 0)
			for {
				b, err := sp.Next()
				if err != nil {
					return
				}
				if strings.Contains(string(b), `t-x-c-t-r`) {
					pongs.Add(1)
				}
			}
		}()
		swg.Go(func() {
			w := bufio.NewWriter(c)
			interval := time.Duration(float64(time.Second) / rate)
			start := time.Now()
			nextPing := start
			for i := 0; ; i++ {
				due := start.Add(time.Duration(i) * interval)
				if due.Sub(start) >= duration {
					break
				}
				if d := time.Until(due); d > 0 {
					w.Flush()
					time.Sleep(d)
				}
				now := time.Now()
				if !now.Before(nextPing) {
					fmt.Fprintf(w, `<event version="2.0" uid="ping-%d" type="t-x-c-t" how="m-g" time="%[2]s" start="%[2]s" stale="%[2]s"><point lat="0" lon="0" hae="0" ce="9999999" le="9999999"/><detail/></event>`, s, cot.FormatTime(now))
					nextPing = nextPing.Add(10 * time.Second)
				}
				ts := cot.FormatTime(now)
				fmt.Fprintf(w, `<event version="2.0" uid="b-%d-%d-%d" type="a-f-G-U-C" how="m-g" time="%s" start="%s" stale="%s" access="Unclassified" releasableTo="XAA"><point lat="52.52" lon="13.40" hae="35" ce="10" le="9999999"/><detail><contact callsign="S%d" endpoint="*:-1:stcp"/><__group name="Cyan" role="Team Member"/><track speed="3" course="90"/></detail></event>`,
					s, i, now.UnixNano(), ts, ts, cot.FormatTime(now.Add(2*time.Minute)), s)
				sent.Add(1)
			}
			w.Flush()
		})
	}
	swg.Wait()
	sendTime := time.Since(t0)
	want := sent.Load() * int64(receivers)
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	elapsed, usedCPU := time.Since(t0), cpu()-cpu0
	for _, c := range rconns {
		c.Close()
	}
	rwg.Wait()
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))]
	}
	fmt.Printf("senders=%d rate=%g/s/sender receivers=%d duration=%v queue=%d\n", senders, rate, receivers, duration, queue)
	fmt.Printf("events in:       %d (%.0f/s)\n", sent.Load(), float64(sent.Load())/sendTime.Seconds())
	fmt.Printf("deliveries out:  %d of %d (%.0f/s over %.2fs)\n", received.Load(), want, float64(received.Load())/elapsed.Seconds(), elapsed.Seconds())
	fmt.Printf("loss:            %d (audited slow-client disconnects: %d, other audits: %d)\n", want-received.Load(), audits.slow.Load(), audits.other.Load())
	fmt.Printf("latency:         p50 %v  p90 %v  p99 %v  max %v\n", pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	fmt.Printf("pongs:           %d\n", pongs.Load())
	fmt.Printf("cpu:             %.2fs (%.0f%% of one core, tool and gateway together)\n", usedCPU.Seconds(), 100*usedCPU.Seconds()/elapsed.Seconds())
	return nil
}
