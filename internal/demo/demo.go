// Package demo tells the CIS-MOA story that 'liaison demo' shows: three
// real nodes (USA, PAK and IND) on loopback, each with its own home, a
// shared simulated clock, and narrated steps whose every claim is checked.
//
// It is the quick start's first command, so it must finish in under a
// minute on a 2-core machine and exit non-zero, naming the step, when
// anything did not behave as told. The nodes are the same code as
// 'liaison up': real stores, audit logs, TLS 1.3 links with hybrid
// post-quantum key exchange, sealed envelopes and the guard. Only the
// clock is simulated, so that fifteen years pass in seconds, and the
// USA–PAK link runs through a link simulator so the story can cut it.
package demo

import (
	"context"
	"crypto/ed25519"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/clock"
	"liaison/internal/federation/linksim"
	"liaison/internal/message"
	"liaison/internal/node"
)

//go:embed policies/*.xml
var policies embed.FS

// Options configure a run of the demo.
type Options struct {
	Out   io.Writer
	JSON  bool // JSON lines instead of narrated text
	Color bool // ANSI colours
	// Keep keeps the nodes' homes (and prints where) instead of removing
	// them; with Keep the nodes also stay up until ctx is done, so their
	// consoles can be visited.
	Keep bool
	// Dir is where the homes go; "" is a new temporary directory.
	Dir string
	// Log receives the nodes' structured logs; nil writes them to
	// DIR/<party>/node.log.
	Log *slog.Logger
}

// ErrFailed is wrapped by Run's error when a step did not behave as told.
var ErrFailed = errors.New("demo failed")

// party is one nation's node in the story.
type party struct {
	id       string
	name     string
	home     string
	node     *node.Node
	signKey  ed25519.PrivateKey // the party's agreement-signing key (not the node key)
	policy   string             // file name of its SPIF in policies/
	policyID string             // its OID
	tokens   map[string]string  // console/API tokens by user name
}

type story struct {
	n       *narrator
	opts    Options
	clock   *clock.Sim
	dir     string
	parties map[string]*party
	proxy   *linksim.Proxy // the USA→PAK link
	ledger  []ledgerRow    // what crossed and what did not
	cisV1   *agreement.Document
	held    message.ID // the message held across the CIS-MOA's lapse
}

type ledgerRow struct {
	when, what, to string
	id             message.ID
}

// Run tells the story. It returns nil when every step behaved as told.
func Run(ctx context.Context, opts Options) (err error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	s := &story{n: &narrator{w: opts.Out, json: opts.JSON, color: opts.Color, start: time.Now()}, opts: opts, parties: map[string]*party{}}
	s.dir = opts.Dir
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "liaison-demo-"); err != nil {
			return err
		}
	}
	defer func() {
		s.shutdown()
		if !opts.Keep && opts.Dir == "" {
			os.RemoveAll(s.dir)
		}
	}()
	// The story has three minutes; with Keep, the nodes then stay up
	// until the caller's ctx is done (Ctrl-C), not until those run out.
	untilInterrupt := ctx
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"Setup: three nodes on loopback", s.setup},
		{"1. 2005: USA and PAK draft, approve and sign the CIS-MOA", s.sign2005},
		{"2. 2019: traffic under two agreements", s.traffic2019},
		{"3. 2020: the CIS-MOA expires", s.expiry2020},
		{"4. 2023: renewal by circulation summary", s.renewal2023},
		{"5. Audit: partners verify each other", s.auditStep},
	}
	for _, st := range steps {
		s.n.Step(st.title)
		if err := st.run(ctx); err != nil {
			s.n.Check(false, "%v", err)
			s.n.Done()
			return fmt.Errorf("%w: step %q: %v", ErrFailed, st.title, err)
		}
		if fails := s.n.Failures(); len(fails) > 0 {
			s.n.Done()
			return fmt.Errorf("%w: %s", ErrFailed, fails[0])
		}
	}
	if opts.Keep {
		s.keep(untilInterrupt)
	}
	s.n.Done()
	return nil
}

func (s *story) shutdown() {
	for _, p := range s.parties {
		if p.node != nil {
			p.node.Close()
		}
	}
	if s.proxy != nil {
		s.proxy.Close()
	}
}

// keep prints where everything is and waits until interrupted.
func (s *story) keep(ctx context.Context) {
	s.n.Step("Kept: the nodes stay up until you press Ctrl-C")
	for _, id := range []string{"USA", "PAK", "IND"} {
		p := s.parties[id]
		s.n.Say("%s home %s", id, p.home)
		if a := p.node.APIAddr(); a != nil {
			s.n.Say("  console https://%s/console/  (operator token in %s; tokens: %s)", a, filepath.Join(p.home, "operator.token"), s.tokenList(p))
		}
	}
	<-ctx.Done()
}

func (s *story) tokenList(p *party) string {
	var parts []string
	for u, t := range p.tokens {
		parts = append(parts, u+"="+t)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// date is a UTC date.
func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// waitFor polls cond until it holds or d passes (the nodes are real and
// asynchronous; the story waits for what it claims, with a deadline).
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}
