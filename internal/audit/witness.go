package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// TileFetcher reads a file of a partner's log by its tlog-tiles path
// ("checkpoint", "tile/<L>/<N>[.p/<W>]"), typically over the federation
// link from the partner's [Log.ServeFile]. It MUST return an error wrapping
// os.ErrNotExist for a file the partner does not have.
type TileFetcher func(ctx context.Context, path string) ([]byte, error)

// maxTileSize is the size of a full hash tile: 256 SHA-256 hashes.
const maxTileSize = layout.TileWidth * 32

// tiles adapts f to Tessera's tile fetcher contract (partial falls back
// to full).
func (f TileFetcher) tiles(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return partialOrFull(p, func(p uint8) ([]byte, error) {
		b, err := f(ctx, layout.TilePath(level, index, p))
		if err == nil && len(b) > maxTileSize {
			return nil, fmt.Errorf("tile of %d bytes exceeds %d", len(b), maxTileSize)
		}
		return b, err
	})
}

// ForkError is returned by [Witness.Witness] when a partner offers a
// checkpoint that contradicts one it signed before: a different root at
// the same size, a larger tree that is not an extension (a fork), or a
// smaller tree (a rollback). Both signed checkpoints are kept on disk as
// evidence; together they prove the partner's log changed its history.
type ForkError struct {
	Origin   string
	Rollback bool     // the new checkpoint is smaller than the old one
	Old, New []byte   // the two signed checkpoints
	Proof    [][]byte // the consistency proof that failed, if any
	Evidence string   // directory holding the evidence
}

func (e *ForkError) Error() string {
	what := "fork"
	if e.Rollback {
		what = "rollback"
	}
	return fmt.Sprintf("audit log %q: %s detected, evidence in %q", e.Origin, what, e.Evidence)
}

// WitnessConfig configures a [Witness]. Dir and Signer are required.
type WitnessConfig struct {
	// Dir holds, per partner, the last checkpoint accepted, the cosigned
	// checkpoints and any fork evidence.
	Dir string
	// Name names this witness's cosigning key, e.g. "liaison.xaa.example/witness".
	Name string
	// Signer is the node key; the cosigning key is derived from it with
	// [CosignerKey]. CosignerKey, if set, is used instead.
	Signer      ed25519.PrivateKey
	CosignerKey ed25519.PrivateKey
	// Partners pins each partner log's origin to its checkpoint key.
	Partners map[string]ed25519.PublicKey
	// Log, if set, receives a KindWitness entry for each checkpoint cosigned
	// and a KindWitnessFork entry for each fork (entanglement: each log
	// commits to what its node saw of the partner's).
	Log *Log
	// OnFork, if set, is called for each fork or rollback detected.
	OnFork func(*ForkError)
	// Logger receives alarms; nil discards them.
	Logger *slog.Logger
	// Registerer, if set, receives liaison_audit_forks_total.
	Registerer prometheus.Registerer
}

// Witness checks and cosigns partners' checkpoints (C2SP tlog-cosignature)
// and keeps what it accepted. Its methods are safe for concurrent use.
type Witness struct {
	cfg    WitnessConfig
	signer note.Signer
	vkey   string
	logger *slog.Logger
	forks  *prometheus.CounterVec

	// offerMu serialises offers, so that the last accepted checkpoint of a
	// partner is read, compared and replaced atomically. Offers are rare
	// (one per checkpoint interval per partner); one lock is enough.
	// Lock order: offerMu before mu.
	offerMu sync.Mutex

	mu       sync.Mutex // guards the fields below and the partner directories
	partners map[string]note.Verifier
	status   map[string]*PartnerStatus
}

// PartnerStatus is what a witness knows of one partner's log.
type PartnerStatus struct {
	Origin      string    `json:"origin"`
	Size        uint64    `json:"size"`         // of the last checkpoint accepted
	WitnessedAt time.Time `json:"witnessed_at"` // when it was cosigned
	Forks       int       `json:"forks"`        // forks or rollbacks seen since start
	LastFork    string    `json:"last_fork"`    // evidence directory of the last one
	LastError   string    `json:"last_error"`   // last failure other than a fork
}

// NewWitness returns a witness storing its state in cfg.Dir.
func NewWitness(cfg WitnessConfig) (*Witness, error) {
	if cfg.Dir == "" || cfg.Name == "" {
		return nil, errors.New("witness needs a directory and a name")
	}
	key := cfg.CosignerKey
	if key == nil {
		var err error
		if key, err = CosignerKey(cfg.Signer); err != nil {
			return nil, fmt.Errorf("witness key: %w", err)
		}
	}
	s, err := cosigner(cfg.Name, key)
	if err != nil {
		return nil, err
	}
	vkey, err := CosignerVerifierKey(cfg.Name, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating witness directory: %w", err)
	}
	w := &Witness{
		cfg: cfg, signer: s, vkey: vkey, logger: cfg.Logger,
		partners: map[string]note.Verifier{}, status: map[string]*PartnerStatus{},
		forks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liaison_audit_forks_total",
			Help: "Forks or rollbacks of a partner's audit log detected by this node's witness.",
		}, []string{"partner", "kind"}),
	}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	for origin, pub := range cfg.Partners {
		if err := w.Pin(origin, pub); err != nil {
			return nil, err
		}
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(w.forks); err != nil {
			w.logger.Warn("witness metrics not registered", slog.Any("error", err))
		}
	}
	return w, nil
}

// VerifierKey returns the cosignature/v1 verifier key partners need to
// check this witness's cosignatures ([Log.TrustWitness]).
func (w *Witness) VerifierKey() string { return w.vkey }

// Pin sets the key that signs the checkpoints of partner log origin.
func (w *Witness) Pin(origin string, pub ed25519.PublicKey) error {
	v, err := NoteVerifier(origin, pub)
	if err != nil {
		return fmt.Errorf("partner %q: %w", origin, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partners[origin] = v
	if w.status[origin] == nil {
		st := &PartnerStatus{Origin: origin}
		// Pick up what an earlier run accepted.
		if raw, err := os.ReadFile(filepath.Join(w.cfg.Dir, fileSafe(origin), "checkpoint")); err == nil {
			if cp, err := ParseCheckpoint(raw, origin, v); err == nil {
				st.Size = cp.Size
			}
		}
		w.status[origin] = st
	}
	return nil
}

// Status returns what the witness knows of each partner seen since start.
func (w *Witness) Status() []PartnerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]PartnerStatus, 0, len(w.status))
	for _, s := range w.status {
		out = append(out, *s)
	}
	return out
}

// Witness checks checkpoint, the latest checkpoint of partner log origin:
// its signature by the pinned key, and its consistency with the last one
// this witness accepted, using fetch to read the partner's hash tiles. If
// it is consistent, Witness cosigns it, keeps it and returns the cosignature
// lines (C2SP tlog-cosignature, as a tlog-witness add-checkpoint response
// body). If it contradicts the last one, Witness keeps both as evidence,
// raises the alarm and returns a [*ForkError].
func (w *Witness) Witness(ctx context.Context, origin string, checkpoint []byte, fetch TileFetcher) ([]byte, error) {
	w.mu.Lock()
	v, ok := w.partners[origin]
	st := w.status[origin] // set by Pin
	w.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no pinned key for partner log %q", origin)
	}
	cosig, err := w.witness(ctx, origin, v, checkpoint, fetch)
	w.mu.Lock()
	defer w.mu.Unlock()
	var fe *ForkError
	switch {
	case errors.As(err, &fe):
		st.Forks++
		st.LastFork = fe.Evidence
	case err != nil:
		st.LastError = err.Error()
	}
	return cosig, err
}

func (w *Witness) witness(ctx context.Context, origin string, v note.Verifier, raw []byte, fetch TileFetcher) ([]byte, error) {
	cp, err := ParseCheckpoint(raw, origin, v)
	if err != nil {
		return nil, err
	}
	// One offer per partner at a time: the last accepted checkpoint is
	// read, compared and replaced under the lock.
	w.offerMu.Lock()
	defer w.offerMu.Unlock()
	pdir := filepath.Join(w.cfg.Dir, fileSafe(origin))
	oldRaw, err := os.ReadFile(filepath.Join(pdir, "checkpoint"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading last checkpoint of %q: %w", origin, err)
	}
	if oldRaw != nil {
		old, err := ParseCheckpoint(oldRaw, origin, v)
		if err != nil {
			return nil, fmt.Errorf("last checkpoint of %q no longer verifies: %w", origin, err)
		}
		if err := w.checkConsistent(ctx, origin, old, oldRaw, cp, raw, fetch); err != nil {
			return nil, err
		}
	}
	signed, err := note.Sign(&note.Note{Text: string(bodyOf(raw))}, w.signer)
	if err != nil {
		return nil, fmt.Errorf("cosigning: %w", err)
	}
	cosig := signed[len(bodyOf(raw))+1:]
	// Consistent, so at least as large as the last one accepted.
	if err := writeAtomic(filepath.Join(pdir, "checkpoint"), raw); err != nil {
		return nil, fmt.Errorf("storing checkpoint of %q: %w", origin, err)
	}
	if err := writeAtomic(filepath.Join(pdir, "cosigned", sizeName(cp.Size)), joinNote(raw, cosig)); err != nil {
		return nil, fmt.Errorf("storing cosigned checkpoint of %q: %w", origin, err)
	}
	if err := prune(filepath.Join(pdir, "cosigned"), cosigKeep); err != nil {
		w.logger.WarnContext(ctx, "pruning cosigned checkpoints", slog.String("partner", origin), slog.Any("error", err))
	}
	w.mu.Lock()
	if st := w.status[origin]; st != nil {
		st.Size, st.WitnessedAt, st.LastError = cp.Size, time.Now().UTC(), ""
	}
	w.mu.Unlock()
	if w.cfg.Log != nil {
		w.cfg.Log.AppendAsync(ctx, Entry{Kind: KindWitness, Peer: origin, Detail: map[string]string{
			"size": strconv.FormatUint(cp.Size, 10), "root": hex.EncodeToString(cp.Hash),
		}})
	}
	return cosig, nil
}

// checkConsistent returns a *ForkError unless cp extends old.
//
// It builds the proof with Tessera's client.ProofBuilder rather than
// client.LogStateTracker because the tracker accepts, without a word, a
// checkpoint no larger than the one it holds: it would miss a rollback and
// a fork at the same size.
func (w *Witness) checkConsistent(ctx context.Context, origin string, old log.Checkpoint, oldRaw []byte, cp log.Checkpoint, raw []byte, fetch TileFetcher) error {
	switch {
	case cp.Size < old.Size:
		return w.fork(ctx, &ForkError{Origin: origin, Rollback: true, Old: oldRaw, New: raw})
	case cp.Size == old.Size:
		if !bytes.Equal(cp.Hash, old.Hash) {
			return w.fork(ctx, &ForkError{Origin: origin, Old: oldRaw, New: raw})
		}
		return nil
	case old.Size == 0:
		return nil
	}
	pb, err := client.NewProofBuilder(ctx, cp.Size, fetch.tiles)
	if err != nil {
		return err
	}
	p, err := pb.ConsistencyProof(ctx, old.Size, cp.Size)
	if err != nil {
		return fmt.Errorf("fetching consistency proof %d..%d from %q: %w", old.Size, cp.Size, origin, err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cp.Size, p, old.Hash, cp.Hash); err != nil {
		return w.fork(ctx, &ForkError{Origin: origin, Old: oldRaw, New: raw, Proof: p})
	}
	return nil
}

// fork keeps the evidence of e, raises the alarm and returns e.
func (w *Witness) fork(ctx context.Context, e *ForkError) error {
	kind := "fork"
	if e.Rollback {
		kind = "rollback"
	}
	sum := sha256.Sum256(append(append([]byte{}, e.Old...), e.New...))
	e.Evidence = filepath.Join(w.cfg.Dir, fileSafe(e.Origin), "evidence", hex.EncodeToString(sum[:8]))
	var proofText strings.Builder
	for _, h := range e.Proof {
		proofText.WriteString(hex.EncodeToString(h) + "\n")
	}
	for name, b := range map[string][]byte{"old": e.Old, "new": e.New, "proof": []byte(proofText.String())} {
		if err := writeAtomic(filepath.Join(e.Evidence, name), b); err != nil {
			w.logger.ErrorContext(ctx, "cannot store fork evidence", slog.String("partner", e.Origin), slog.Any("error", err))
		}
	}
	w.forks.WithLabelValues(e.Origin, kind).Inc()
	w.logger.ErrorContext(ctx, "partner audit log "+kind, slog.String("partner", e.Origin), slog.String("evidence", e.Evidence))
	if w.cfg.Log != nil {
		w.cfg.Log.AppendAsync(ctx, Entry{Kind: KindWitnessFork, Peer: e.Origin, Decision: kind, Detail: map[string]string{
			"old": hex.EncodeToString(bodyHash(e.Old)), "new": hex.EncodeToString(bodyHash(e.New)),
		}})
	}
	if w.cfg.OnFork != nil {
		w.cfg.OnFork(e)
	}
	return e
}

// bodyOf returns the text of a signed note, up to and including the last
// newline before the blank line that starts the signatures.
func bodyOf(n []byte) []byte {
	if i := bytes.LastIndex(n, []byte("\n\n")); i >= 0 {
		return n[:i+1]
	}
	return n
}

func bodyHash(n []byte) []byte {
	h := sha256.Sum256(bodyOf(n))
	return h[:]
}
