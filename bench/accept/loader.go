package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"liaison/bench/internal/rig"
)

// A loader runs the load generator: it gets ready (connections up, warmed),
// calls begin, and posts from w senders for d.
type loader interface {
	run(ctx context.Context, w int, d time.Duration, begin func()) (rig.Rate, error)
}

// inline is the load generator in the node's process, the default: its
// goroutines share the node's Go runtime (-load inline).
type inline func(ctx context.Context) error

func (send inline) run(ctx context.Context, w int, d time.Duration, begin func()) (rig.Rate, error) {
	begin()
	return rig.Load(ctx, w, d, send)
}

// loadJob is what a load process runs: the lean client posting Body to
// Path on Addr, from Senders connections for Duration; each request
// carries Per messages.
type loadJob struct {
	Addr, Token, Path string
	CA                []byte // DER of the node's CA certificate
	Body              []byte
	Per               int
	Senders           int
	Duration          time.Duration
}

// loadResult is the load process's answer.
type loadResult struct {
	Rate rig.Rate
	Err  string
}

// process is the load generator in a process of its own, as wrk would be
// (-load process): this binary run with -load-job, reading the job on
// stdin. On this machine it measured no better than inline (the client's
// process then takes its share of the 2 cores from the node's).
type process struct{ job loadJob }

func (p process) run(ctx context.Context, w int, d time.Duration, begin func()) (rig.Rate, error) {
	exe, err := os.Executable()
	if err != nil {
		return rig.Rate{}, err
	}
	cmd := exec.CommandContext(ctx, exe, "-load-job")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return rig.Rate{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return rig.Rate{}, err
	}
	if err := cmd.Start(); err != nil {
		return rig.Rate{}, err
	}
	defer cmd.Wait()
	defer stdin.Close()
	job := p.job
	job.Senders, job.Duration = w, d
	enc := json.NewEncoder(stdin)
	if err := enc.Encode(job); err != nil {
		return rig.Rate{}, err
	}
	out := bufio.NewScanner(stdout)
	if !out.Scan() || out.Text() != "ready" {
		return rig.Rate{}, fmt.Errorf("the load process did not get ready: %q", out.Text())
	}
	begin()
	if _, err := fmt.Fprintln(stdin, "go"); err != nil {
		return rig.Rate{}, err
	}
	if !out.Scan() {
		return rig.Rate{}, errors.New("the load process ended without a result")
	}
	var res loadResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return rig.Rate{}, fmt.Errorf("the load process's result: %w", err)
	}
	if res.Err != "" {
		return res.Rate, errors.New(res.Err)
	}
	return res.Rate, nil
}

// runLoadJob is the load process: it reads a job on stdin, connects and
// warms up for half a second, says "ready", waits for "go", posts for the
// job's duration and writes the result as one line of JSON.
func runLoadJob() error {
	ctx := context.Background()
	in := bufio.NewReader(os.Stdin)
	var job loadJob
	if err := json.NewDecoder(in).Decode(&job); err != nil {
		return fmt.Errorf("reading the job: %w", err)
	}
	ca, err := x509.ParseCertificate(job.CA)
	if err != nil {
		return err
	}
	check := wantCreated
	if job.Per > 1 {
		check = wantAllAccepted(job.Per)
	}
	lp := newLeanPoster(job.Addr, ca, job.Token, job.Path, job.Body, job.Senders, check)
	defer lp.close()
	if _, err := rig.Load(ctx, job.Senders, 500*time.Millisecond, lp.post); err != nil {
		return err
	}
	fmt.Println("ready")
	rest := bufio.NewScanner(in)
	if !rest.Scan() || rest.Text() != "go" {
		return fmt.Errorf("waiting for \"go\" on stdin: got %q (%v)", rest.Text(), rest.Err())
	}
	r, err := rig.Load(ctx, job.Senders, job.Duration, lp.post)
	res := loadResult{Rate: r}
	if err != nil {
		res.Err = err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
