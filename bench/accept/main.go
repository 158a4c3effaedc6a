// Command accept measures how fast a real Liaison node accepts 1 KiB
// labelled messages through its HTTPS API and stores them durably, next to
// the raw rate of the same store in the same run.
//
//	go run ./bench/accept -duration 5s
//
// It starts a USA node (SQLite store on disk, synchronous=FULL, audit log
// on) with a signed agreement with PAK, and posts to POST /v1/messages with
// the operator token over HTTP/1.1 keep-alive connections (-h2 for one
// HTTP/2 connection), from 1 and from 64 concurrent senders; then the same
// messages 16 to a request to POST /v1/messages/batch (-batch N), as a
// sender that feeds many small messages would. The client runs in the
// node's process unless -load process puts it in a process of its own.
// Baselines, measured in the same run on the same disk:
//
//   - raw: store.OpenSQLite on a temp file, Accept called directly from
//     the same number of goroutines (the store's group commit);
//   - batch: store.AcceptBatch of 128 messages per call from one goroutine,
//     the store's own ceiling;
//   - plain: database/sql inserting the same payloads, 100 per transaction
//     (the physical ceiling of this disk with this fsync policy).
//
// Audit appends/s is how many entries the node's audit log gained over the
// run (at its settled checkpoint), divided by the run's time: one per
// message shows that every accepted message was audited.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"time"

	"liaison/bench/internal/rig"
	"liaison/internal/api"
	"liaison/internal/message"
	"liaison/internal/store"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "length of each measurement")
	size := flag.Int("size", 1024, "message body bytes")
	h2 := flag.Bool("h2", false, "use HTTP/2 (one multiplexed connection) instead of HTTP/1.1 keep-alive (implies -client nethttp)")
	flag.IntVar(&rounds, "rounds", 4, "after the first measurements, measure raw and the node with 64 senders back to back this many more times; the goal's verdict is the median ratio")
	flag.IntVar(&batch, "batch", 16, "also post this many messages per request to POST /v1/messages/batch (0: skip; lean client only)")
	flag.StringVar(&clientKind, "client", "lean", "load generator: lean (a minimal HTTP/1.1 keep-alive client, like wrk) or nethttp (Go's http.Client)")
	dir := flag.String("dir", "", "directory for the node home and stores (default: a new temp dir, removed after)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the 64-sender node run to this file")
	flag.StringVar(&traceFile, "trace", "", "write an execution trace of the 64-sender node run to this file (go tool trace)")
	flag.StringVar(&loadWhere, "load", "inline", "where the lean client runs: inline (goroutines in the node's process, sharing its Go runtime) or process (a process of its own, as wrk would be)")
	loadJob := flag.Bool("load-job", false, "internal: run as the load process, reading the job on stdin")
	flag.Parse()
	if *loadJob {
		if err := runLoadJob(); err != nil {
			fmt.Fprintln(os.Stderr, "accept bench, load process:", err)
			os.Exit(1)
		}
		return
	}
	if loadWhere != "inline" && loadWhere != "process" {
		fmt.Fprintf(os.Stderr, "accept bench: -load %q: want inline or process\n", loadWhere)
		os.Exit(2)
	}
	if err := run(*duration, *size, *h2, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "accept bench:", err)
		os.Exit(1)
	}
}

func run(d time.Duration, size int, h2 bool, dir string) error {
	ctx := context.Background()
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "liaison-bench-accept-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	fmt.Printf("accept bench: %d B bodies, %s per measurement, GOMAXPROCS=%d, dir %s\n", size, d, runtime.GOMAXPROCS(0), dir)
	fmt.Println("starting USA node (and PAK for its card)...")
	usa, err := rig.NewParty(ctx, dir, "USA", nil)
	if err != nil {
		return err
	}
	defer usa.Node.Close()
	pak, err := rig.NewParty(ctx, dir, "PAK", nil)
	if err != nil {
		return err
	}
	// PAK only lends its identity to the agreement: closed, so USA queues
	// for it and no link competes for the CPU.
	if err := rig.Agree(ctx, usa, pak); err != nil {
		return err
	}
	pak.Node.Close()

	lbl := usa.Label()
	body := rig.Body(size)
	mk := func() *message.Message { return usa.Message(message.Routine, lbl, body) }

	fmt.Println("baseline: plain database/sql, 100 inserts per transaction, 1 goroutine...")
	plain, err := rig.PlainSQL(ctx, dir, d, mk)
	if err != nil {
		return err
	}
	fmt.Println("  ", plain)
	raw := map[int]rig.Rate{}
	for _, w := range []int{1, 64} {
		fmt.Printf("baseline: store.Accept directly, %d goroutine(s)...\n", w)
		r, err := rig.RawStore(ctx, dir, w, d, mk)
		if err != nil {
			return err
		}
		raw[w] = r
		fmt.Println("  ", r, "  ", rig.Commits(r.Commits))
	}

	fmt.Println("baseline: store.AcceptBatch, 128 messages per call, 1 goroutine (the store's ceiling)...")
	rawBatch, err := rig.RawStoreBatch(ctx, dir, 128, d, mk)
	if err != nil {
		return err
	}
	fmt.Println("  ", rawBatch)

	client, err := newClient(usa, h2)
	if err != nil {
		return err
	}
	// Encoded as most clients do (curl with a file, Python's json.dumps):
	// the label's XML as is, not with Go's HTML escapes (\u003c for <).
	var pb bytes.Buffer
	enc := json.NewEncoder(&pb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(api.PostMessage{Channel: rig.Channel, Precedence: "routine", Label: string(lbl), ContentType: "text/plain", Body: ptr(string(body))}); err != nil {
		return err
	}
	post := bytes.TrimSpace(pb.Bytes())
	url := "https://" + usa.Node.APIAddr().String() + "/v1/messages"
	send := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(post))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+usa.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("POST /v1/messages: %s: %s", resp.Status, b)
		}
		return nil
	}
	proto := "HTTP/1.1 keep-alive, Go http.Client"
	ca, addr := usa.Node.Identity().CACert, usa.Node.APIAddr().String()
	var load loader = inline(send)
	switch {
	case h2:
		proto = "HTTP/2, Go http.Client"
	case clientKind == "lean" && loadWhere == "process":
		load = process{loadJob{Addr: addr, Token: usa.Token, Path: "/v1/messages", CA: ca.Raw, Body: post, Per: 1}}
		proto = "HTTP/1.1 keep-alive, lean client in its own process"
	case clientKind == "lean" && loadWhere == "inline":
		lp := newLeanPoster(addr, ca, usa.Token, "/v1/messages", post, 64, wantCreated)
		defer lp.close()
		send = lp.post
		load = inline(send)
		proto = "HTTP/1.1 keep-alive, lean client in the node's process"
	case clientKind != "nethttp":
		return fmt.Errorf("-client %q: want lean or nethttp", clientKind)
	}
	// Warm the connections and the node (TLS handshakes, statements).
	if _, err := load.run(ctx, 64, 500*time.Millisecond, func() {}); err != nil {
		return err
	}
	type row struct {
		w         int
		r         rig.Rate
		auditPerS float64
	}
	// measure runs send from w senders for d; each call carries per
	// messages.
	measure := func(what string, w, per int, load loader) (row, error) {
		fmt.Printf("node: %s, %d sender(s)...\n", what, w)
		var before uint64
		var commits0 store.CommitStats
		var stop func()
		var perr error
		begin := func() {
			before = rig.SettledAuditEntries(ctx, usa)
			commits0, _ = usa.Node.CommitStats()
			if w == 64 && per == 1 && (cpuProfile != "" || traceFile != "") {
				stop, perr = startProfile(cpuProfile)
			}
		}
		r, err := load.run(ctx, w, d, begin)
		if stop != nil {
			stop()
		}
		if err := errors.Join(err, perr); err != nil {
			return row{}, err
		}
		r.N *= int64(per)
		commits1, _ := usa.Node.CommitStats()
		r.Commits = commits1.Sub(commits0)
		after := rig.SettledAuditEntries(ctx, usa)
		a := float64(after - before)
		fmt.Printf("   %s   audit %.0f appends/s (%.1f per message); %s\n", r, a/r.Elapsed.Seconds(), a/float64(r.N), rig.Commits(r.Commits))
		return row{w, r, a / r.Elapsed.Seconds()}, nil
	}
	var rows, batched []row
	for _, w := range []int{1, 64} {
		x, err := measure(fmt.Sprintf("POST /v1/messages over HTTPS (%s)", proto), w, 1, load)
		if err != nil {
			return err
		}
		rows = append(rows, x)
	}
	// Paired rounds. The disk's speed drifts over minutes (the raw rate
	// alone moved between 22,000 and 28,000 msgs/s within one session), so
	// the goal's verdict is the median of rounds that each measure the raw
	// store and then the node, back to back.
	var paired []float64
	for i := range rounds {
		fmt.Printf("paired round %d of %d: store.Accept directly, then the node, 64 senders...\n", i+1, rounds)
		r, err := rig.RawStore(ctx, dir, 64, d, mk)
		if err != nil {
			return err
		}
		fmt.Println("  ", r, "  ", rig.Commits(r.Commits))
		x, err := measure(fmt.Sprintf("POST /v1/messages over HTTPS (%s)", proto), 64, 1, load)
		if err != nil {
			return err
		}
		paired = append(paired, x.r.PerSec()/r.PerSec())
	}
	if batch > 0 && clientKind == "lean" && !h2 {
		// The same message, batch times per request: each gets its own id.
		bb := []byte(`{"messages":[` + strings.Repeat(string(post)+",", batch-1) + string(post) + `]}`)
		var bload loader
		if loadWhere == "process" {
			bload = process{loadJob{Addr: addr, Token: usa.Token, Path: "/v1/messages/batch", CA: ca.Raw, Body: bb, Per: batch}}
		} else {
			bp := newLeanPoster(addr, ca, usa.Token, "/v1/messages/batch", bb, 64, wantAllAccepted(batch))
			defer bp.close()
			bload = inline(bp.post)
		}
		if _, err := bload.run(ctx, 64, 500*time.Millisecond, func() {}); err != nil {
			return err
		}
		for _, w := range []int{1, 64} {
			x, err := measure(fmt.Sprintf("POST /v1/messages/batch, %d messages per request (lean client)", batch), w, batch, bload)
			if err != nil {
				return err
			}
			batched = append(batched, x)
		}
	}

	fmt.Printf("\nResults (%d B bodies, %s each, GOMAXPROCS=%d)\n", size, d, runtime.GOMAXPROCS(0))
	fmt.Printf("  %-52s %s\n", "plain database/sql, 100/tx (physical ceiling)", plain)
	fmt.Printf("  %-52s %9.0f msgs/s\n", "store.AcceptBatch, 128 per call (store ceiling)", rawBatch.PerSec())
	for i, x := range rows {
		fmt.Printf("  %-52s %s\n", fmt.Sprintf("store.Accept direct, %d goroutine(s) (raw)", x.w), raw[x.w])
		fmt.Printf("  %-52s %s  = %.2f× raw, %.2f× plain; audit %.0f appends/s\n", fmt.Sprintf("node HTTPS API, %d sender(s)", x.w), x.r,
			x.r.PerSec()/raw[x.w].PerSec(), x.r.PerSec()/plain.PerSec(), x.auditPerS)
		if i < len(batched) {
			b := batched[i]
			fmt.Printf("  %-52s %s  = %.2f× raw, %.2f× plain; audit %.0f appends/s (latency per request)\n",
				fmt.Sprintf("node HTTPS API, %d sender(s), %d per batch", b.w, batch), b.r,
				b.r.PerSec()/raw[b.w].PerSec(), b.r.PerSec()/plain.PerSec(), b.auditPerS)
		}
	}
	ratio, how := rows[1].r.PerSec()/raw[64].PerSec(), "one pair"
	if len(paired) > 0 {
		all := append([]float64{ratio}, paired...)
		fmt.Printf("  node against raw, 64 senders, the first pair and %d paired rounds: %s\n", len(paired), ratios(all))
		ratio, how = median(all), fmt.Sprintf("median of %d pairs", len(all))
	}
	verdict := "met"
	if ratio < 0.5 {
		verdict = "NOT met"
	}
	fmt.Printf("goal node ≥ 0.5× raw with 64 senders: %.2f× (%s) — %s (%.2f× the store's batch ceiling)\n", ratio, how, verdict, rows[1].r.PerSec()/rawBatch.PerSec())
	if len(batched) > 1 {
		fmt.Printf("with %d messages per request, 64 senders: %.2f× raw (%.2f× the store's batch ceiling)\n", batch,
			batched[1].r.PerSec()/raw[64].PerSec(), batched[1].r.PerSec()/rawBatch.PerSec())
	}
	return nil
}

// ratios formats ratios to a raw rate.
func ratios(rs []float64) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%.2f×", r)
	}
	return b.String()
}

// median is the median of rs (not empty).
func median(rs []float64) float64 {
	s := slices.Sorted(slices.Values(rs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// wantCreated accepts the answer to POST /v1/messages that stored the
// message.
func wantCreated(status int, body []byte) error {
	if status != 201 {
		return fmt.Errorf("POST /v1/messages: status %d: %s", status, body)
	}
	return nil
}

// wantAllAccepted accepts the answer to POST /v1/messages/batch that
// stored all n messages.
func wantAllAccepted(n int) func(int, []byte) error {
	return func(status int, body []byte) error {
		var ans api.BatchAnswer
		if status != 200 {
			return fmt.Errorf("POST /v1/messages/batch: status %d: %s", status, body)
		}
		if err := json.Unmarshal(body, &ans); err != nil {
			return fmt.Errorf("POST /v1/messages/batch: %v", err)
		}
		if ans.Accepted != n {
			return fmt.Errorf("POST /v1/messages/batch: %d of %d accepted: %s", ans.Accepted, n, body)
		}
		return nil
	}
}

var (
	cpuProfile, traceFile, clientKind, loadWhere string
	batch, rounds                                int
)

func ptr[T any](v T) *T { return &v }

func newClient(p *rig.Party, h2 bool) (*http.Client, error) {
	pool := x509.NewCertPool()
	pool.AddCert(p.Node.Identity().CACert)
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"},
		MaxIdleConnsPerHost: 128,
		ForceAttemptHTTP2:   h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: time.Minute}, nil
}

// startProfile starts a CPU profile into path and, with -trace, an
// execution trace; the returned func stops both.
func startProfile(path string) (func(), error) {
	var stops []func()
	stop := func() {
		for _, s := range stops {
			s()
		}
	}
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if traceFile != "" {
		f, err := os.Create(traceFile)
		if err != nil {
			stop()
			return nil, err
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			stop()
			return nil, err
		}
		stops = append(stops, func() { trace.Stop(); f.Close() })
	}
	return stop, nil
}
