package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"liaison/internal/api"
	"liaison/internal/message"
	"liaison/internal/node/nodetest"
)

// This file is issue 4's integration test: the real binary, run as a
// child process on loopback, against SQLite and PostgreSQL.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// liaisonBinary builds cmd/liaison once per test run.
func liaisonBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "liaison-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "liaison")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// proc is a running 'liaison up'.
type proc struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

// harness drives one node home through the binary and its HTTPS API.
type harness struct {
	t    *testing.T
	bin  string
	home *nodetest.Home
	addr string // API host:port
	http *http.Client
	up   *proc
}

// newHarness runs 'liaison init' for USA and configures the home with
// the demo policies, test tokens and store.
func newHarness(t *testing.T, store string) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test runs the binary; skipped with -short")
	}
	h := &harness{t: t, bin: liaisonBinary(t), addr: nodetest.FreeAddr(t)}
	dir := filepath.Join(t.TempDir(), "usa")
	h.cli(0, "init", "--party", "USA", "--dir", dir, "--addr", "127.0.0.1:0", "--api", h.addr)
	h.home = nodetest.Configure(t, dir, "USA", nodetest.Config{Store: store, APIListen: h.addr})
	h.http = h.home.Client(t)
	t.Cleanup(func() {
		if h.up != nil {
			h.up.cmd.Process.Kill()
			<-h.up.done
		}
	})
	return h
}

// cli runs the binary and fails the test unless it exits with want.
func (h *harness) cli(want int, args ...string) string {
	h.t.Helper()
	cmd := exec.Command(h.bin, args...)
	cmd.Env = append(os.Environ(), "LIAISON_TOKEN=", "LIAISON_HOME=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("liaison %s: %v", strings.Join(args, " "), err)
	}
	if code != want {
		h.t.Fatalf("liaison %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// start runs 'liaison up' and waits until the API answers /healthz.
func (h *harness) start() {
	h.t.Helper()
	logf, err := os.OpenFile(filepath.Join(h.home.Dir, "up.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		h.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(h.bin, "up", "--dir", h.home.Dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), log: logf.Name()}
	go func() { p.done <- cmd.Wait() }()
	h.up = p
	h.waitHTTP("/healthz", http.StatusOK)
}

// stop signals the node and returns its exit code.
func (h *harness) stop(sig syscall.Signal) int {
	h.t.Helper()
	if err := h.up.cmd.Process.Signal(sig); err != nil {
		h.t.Fatal(err)
	}
	var err error
	select {
	case err = <-h.up.done:
	case <-time.After(30 * time.Second):
		h.t.Fatalf("node did not exit within 30s of %v", sig)
	}
	h.up = nil
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	h.t.Fatal(err)
	return 0
}

func (h *harness) dumpLog() {
	if b, err := os.ReadFile(filepath.Join(h.home.Dir, "up.log")); err == nil {
		h.t.Logf("node log:\n%s", b)
	}
}

// waitHTTP polls GET path until it answers status, or fails after 20s.
func (h *harness) waitHTTP(path string, status int) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := "no answer"
	for time.Now().Before(deadline) {
		if h.up != nil {
			select {
			case err := <-h.up.done:
				h.dumpLog()
				h.t.Fatalf("node exited while waiting for %s: %v", path, err)
			default:
			}
		}
		code, body, err := h.do("", "GET", path, nil)
		if err == nil && code == status {
			return
		}
		last = fmt.Sprintf("%d %s %v", code, body, err)
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	h.dumpLog()
	h.t.Fatalf("GET %s never answered %d; last: %s", path, status, last)
}

// do calls the API as user (a nodetest user name, or "" for none).
func (h *harness) do(user, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, "https://"+h.addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+h.home.Tokens[user])
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// post sends one message over HTTP with a client-chosen id; it returns
// the HTTP status (0 when no answer came).
func (h *harness) post(id message.ID, prec message.Precedence, lbl []byte, body string) int {
	req, _ := json.Marshal(api.PostMessage{ID: id.String(), Channel: "exercise", Precedence: prec.String(), Label: string(lbl), Body: &body})
	code, _, err := h.do("officer", "POST", "/v1/messages", req)
	if err != nil {
		return 0
	}
	return code
}

// history pages through a channel's whole history over the API.
func (h *harness) history(channel string) []api.Entry {
	h.t.Helper()
	var all []api.Entry
	var after uint64
	for {
		code, b, err := h.do("auditor", "GET", fmt.Sprintf("/v1/channels/%s/messages?after=%d&limit=1000", channel, after), nil)
		if err != nil || code != http.StatusOK {
			h.t.Fatalf("history: %d %s %v", code, b, err)
		}
		var page struct {
			Messages []api.Entry
			Next     uint64
		}
		if err := json.Unmarshal(b, &page); err != nil {
			h.t.Fatal(err)
		}
		all = append(all, page.Messages...)
		if len(page.Messages) < 1000 {
			return all
		}
		after = page.Next
	}
}

func (h *harness) status(id string) api.MessageStatus {
	h.t.Helper()
	code, b, err := h.do("auditor", "GET", "/v1/messages/"+id, nil)
	var st api.MessageStatus
	if err != nil || code != http.StatusOK || json.Unmarshal(b, &st) != nil {
		h.t.Fatalf("GET /v1/messages/%s: %d %s %v", id, code, b, err)
	}
	return st
}

// load posts messages from workers goroutines until stop is closed (or
// max messages were tried) and returns the ids the node acknowledged.
func (h *harness) load(workers, max int, lbl []byte, stop <-chan struct{}, acked chan<- message.ID) {
	var wg sync.WaitGroup
	per := max / workers
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				select {
				case <-stop:
					return
				default:
				}
				prec := message.Precedences[(w+i)%4]
				id := message.NewID()
				switch h.post(id, prec, lbl, fmt.Sprintf("load %d/%d", w, i)) {
				case http.StatusCreated, http.StatusOK:
					acked <- id
				case 0:
					return // the node is gone
				}
			}
		}()
	}
	wg.Wait()
	close(acked)
}

// checkAcked asserts that every acknowledged id is in the channel history
// exactly once, still queued for PAK, and that no id appears twice.
func (h *harness) checkAcked(acked map[message.ID]bool) {
	h.t.Helper()
	seen := map[message.ID]int{}
	queued := map[message.ID]bool{}
	for _, e := range h.history("exercise") {
		seen[e.Message.ID]++
		for _, r := range e.Recipients {
			if r.Party == "PAK" && r.State == "queued" {
				queued[e.Message.ID] = true
			}
		}
	}
	for id, k := range seen {
		if k != 1 {
			h.t.Errorf("%s is in the history %d times", id, k)
		}
	}
	lost := 0
	for id := range acked {
		if seen[id] != 1 || !queued[id] {
			lost++
			if lost <= 5 {
				h.t.Errorf("acknowledged %s: in history %d times, queued for PAK %v", id, seen[id], queued[id])
			}
		}
	}
	if lost > 0 {
		h.t.Fatalf("%d of %d acknowledged messages lost or not queued", lost, len(acked))
	}
	k := 0
	for id := range acked {
		if k++; k > 5 {
			break
		}
		if st := h.status(id.String()); len(st.Recipients) != 1 || st.Recipients[0].State != "queued" {
			h.t.Errorf("GET /v1/messages/%s: %+v, want queued for PAK", id, st.Recipients)
		}
	}
}

func TestUpSQLite(t *testing.T) { testUp(t, "sqlite:store.db") }

func TestUpPostgres(t *testing.T) { testUp(t, nodetest.PostgresDSN(t)) }

func testUp(t *testing.T, store string) {
	h := newHarness(t, store)
	t0 := time.Now()
	pak := nodetest.NewHome(t, "PAK", nodetest.Config{})
	docFile := filepath.Join(t.TempDir(), "agreement.yaml")
	if err := os.WriteFile(docFile, nodetest.Agreement(t, time.Now(), h.home, pak), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.waitHTTP("/readyz", http.StatusServiceUnavailable) // no agreement yet
	half := filepath.Join(t.TempDir(), "half-signed.yaml")
	if err := os.WriteFile(half, nodetest.Sign(t, nodetest.Document(t, time.Now(), h.home, pak), h.home), 0o644); err != nil {
		t.Fatal(err)
	}
	h.cli(1, "agreement", "install", half, "--dir", h.home.Dir) // PAK has not signed
	h.waitHTTP("/readyz", http.StatusServiceUnavailable)
	out := h.cli(0, "agreement", "install", docFile, "--dir", h.home.Dir)
	if !strings.Contains(out, "in force") {
		t.Fatalf("agreement install: %q", out)
	}
	h.waitHTTP("/readyz", http.StatusOK)
	t.Logf("node up with agreement after %v", time.Since(t0))

	// Every precedence through the CLI, by catalogue marking.
	marking := "CONFIDENTIAL // REL TO USA, PAK"
	var cliIDs []string
	for _, p := range message.Precedences {
		out := h.cli(0, "send", "--dir", h.home.Dir, "--token", h.home.Tokens["officer"], "--channel", "exercise",
			"--marking", marking, "--precedence", p.String(), "--json", p.String()+" via the CLI")
		var rc api.Receipt
		if err := json.Unmarshal([]byte(out), &rc); err != nil {
			t.Fatalf("send --json: %q: %v", out, err)
		}
		if len(rc.Recipients) != 1 || rc.Recipients[0].State != "queued" {
			t.Fatalf("send %s: recipients %+v", p, rc.Recipients)
		}
		cliIDs = append(cliIDs, rc.ID.String())
	}
	h.cli(1, "send", "--dir", h.home.Dir, "--channel", "exercise", "--marking", "TOP SECRET // REL TO USA, PAK", "x")

	// Every precedence over HTTP from many goroutines.
	lbl := nodetest.Label(t, "USA", "CONFIDENTIAL", "USA", "PAK")
	acked := map[message.ID]bool{}
	ch := make(chan message.ID, 64)
	go h.load(8, 200, lbl, nil, ch)
	for id := range ch {
		acked[id] = true
	}
	if len(acked) != 200 {
		t.Fatalf("%d of 200 concurrent posts acknowledged", len(acked))
	}
	tail := h.cli(0, "tail", "--dir", h.home.Dir, "--token", h.home.Tokens["auditor"], "--channel", "exercise", "--json")
	var tailed []api.Entry
	sc := bufio.NewScanner(strings.NewReader(tail))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e api.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("tail line %q: %v", sc.Text(), err)
		}
		tailed = append(tailed, e)
	}
	if len(tailed) != 204 {
		t.Fatalf("tail printed %d messages, want 204", len(tailed))
	}
	precs := map[message.Precedence]int{}
	for _, e := range tailed {
		precs[e.Message.Precedence]++
		if e.Marking != marking {
			t.Errorf("tail: %s marked %q, want %q", e.Message.ID, e.Marking, marking)
		}
	}
	if len(precs) != 4 || !strings.Contains(h.cli(0, "tail", "--dir", h.home.Dir, "--channel", "exercise"), cliIDs[0]) {
		t.Errorf("tail: precedences %v; text tail must name %s", precs, cliIDs[0])
	}
	t.Logf("CLI and 200 concurrent posts tailed after %v", time.Since(t0))

	// Quarantine and the two-person rule through the CLI.
	dirty := message.NewID()
	if code := h.post(dirty, message.Immediate, lbl, "phase line "+nodetest.DirtyWords[1]); code != http.StatusCreated {
		t.Fatalf("dirty post: %d", code)
	}
	if out := h.cli(0, "quarantine", "list", "--dir", h.home.Dir, "--token", h.home.Tokens["reviewer-a"]); !strings.Contains(out, dirty.String()) {
		t.Fatalf("quarantine list: %q", out)
	}
	h.cli(1, "quarantine", "release", "--dir", h.home.Dir, "--token", h.home.Tokens["officer"], dirty.String(), "PAK")
	h.cli(0, "quarantine", "release", "--dir", h.home.Dir, "--token", h.home.Tokens["reviewer-a"], dirty.String(), "PAK")
	h.cli(1, "quarantine", "release", "--dir", h.home.Dir, "--token", h.home.Tokens["reviewer-a"], dirty.String(), "PAK")
	if st := h.status(dirty.String()); st.Recipients[0].State != "quarantined" {
		t.Fatalf("after one approval: %+v", st.Recipients)
	}
	if out := h.cli(0, "quarantine", "release", "--dir", h.home.Dir, "--token", h.home.Tokens["reviewer-b"], dirty.String(), "PAK"); !strings.Contains(out, "released") {
		t.Fatalf("second release: %q", out)
	}
	if st := h.status(dirty.String()); st.Recipients[0].State != "queued" {
		t.Fatalf("after two approvals: %+v", st.Recipients)
	}
	acked[dirty] = true
	for _, s := range cliIDs {
		id, _ := message.ParseID(s)
		acked[id] = true
	}

	// SIGKILL mid-load, restart, nothing acknowledged lost or doubled.
	ch = make(chan message.ID, 64)
	stop := make(chan struct{})
	go h.load(8, 2000, lbl, stop, ch)
	before, n := len(acked), 0
	for id := range ch {
		acked[id] = true
		if n++; n == 600 {
			if code := h.stop(syscall.SIGKILL); code != -int(syscall.SIGKILL) {
				t.Fatalf("node exit %d after SIGKILL", code)
			}
			close(stop)
		}
	}
	if n < 600 {
		t.Fatalf("only %d posts acknowledged before the load ended; the node was not killed mid-load", n)
	}
	t.Logf("SIGKILL after %d acknowledged posts (%v)", len(acked)-before, time.Since(t0))
	h.start()
	h.waitHTTP("/readyz", http.StatusOK)
	h.checkAcked(acked)
	t.Logf("restarted, %d acknowledged messages all there once, after %v", len(acked), time.Since(t0))

	// SIGTERM mid-load, with 'tail --follow' attached: a graceful exit
	// 0, the stream ends, nothing acknowledged lost.
	hist := h.history("exercise")
	follow := exec.Command(h.bin, "tail", "--dir", h.home.Dir, "--token", h.home.Tokens["auditor"], "--channel", "exercise", "--follow", "--json",
		"--after", fmt.Sprint(hist[len(hist)-1].Seq))
	followOut, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	followed := make(chan map[message.ID]int, 1)
	go func() {
		seen := map[message.ID]int{}
		sc := bufio.NewScanner(followOut)
		for sc.Scan() {
			var e api.Entry
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				if e.Seq <= hist[len(hist)-1].Seq {
					t.Errorf("tail --follow --after %d printed seq %d", hist[len(hist)-1].Seq, e.Seq)
				}
				seen[e.Message.ID]++
			}
		}
		followed <- seen
	}()
	ch = make(chan message.ID, 64)
	stop = make(chan struct{})
	go h.load(8, 1000, lbl, stop, ch)
	n = 0
	for id := range ch {
		acked[id] = true
		if n++; n == 300 {
			if code := h.stop(syscall.SIGTERM); code != 0 {
				h.dumpLog()
				t.Fatalf("node exit %d after SIGTERM, want 0", code)
			}
			close(stop)
		}
	}
	select {
	case seen := <-followed:
		if err := follow.Wait(); err != nil {
			t.Errorf("tail --follow after the node stopped: %v", err)
		}
		if len(seen) == 0 {
			t.Error("tail --follow printed nothing while the load ran")
		}
		for id, k := range seen {
			if k != 1 {
				t.Errorf("tail --follow printed %s %d times", id, k)
			}
		}
	case <-time.After(20 * time.Second):
		follow.Process.Kill()
		t.Fatal("tail --follow did not end when the node stopped")
	}
	h.start()
	h.waitHTTP("/readyz", http.StatusOK)
	h.checkAcked(acked)
	if code := h.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("idle node exit %d after SIGTERM", code)
	}
	t.Logf("%d acknowledged messages survived SIGKILL and SIGTERM; total %v", len(acked), time.Since(t0))
}
