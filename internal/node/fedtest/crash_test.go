package fedtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"liaison/internal/clock"
	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/node/nodetest"
	"liaison/internal/pki"
)

// envInt reads a positive integer from env, or def.
func envInt(t *testing.T, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive integer", name, s)
		}
		return n
	}
	return def
}

// proc is a 'liaison up' child process for one home.
type proc struct {
	t    *testing.T
	bin  string
	p    *Party
	cmd  *exec.Cmd
	done chan struct{}
	http *http.Client
	log  *os.File
}

func newProc(t *testing.T, bin string, p *Party) *proc {
	pem, err := os.ReadFile(filepath.Join(p.Home, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	log, err := os.OpenFile(filepath.Join(p.Home, "up.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: pki.NodeName(p.ID)}, MaxIdleConnsPerHost: 16}
	return &proc{t: t, bin: bin, p: p, log: log, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// start runs the node and waits until its API answers.
func (pr *proc) start() {
	t := pr.t
	pr.cmd = exec.Command(pr.bin, "up", "--dir", pr.p.Home, "--log-level", "info")
	pr.cmd.Stdout, pr.cmd.Stderr = pr.log, pr.log
	if err := pr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	pr.done = done
	cmd := pr.cmd
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := pr.get("/v1/channels/ops/messages?limit=1"); err == nil {
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(pr.log.Name())
			if len(b) > 4096 {
				b = b[len(b)-4096:]
			}
			t.Fatalf("%s exited at start; the end of %s:\n%s", pr.p.ID, pr.log.Name(), b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s API not up after 20s", pr.p.ID)
		}
		time.Sleep(20 * time.Millisecond) // polling
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (pr *proc) kill() {
	pr.cmd.Process.Kill()
	<-pr.done
}

func (pr *proc) stop() {
	if pr.cmd != nil {
		pr.cmd.Process.Signal(os.Interrupt)
		select {
		case <-pr.done:
		case <-time.After(10 * time.Second):
			pr.kill()
		}
	}
}

func (pr *proc) do(method, path string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, "https://"+pr.p.APIAddr+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+pr.p.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := pr.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func (pr *proc) get(path string) ([]byte, error) {
	resp, b, err := pr.do("GET", path, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return b, nil
}

// history returns how many times each message id from origin is in the
// channel history.
func (pr *proc) history(origin string) (map[string]int, error) {
	counts := map[string]int{}
	var after uint64
	for {
		b, err := pr.get(fmt.Sprintf("/v1/channels/ops/messages?after=%d&limit=1000", after))
		if err != nil {
			return nil, err
		}
		var page struct {
			Messages []struct {
				Seq     uint64 `json:"seq"`
				Message struct {
					ID     string `json:"id"`
					Origin string `json:"origin"`
				} `json:"message"`
			} `json:"messages"`
			Next uint64 `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, err
		}
		for _, e := range page.Messages {
			if e.Message.Origin == origin {
				counts[e.Message.ID]++
			}
		}
		if len(page.Messages) < 1000 {
			return counts, nil
		}
		after = page.Next
	}
}

// buildLiaison builds the binary once per test run.
func buildLiaison(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "liaison")
	cmd := exec.Command("go", "build", "-o", bin, "liaison/cmd/liaison")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCrashNoLossNoDuplicate runs USA and PAK as 'liaison up' processes,
// posts messages to USA concurrently, and SIGKILLs the sender or the
// receiver at random moments, restarting each at once. In the end PAK's
// channel holds every message USA acknowledged, each exactly once, and no
// message twice. LIAISON_CRASH_MESSAGES and LIAISON_CRASH_ROUNDS (kills)
// scale it; LIAISON_CRASH_SEED replays a run.
func TestCrashNoLossNoDuplicate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs two node processes")
	}
	total := envInt(t, "LIAISON_CRASH_MESSAGES", 3000)
	rounds := envInt(t, "LIAISON_CRASH_ROUNDS", 10)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LIAISON_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("messages %d, kills %d, seed %d (LIAISON_CRASH_SEED=%d replays the kill schedule)", total, rounds, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	start := time.Now()
	bin := buildLiaison(t)
	t.Logf("built liaison in %v", time.Since(start).Round(time.Millisecond))

	dir := t.TempDir()
	pakFed, pakAPI, usaFed, usaAPI := nodetest.FreeAddr(t), nodetest.FreeAddr(t), nodetest.FreeAddr(t), nodetest.FreeAddr(t)
	usa := MakeHome(t, dir, "USA", usaFed, usaAPI, map[string]string{"PAK": pakFed})
	pak := MakeHome(t, dir, "PAK", pakFed, pakAPI, nil)
	// Prepare the homes in-process: pin cards, install the agreement into
	// the stores, then close; the processes load both on Open.
	real := clock.Real{}
	usa.Open(t, real, false)
	pak.Open(t, real, false)
	ExchangeCards(t, usa, pak)
	Deal{ID: "us-pak", Effective: time.Now().Add(-time.Hour), Expiry: time.Now().AddDate(1, 0, 0), Parties: []*Party{usa, pak}}.Install(t)
	lbl := string(node.BuildLabel(usa.N.Policy(PolicyIDs["USA"]), "CONFIDENTIAL", []string{"USA", "PAK"}, time.Now()))
	usa.N.Close()
	pak.N.Close()

	sender, receiver := newProc(t, bin, usa), newProc(t, bin, pak)
	receiver.start()
	sender.start()
	t.Cleanup(func() { sender.stop(); receiver.stop() })

	// Load: workers post until total are acknowledged; a post that fails
	// is retried with the same id (the node de-duplicates).
	var (
		next   atomic.Int64
		mu     sync.Mutex
		acked  []string
		ackN   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	stop := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				id := message.NewID().String()
				// One in ten a FLASH, which the sender hands to its link
				// as it accepts it when the link is up (leased in the
				// accepting transaction); the rest go by the link's leases.
				prec := "ROUTINE"
				if i%10 == 0 {
					prec = "FLASH"
				}
				body, _ := json.Marshal(map[string]any{"id": id, "channel": "ops", "precedence": prec, "label": lbl, "content_type": "text/plain", "body": fmt.Sprintf("message %d", i)})
				for {
					resp, _, err := sender.do("POST", "/v1/messages", body)
					if err == nil && (resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK) {
						break
					}
					failed.Add(1)
					select {
					case <-stop:
						return
					case <-ctx.Done():
						return
					case <-time.After(20 * time.Millisecond): // retry pace while the node restarts
					}
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
				ackN.Add(1)
			}
		}()
	}

	// Kills: one at a random point of each equal slice of the load, each
	// on a random side. Delivery keeps pace with the load, so every kill
	// lands with messages on their way: posted and not yet accepted, in
	// USA's queue, on the wire or in PAK's commit. (Kills after the load,
	// once delivery has caught up, would find nothing in flight.)
	victim := func() (*proc, string) {
		if rng.IntN(2) == 1 {
			return receiver, "receiver"
		}
		return sender, "sender"
	}
	delivered := func() int {
		for ctx.Err() == nil {
			if c, err := receiver.history("USA"); err == nil {
				return len(c)
			}
			time.Sleep(20 * time.Millisecond) // PAK restarting after a kill
		}
		return 0
	}
	for k := range rounds {
		at := int64(float64(total) * (float64(k) + rng.Float64()) / float64(rounds+1))
		v, name := victim()
		for ackN.Load() < at {
			select {
			case <-ctx.Done():
				t.Fatalf("load stalled at %d acknowledged", ackN.Load())
			case <-time.After(5 * time.Millisecond): // polling the load's progress
			}
		}
		t.Logf("kill %d: SIGKILL %s at %d acknowledged, %d delivered", k+1, name, ackN.Load(), delivered())
		v.kill()
		v.start()
	}
	wg.Wait()
	close(stop)
	if ctx.Err() != nil {
		t.Fatal("load did not finish in 5 minutes")
	}
	loadDone := time.Now()
	t.Logf("%d acknowledged (%d failed posts retried) in %v", len(acked), failed.Load(), loadDone.Sub(start).Round(time.Millisecond))

	var counts map[string]int
	deadline := time.Now().Add(2*time.Minute + time.Duration(total)*10*time.Millisecond)
	for {
		var err error
		counts, err = receiver.history("USA")
		if err == nil {
			missing := 0
			for _, id := range acked {
				if counts[id] == 0 {
					missing++
				}
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d acknowledged messages never arrived", missing, len(acked))
			}
		}
		time.Sleep(100 * time.Millisecond) // polling the receiver
	}
	t.Logf("all delivered %v after the load; total %v", time.Since(loadDone).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	dups := 0
	for id, n := range counts {
		if n != 1 {
			dups++
			t.Errorf("message %s stored %d times", id, n)
		}
	}
	if len(acked) != total || dups != 0 {
		t.Fatalf("acknowledged %d of %d, %d duplicated", len(acked), total, dups)
	}
	t.Logf("0 lost, 0 duplicated: %d acknowledged, %d received (extra unacknowledged: %d)", len(acked), len(counts), len(counts)-len(acked))
}
