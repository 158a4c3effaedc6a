package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func fetcherOf(l *Log) TileFetcher {
	return func(_ context.Context, p string) ([]byte, error) { return l.ServeFile(p) }
}

func newTestWitness(t *testing.T, key ed25519.PrivateKey, partnerKey ed25519.PrivateKey, reg prometheus.Registerer, forks *[]*ForkError) *Witness {
	t.Helper()
	w, err := NewWitness(WitnessConfig{
		Dir:        t.TempDir(),
		Name:       "liaison.xbb.example/witness",
		Signer:     key,
		Partners:   map[string]ed25519.PublicKey{testOrigin: partnerKey.Public().(ed25519.PublicKey)},
		Registerer: reg,
		OnFork:     func(e *ForkError) { *forks = append(*forks, e) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWitnessDetectsRewrittenHistory runs a partner log that grows
// honestly, then shows the witness a log with the same origin and key
// whose history differs, a same-size fork and a rollback.
func TestWitnessDetectsRewrittenHistory(t *testing.T) {
	pkey, wkey := testKey(t, 1), testKey(t, 2)
	reg := prometheus.NewRegistry()
	var forks []*ForkError
	w := newTestWitness(t, wkey, pkey, reg, &forks)

	p := openTestLog(t, t.TempDir(), pkey)
	if err := p.TrustWitness("XBB", w.VerifierKey()); err != nil {
		t.Fatal(err)
	}
	offer := func(l *Log, size uint64) ([]byte, []byte, error) {
		t.Helper()
		cp := waitForSize(t, l, size)
		cosig, err := w.Witness(t.Context(), testOrigin, cp, fetcherOf(l))
		return cp, cosig, err
	}

	appendN(t, p, 0, 10)
	cp10, cosig, err := offer(p, 10)
	if err != nil {
		t.Fatalf("first offer: %v", err)
	}
	if err := p.AddCosignature(t.Context(), "XBB", cp10, cosig); err != nil {
		t.Fatalf("AddCosignature: %v", err)
	}
	if err := p.AddCosignature(t.Context(), "XBB", cp10, []byte("\u2014 liaison.xbb.example/witness AAAA\n")); err == nil {
		t.Error("AddCosignature accepted a bad cosignature")
	}
	appendN(t, p, 10, 300)
	cp310, cosig, err := offer(p, 310)
	if err != nil {
		t.Fatalf("consistent offer: %v", err)
	}
	if err := p.AddCosignature(t.Context(), "XBB", cp310, cosig); err != nil {
		t.Fatalf("AddCosignature: %v", err)
	}
	if got, _ := p.Cosigned("XBB"); string(got[:len(cp310)]) != string(cp310) {
		t.Errorf("Cosigned = %q, want the checkpoint of size 310", got)
	}
	// Same checkpoint again: fine.
	if _, err := w.Witness(t.Context(), testOrigin, cp310, fetcherOf(p)); err != nil {
		t.Fatalf("repeated offer: %v", err)
	}

	// A log with the same key whose entries differ: a fork.
	q := openTestLog(t, t.TempDir(), pkey)
	appendN(t, q, 1000, 400)
	_, _, err = offer(q, 400)
	var fe *ForkError
	if !errors.As(err, &fe) || fe.Rollback {
		t.Fatalf("offer of a rewritten log = %v, want a fork", err)
	}
	for _, name := range []string{"old", "new"} {
		b, err := os.ReadFile(filepath.Join(fe.Evidence, name))
		if err != nil || len(b) == 0 {
			t.Errorf("evidence %s: %v", name, err)
		}
	}
	if _, err := ParseCheckpoint(fe.Old, testOrigin, mustVerifier(t, pkey)); err != nil {
		t.Errorf("evidence old checkpoint does not verify: %v", err)
	}

	// Same size, different root.
	r := openTestLog(t, t.TempDir(), pkey)
	appendN(t, r, 2000, 310)
	if _, _, err := offer(r, 310); !errors.As(err, &fe) || fe.Rollback {
		t.Fatalf("same-size fork = %v, want a fork", err)
	}
	// The partner goes back to an older checkpoint.
	if _, err := w.Witness(t.Context(), testOrigin, cp10, fetcherOf(p)); !errors.As(err, &fe) || !fe.Rollback {
		t.Fatalf("rollback = %v, want a rollback", err)
	}
	// The honest log still extends what was accepted.
	appendN(t, p, 310, 5)
	if _, _, err := offer(p, 315); err != nil {
		t.Fatalf("honest offer after forks: %v", err)
	}

	if len(forks) != 3 {
		t.Errorf("OnFork called %d times, want 3", len(forks))
	}
	if got := counterSum(t, reg, "liaison_audit_forks_total"); got != 3 {
		t.Errorf("liaison_audit_forks_total = %v, want 3", got)
	}
	st := w.Status()
	if len(st) != 1 || st[0].Forks != 3 || st[0].Size != 315 {
		t.Errorf("Status = %+v", st)
	}

	// A restarted witness remembers what it accepted.
	cfg := w.cfg
	cfg.OnFork, cfg.Registerer = nil, nil
	w2, err := NewWitness(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st := w2.Status(); len(st) != 1 || st[0].Size != 315 {
		t.Errorf("Status after restart = %+v", st)
	}
	if _, err := w2.Witness(t.Context(), testOrigin, waitForSize(t, q, 400), fetcherOf(q)); !errors.As(err, &fe) {
		t.Errorf("restarted witness missed the fork: %v", err)
	}
}

func TestWitnessRefusesUnknownOrForgedCheckpoint(t *testing.T) {
	pkey, wkey, other := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	var forks []*ForkError
	w := newTestWitness(t, wkey, pkey, nil, &forks)
	o := openTestLog(t, t.TempDir(), other)
	cp := waitForSize(t, o, 0)
	if _, err := w.Witness(t.Context(), testOrigin, cp, fetcherOf(o)); err == nil {
		t.Error("witness cosigned a checkpoint signed by the wrong key")
	}
	if _, err := w.Witness(t.Context(), "liaison.xcc.example/audit", cp, fetcherOf(o)); err == nil {
		t.Error("witness cosigned a checkpoint of an unknown partner")
	}
	if len(forks) != 0 {
		t.Errorf("a bad signature raised %d fork alarms", len(forks))
	}
}

// TestRestartKeepsConsistency closes and reopens a log and checks that the
// checkpoints after the restart extend those before.
func TestRestartKeepsConsistency(t *testing.T) {
	pkey, wkey := testKey(t, 1), testKey(t, 2)
	var forks []*ForkError
	w := newTestWitness(t, wkey, pkey, nil, &forks)
	dir := t.TempDir()
	l := openTestLog(t, dir, pkey)
	appendN(t, l, 0, 50)
	closeLog(t, l)
	cp50 := waitForSize(t, l, 50)
	if _, err := w.Witness(t.Context(), testOrigin, cp50, fetcherOf(l)); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, dir, pkey)
	appendN(t, l, 50, 50)
	cp100 := waitForSize(t, l, 100)
	if _, err := w.Witness(t.Context(), testOrigin, cp100, fetcherOf(l)); err != nil {
		t.Fatalf("checkpoint after restart: %v", err)
	}
	closeLog(t, l)
	if rep, err := Verify(t.Context(), dir, testOrigin, pkey.Public().(ed25519.PublicKey)); err != nil || rep.Entries != 100 {
		t.Fatalf("Verify after restart = %+v, %v", rep, err)
	}
}

func TestServeFile(t *testing.T) {
	l := openTestLog(t, t.TempDir(), testKey(t, 1))
	appendN(t, l, 0, 3)
	closeLog(t, l)
	for _, p := range []string{"checkpoint", "tile/0/000.p/3"} {
		if _, err := l.ServeFile(p); err != nil {
			t.Errorf("ServeFile(%q) = %v", p, err)
		}
	}
	if _, err := l.ServeFile("tile/0/001"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ServeFile of a missing tile = %v, want ErrNotExist", err)
	}
	for _, p := range []string{"tile/entries/000.p/3", "tile/0/../../.state/treeState", ".state/treeState", "tile/0/0", "/checkpoint", "tile/x/000", ".liaison/checkpoints/00000000000000000003"} {
		if _, err := l.ServeFile(p); !errors.Is(err, ErrNotServed) {
			t.Errorf("ServeFile(%q) = %v, want ErrNotServed", p, err)
		}
	}
}

func counterSum(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestWitnessEntanglesOwnLog checks that the witness records what it
// cosigned, and the forks it saw, in its own node's log.
func TestWitnessEntanglesOwnLog(t *testing.T) {
	pkey, wkey := testKey(t, 1), testKey(t, 2)
	own := openTestLog(t, t.TempDir(), wkey)
	w, err := NewWitness(WitnessConfig{
		Dir: t.TempDir(), Name: "liaison.xbb.example/witness", Signer: wkey, Log: own,
		Partners: map[string]ed25519.PublicKey{testOrigin: pkey.Public().(ed25519.PublicKey)},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := openTestLog(t, t.TempDir(), pkey)
	appendN(t, p, 0, 4)
	if _, err := w.Witness(t.Context(), testOrigin, waitForSize(t, p, 4), fetcherOf(p)); err != nil {
		t.Fatal(err)
	}
	q := openTestLog(t, t.TempDir(), pkey)
	appendN(t, q, 100, 4)
	var fe *ForkError
	if _, err := w.Witness(t.Context(), testOrigin, waitForSize(t, q, 4), fetcherOf(q)); !errors.As(err, &fe) {
		t.Fatalf("fork not detected: %v", err)
	}
	closeLog(t, own)
	recs, err := own.Entries(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range recs {
		if r.Entry.Peer == testOrigin {
			kinds = append(kinds, r.Entry.Kind)
		}
	}
	if len(kinds) != 2 || kinds[0] != KindWitness || kinds[1] != KindWitnessFork {
		t.Errorf("own log records %q, want [%s %s]", kinds, KindWitness, KindWitnessFork)
	}
}
