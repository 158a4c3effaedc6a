package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"liaison/bench/internal/rig"
	"liaison/internal/gateway/cot"
)

// gatewayYAML enables each party's CoT gateway on loopback TCP with the
// anonymous group Cyan mapped to the rig's channel.
const gatewayYAML = `gateways:
  cot:
    enabled: true
    tcp: 127.0.0.1:0
    anonymous_groups: [Cyan]
    channels: {Cyan: ` + rig.Channel + `}
    classifications: {Unclassified: UNCLASSIFIED, Confidential: CONFIDENTIAL}
`

const maxSteps = 16

// receiver is one TAK client that counts the bench events it receives,
// per sweep step (the step is the uid's second field).
type receiver struct {
	side  string
	conn  net.Conn
	got   [maxSteps]atomic.Int64
	mu    sync.Mutex
	lat   [maxSteps][]time.Duration
	pongs atomic.Int64
}

func (r *receiver) read() {
	sp := cot.NewSplitter(bufio.NewReaderSize(r.conn, 256<<10), 0)
	for {
		b, err := sp.Next()
		if err != nil {
			return
		}
		s := string(b)
		if strings.Contains(s, `t-x-c-t-r`) {
			r.pongs.Add(1)
			continue
		}
		i := strings.Index(s, `uid="b-`)
		if i < 0 {
			continue
		}
		s = s[i+7:]
		s = s[:strings.IndexByte(s, '"')]
		f := strings.Split(s, "-") // step-sender-seq-nanos
		if len(f) != 4 {
			continue
		}
		step, _ := strconv.Atoi(f[0])
		ns, _ := strconv.ParseInt(f[3], 10, 64)
		if step < 0 || step >= maxSteps {
			continue
		}
		d := time.Since(time.Unix(0, ns))
		r.mu.Lock()
		r.lat[step] = append(r.lat[step], d)
		r.mu.Unlock()
		r.got[step].Add(1)
	}
}

func ping(w *bufio.Writer, who string, now time.Time) {
	fmt.Fprintf(w, `<event version="2.0" uid="ping-%s" type="t-x-c-t" how="m-g" time="%[2]s" start="%[2]s" stale="%[2]s"><point lat="0" lon="0" hae="0" ce="9999999" le="9999999"/><detail/></event>`, who, cot.FormatTime(now))
}

func runNodes(senders int, rate float64, receivers, atPAK int, sweep string, duration, drain time.Duration) error {
	rates := []float64{rate * float64(senders)}
	if sweep != "" {
		rates = nil
		for f := range strings.SplitSeq(sweep, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || v <= 0 {
				return fmt.Errorf("bad -sweep rate %q", f)
			}
			rates = append(rates, v)
		}
	}
	if len(rates) > maxSteps {
		return fmt.Errorf("at most %d sweep rates", maxSteps)
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "liaison-cot-nodes-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rig.Extra = gatewayYAML
	usa, err := rig.NewParty(ctx, dir, "USA", nil)
	if err != nil {
		return err
	}
	defer usa.Node.Close()
	pak, err := rig.NewParty(ctx, dir, "PAK", nil)
	if err != nil {
		return err
	}
	defer pak.Node.Close()
	if err := rig.Exchange(ctx, usa, pak); err != nil {
		return err
	}
	if err := usa.Node.AddPeer("PAK", pak.Node.FederationAddr().String()); err != nil {
		return err
	}
	if err := pak.Node.AddPeer("USA", usa.Node.FederationAddr().String()); err != nil {
		return err
	}
	if err := rig.Agree(ctx, usa, pak); err != nil {
		return err
	}
	if !rig.WaitFor(ctx, 20*time.Second, func() bool { return rig.LinkState(ctx, usa, "PAK") == "up" && rig.LinkState(ctx, pak, "USA") == "up" }) {
		return fmt.Errorf("the USA–PAK link did not come up: %s", rig.LinkState(ctx, usa, "PAK"))
	}
	if usa.Node.CoTGateway() == nil || pak.Node.CoTGateway() == nil {
		return fmt.Errorf("a node did not start its CoT gateway")
	}
	usaAddr, _, _ := usa.Node.CoTGateway().Addrs()
	pakAddr, _, _ := pak.Node.CoTGateway().Addrs()

	var rs []*receiver
	for i := range receivers {
		side, addr := "USA", usaAddr
		if i < atPAK {
			side, addr = "PAK", pakAddr
		}
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		r := &receiver{side: side, conn: c}
		rs = append(rs, r)
		go r.read()
		go func() { // the TAK client's keepalive: a ping every 10 s
			w := bufio.NewWriter(c)
			for {
				ping(w, fmt.Sprintf("r%d", i), time.Now())
				if w.Flush() != nil {
					return
				}
				time.Sleep(10 * time.Second)
			}
		}()
	}
	var sconns []net.Conn
	for range senders {
		c, err := net.Dial("tcp", usaAddr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		sconns = append(sconns, c)
		go func() { // senders are TAK clients too: drain what they are sent
			sp := cot.NewSplitter(bufio.NewReaderSize(c, 256<<10), 0)
			for {
				if _, err := sp.Next(); err != nil {
					return
				}
			}
		}()
	}
	fmt.Printf("two nodes: senders=%d at USA, receivers=%d at USA and %d at PAK, %v per step, drain up to %v\n",
		senders, receivers-atPAK, atPAK, duration, drain)
	fmt.Printf("%8s %9s %12s %12s %10s %10s %8s %8s %6s %6s\n", "rate", "in/s", "out/s USA", "out/s PAK", "p50", "p99", "queued", "lost", "cpu%", "drain")
	for step, total := range rates {
		per := total / float64(senders)
		var sent atomic.Int64
		cpu0, t0 := cpu(), time.Now()
		var swg sync.WaitGroup
		for s, c := range sconns {
			swg.Go(func() {
				w := bufio.NewWriterSize(c, 64<<10)
				interval := time.Duration(float64(time.Second) / per)
				start := time.Now().Add(time.Duration(s) * interval / time.Duration(senders))
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
						ping(w, fmt.Sprintf("s%d", s), now)
						nextPing = nextPing.Add(10 * time.Second)
					}
					ts := cot.FormatTime(now)
					fmt.Fprintf(w, `<event version="2.0" uid="b-%d-%d-%d-%d" type="a-f-G-U-C" how="m-g" time="%s" start="%s" stale="%s" access="Confidential" releasableTo="USA PAK"><point lat="52.52" lon="13.40" hae="35" ce="10" le="9999999"/><detail><contact callsign="S%d" endpoint="*:-1:stcp"/><__group name="Cyan" role="Team Member"/><track speed="3" course="90"/></detail></event>`,
						step, s, i, now.UnixNano(), ts, ts, cot.FormatTime(now.Add(2*time.Minute)), s)
					sent.Add(1)
				}
				w.Flush()
			})
		}
		swg.Wait()
		sendTime := time.Since(t0)
		n := sent.Load()
		done := func() bool {
			for _, r := range rs {
				if r.got[step].Load() < n {
					return false
				}
			}
			return true
		}
		deadline := time.Now().Add(drain)
		for !done() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		elapsed, used := time.Since(t0), cpu()-cpu0
		var lat []time.Duration
		outBy := map[string]int64{}
		var missing int64
		for _, r := range rs {
			g := r.got[step].Load()
			outBy[r.side] += g
			missing += n - g
			r.mu.Lock()
			lat = append(lat, r.lat[step]...)
			r.mu.Unlock()
		}
		queued := 0
		if st, err := usa.Node.Status(ctx); err == nil {
			for _, d := range st.Queues["PAK"] {
				queued += d
			}
		}
		slices.Sort(lat)
		pct := func(p float64) time.Duration {
			if len(lat) == 0 {
				return 0
			}
			return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Millisecond)
		}
		// "lost" is what is missing and not accounted for by the USA→PAK
		// queue; store-and-forward turns lag into "queued", not loss.
		lost := max(0, missing-int64(queued)*int64(atPAK))
		fmt.Printf("%8.0f %9.0f %12.0f %12.0f %10v %10v %8d %8d %6.0f %5.1fs\n", total, float64(n)/sendTime.Seconds(),
			float64(outBy["USA"])/elapsed.Seconds(), float64(outBy["PAK"])/elapsed.Seconds(), pct(0.5), pct(0.99),
			queued, lost, 100*used.Seconds()/elapsed.Seconds(), (elapsed - sendTime).Seconds())
		fmt.Printf("         sent %d; delivered USA %d/%d, PAK %d/%d\n", n, outBy["USA"], n*int64(receivers-atPAK), outBy["PAK"], n*int64(atPAK))
		if missing > 0 {
			fmt.Println("         delivery fell behind: sweep stops; waiting up to 3m for store-and-forward to finish")
			rig.WaitFor(ctx, 3*time.Minute, done)
			var final int64
			for _, r := range rs {
				final += r.got[step].Load()
			}
			fmt.Printf("         after %.0fs more: delivered %d of %d, lost %d\n", time.Since(t0).Seconds()-elapsed.Seconds(), final, n*int64(receivers), n*int64(receivers)-final)
			break
		}
	}
	return nil
}
