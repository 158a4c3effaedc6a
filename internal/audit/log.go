package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// Defaults for [Config].
const (
	DefaultBatchMaxSize       = 4096
	DefaultBatchMaxAge        = 50 * time.Millisecond
	DefaultCheckpointInterval = time.Second
)

// Liaison keeps its own files beside Tessera's in the log directory:
// every checkpoint it signed, and the cosignatures its partners returned.
const (
	archiveDir = ".liaison/checkpoints"
	cosigDir   = ".liaison/cosignatures"
)

// Config configures a [Log]. Origin and Signer are required.
type Config struct {
	// Origin is the log's C2SP tlog-checkpoint origin line and the name of
	// its signing key, e.g. "liaison.xaa.example/audit".
	Origin string
	// Signer is the node's Ed25519 signing key; it signs checkpoints.
	Signer ed25519.PrivateKey
	// Logger receives state changes; nil discards them.
	Logger *slog.Logger
	// BatchMaxSize and BatchMaxAge bound a batch of appends: Append returns
	// once its batch is sequenced, so BatchMaxAge is the latency of a lone
	// append. Zero means DefaultBatchMaxSize and DefaultBatchMaxAge.
	BatchMaxSize uint
	BatchMaxAge  time.Duration
	// CheckpointInterval is how often a new checkpoint is signed when the
	// log has grown; at least 100ms. Zero means DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// Witnesses maps a partner to the cosignature/v1 verifier key of its
	// witness (see [CosignerVerifierKey]); [Log.AddCosignature] accepts
	// cosignatures only from these. More can be added with TrustWitness.
	Witnesses map[string]string
	// Registerer, if set, receives the log's metrics.
	Registerer prometheus.Registerer
	// Now is the clock for entries without a time; nil means time.Now.
	Now func() time.Time
}

// Log is a node's audit log: a Tessera tile log on the POSIX driver whose
// checkpoints the node key signs. Its methods are safe for concurrent use.
type Log struct {
	dir      string
	cfg      Config
	logger   *slog.Logger
	verifier note.Verifier
	reader   *Reader
	add      tessera.AddFn
	shutdown func(context.Context) error
	cancel   context.CancelCauseFunc
	appends  prometheus.Counter
	pending  sync.WaitGroup // appends whose index is not yet known

	closeMu sync.RWMutex // guards closed
	closed  bool

	mu        sync.Mutex // guards witnesses
	witnesses map[string]note.Verifier
}

// Open opens the audit log in dir, creating it if needed, and starts
// sequencing. If dir holds a log, Open first checks that its tree still
// matches the last checkpoint the node signed, and refuses to continue a
// log that does not.
func Open(ctx context.Context, dir string, cfg Config) (*Log, error) {
	if cfg.Origin == "" {
		return nil, errors.New("audit log needs an origin")
	}
	if cfg.BatchMaxSize == 0 {
		cfg.BatchMaxSize = DefaultBatchMaxSize
	}
	if cfg.BatchMaxAge == 0 {
		cfg.BatchMaxAge = DefaultBatchMaxAge
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	signer, err := NoteSigner(cfg.Origin, cfg.Signer)
	if err != nil {
		return nil, fmt.Errorf("audit log signer: %w", err)
	}
	verifier, err := NoteVerifier(cfg.Origin, cfg.Signer.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, archiveDir), 0o700); err != nil {
		return nil, fmt.Errorf("creating audit log directory: %w", err)
	}
	l := &Log{
		dir: dir, cfg: cfg, logger: logger, verifier: verifier,
		reader:    &Reader{dir: dir, origin: cfg.Origin, verifier: verifier},
		witnesses: map[string]note.Verifier{},
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liaison_audit_appends_total", Help: "Entries appended to the audit log.",
		}),
	}
	for partner, vkey := range cfg.Witnesses {
		if err := l.TrustWitness(partner, vkey); err != nil {
			return nil, err
		}
	}
	if err := l.checkRestart(ctx); err != nil {
		return nil, err
	}
	driver, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		return nil, fmt.Errorf("audit log storage: %w", err)
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(&archivingSigner{Signer: signer, dir: dir, logger: logger}).
		WithBatching(cfg.BatchMaxSize, cfg.BatchMaxAge).
		WithCheckpointInterval(cfg.CheckpointInterval).
		WithCheckpointRepublishInterval(max(tessera.DefaultCheckpointRepublishInterval, cfg.CheckpointInterval))
	// The appender outlives Open's ctx; Close cancels it after shutdown.
	actx, cancel := context.WithCancelCause(context.Background())
	app, shutdown, _, err := tessera.NewAppender(actx, driver, opts)
	if err != nil {
		cancel(err)
		return nil, fmt.Errorf("audit log appender: %w", err)
	}
	l.add, l.shutdown, l.cancel = app.Add, shutdown, cancel
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(l.appends); err != nil {
			logger.WarnContext(ctx, "audit metrics not registered", slog.Any("error", err))
		}
	}
	logger.InfoContext(ctx, "audit log open", slog.String("dir", dir), slog.String("origin", cfg.Origin))
	return l, nil
}

// checkRestart verifies that the tiles on disk reproduce the root of the
// newest checkpoint in the archive, so that a log edited while the node
// was down is not silently extended.
func (l *Log) checkRestart(ctx context.Context) error {
	raw, err := latestArchived(l.dir)
	if err != nil || raw == nil {
		return err
	}
	cp, err := ParseCheckpoint(raw, l.cfg.Origin, l.verifier)
	if err != nil {
		return fmt.Errorf("%w: archived checkpoint: %v", ErrTampered, err)
	}
	root, err := rootFromTiles(ctx, cp.Size, l.reader.readTile)
	if err != nil {
		return fmt.Errorf("%w: cannot recompute tree of size %d: %v", ErrTampered, cp.Size, err)
	}
	if !bytes.Equal(root, cp.Hash) {
		return fmt.Errorf("%w: tree of size %d on disk does not match the last signed checkpoint", ErrTampered, cp.Size)
	}
	return nil
}

// rootFromTiles computes the root of the tree of the given size from the
// stored hash tiles.
func rootFromTiles(ctx context.Context, size uint64, f client.TileFetcherFunc) ([]byte, error) {
	if size == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	hashes, err := client.FetchRangeNodes(ctx, size, f)
	if err != nil {
		return nil, err
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r, err := rf.NewRange(0, size, hashes)
	if err != nil {
		return nil, err
	}
	return r.GetRootHash(nil)
}

// Append adds e to the log and returns its index. It returns once the
// entry's batch is durably sequenced and integrated (at most about
// BatchMaxAge), without waiting for a checkpoint to cover it, so that many
// concurrent callers share one batch. A zero e.At is set to now.
func (l *Log) Append(ctx context.Context, e Entry) (uint64, error) {
	return l.AppendAsync(ctx, e)()
}

// AppendAsync queues e and returns a function that waits for its index.
// Callers that log many decisions queue them all, then collect.
func (l *Log) AppendAsync(ctx context.Context, e Entry) func() (uint64, error) {
	if e.At.IsZero() {
		e.At = l.cfg.Now()
	}
	data, err := e.MarshalBinary()
	if err != nil {
		return func() (uint64, error) { return 0, err }
	}
	// Held until pending.Add, so that Close cannot start waiting between
	// the check and the add; a read lock, so that appends stay concurrent.
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		return func() (uint64, error) { return 0, ErrClosed }
	}
	fut := l.add(ctx, tessera.NewEntry(data))
	// Resolve the future even if the caller never collects it: Tessera's
	// shutdown only waits for entries whose index someone has seen.
	var (
		done = make(chan struct{})
		idx  tessera.Index
	)
	l.pending.Add(1)
	go func() {
		defer l.pending.Done()
		defer close(done)
		idx, err = fut()
		if err != nil {
			err = fmt.Errorf("appending %s entry: %w", e.Kind, err)
			l.logger.WarnContext(ctx, "audit append failed", slog.String("kind", e.Kind), slog.Any("error", err))
			return
		}
		l.appends.Inc()
	}()
	return func() (uint64, error) {
		<-done
		return idx.Index, err
	}
}

// AppendBatch queues es in order, grouped into as few leaves as
// [MaxGroup] allows (see [ParseLeaf]), and returns a function that waits
// until all of them are sequenced and returns how many entries failed,
// with the first error. An entry that cannot be encoded fails alone. It
// costs one goroutine per batch instead of one per entry.
func (l *Log) AppendBatch(ctx context.Context, es []Entry) func() (failed int, err error) {
	var items []queued
	recs := make([][]byte, 0, len(es))
	for _, e := range es {
		if e.At.IsZero() {
			e.At = l.cfg.Now()
		}
		b, err := e.MarshalBinary()
		if err != nil {
			items = append(items, queued{kind: e.Kind, err: err, n: 1})
			continue
		}
		recs = append(recs, b)
	}
	return l.queue(ctx, append(items, grouped(recs)...))
}

// AppendEncoded is AppendBatch for entries already encoded with
// [Entry.MarshalBinary], such as those a node keeps in its store until the
// log has them: it appends the bytes as they are, without encoding them
// again. Each record is checked with [ParseEntry] first; bad holds, by
// index, why those that do not parse were not appended (wait does not
// count them as failed).
func (l *Log) AppendEncoded(ctx context.Context, recs [][]byte) (bad map[int]error, wait func() (failed int, err error)) {
	good := make([][]byte, 0, len(recs))
	for i, b := range recs {
		if _, err := ParseEntry(b); err != nil {
			if bad == nil {
				bad = map[int]error{}
			}
			bad[i] = err
			continue
		}
		good = append(good, b)
	}
	return bad, l.queue(ctx, grouped(good))
}

// grouped packs encoded entries into leaves (groupLeaves) to queue.
func grouped(recs [][]byte) []queued {
	leaves, counts := groupLeaves(recs)
	items := make([]queued, len(leaves))
	for i, leaf := range leaves {
		items[i] = queued{data: leaf, n: counts[i]}
	}
	return items
}

// queued is one leaf on its way into the log: its encoding, or why it
// has none, and how many entries it holds.
type queued struct {
	kind string
	data []byte
	err  error
	n    int
}

// what names q in errors: its entry's kind, or the size of its group.
func (q queued) what() string {
	if q.n > 1 {
		return fmt.Sprintf("group of %d entries", q.n)
	}
	if q.kind == "" {
		return "entry"
	}
	return q.kind + " entry"
}

// queue adds items to the log in order and returns the wait function of
// AppendBatch.
func (l *Log) queue(ctx context.Context, items []queued) func() (failed int, err error) {
	futs := make([]tessera.IndexFuture, 0, len(items))
	l.closeMu.RLock()
	defer l.closeMu.RUnlock()
	if l.closed {
		n := 0
		for _, it := range items {
			n += it.n
		}
		return func() (int, error) { return n, ErrClosed }
	}
	for _, it := range items {
		if it.err != nil {
			// Those queued so far are still resolved and counted.
			err := it.err
			futs = append(futs, func() (tessera.Index, error) { return tessera.Index{}, err })
		} else {
			futs = append(futs, l.add(ctx, tessera.NewEntry(it.data)))
		}
	}
	// As in AppendAsync, resolve the futures even if the caller never
	// waits, and keep Close waiting until they are.
	var (
		done   = make(chan struct{})
		first  error
		nerror int
	)
	l.pending.Add(1)
	go func() {
		defer l.pending.Done()
		defer close(done)
		for i, fut := range futs {
			if _, err := fut(); err != nil {
				nerror += items[i].n
				if first == nil {
					first = fmt.Errorf("appending %s: %w", items[i].what(), err)
					l.logger.WarnContext(ctx, "audit append failed", slog.String("leaf", items[i].what()), slog.Any("error", err))
				}
				continue
			}
			l.appends.Add(float64(items[i].n))
		}
	}()
	return func() (int, error) {
		<-done
		return nerror, first
	}
}

// ErrClosed is returned by appends after Close.
var ErrClosed = errors.New("audit log closed")

// Checkpoint returns the latest published checkpoint, a signed note.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	_, raw, err := l.reader.Checkpoint()
	return raw, err
}

// Reader returns a reader of this log.
func (l *Log) Reader() *Reader { return l.reader }

// Entries returns the published entries with index in [from, to).
func (l *Log) Entries(ctx context.Context, from, to uint64) ([]Record, error) {
	return l.reader.Entries(ctx, from, to)
}

// Close waits until every appended entry is covered by a published
// checkpoint, then stops the log. It is idempotent.
func (l *Log) Close(ctx context.Context) error {
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return nil
	}
	l.closed = true
	l.closeMu.Unlock()
	l.pending.Wait()
	err := l.shutdown(ctx)
	l.cancel(ErrClosed)
	if err != nil {
		return fmt.Errorf("closing audit log: %w", err)
	}
	return nil
}

// ErrNotServed is returned by ServeFile for paths partners may not read.
var ErrNotServed = errors.New("audit path not served")

// ServeFile returns a file of the log that a partner may read to witness
// it: the checkpoint and hash tiles ("tile/<L>/<N>[.p/<W>]"), never entry
// bundles, which stay inside the node. A missing file yields an error
// wrapping os.ErrNotExist.
func (l *Log) ServeFile(p string) ([]byte, error) {
	if p == layout.CheckpointPath {
		return readFile(l.dir, p)
	}
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotServed, p)
	}
	level, index, ok := strings.Cut(rest, "/")
	if !ok || level == "entries" {
		return nil, fmt.Errorf("%w: %q", ErrNotServed, p)
	}
	lv, ix, w, err := layout.ParseTileLevelIndexPartial(level, index)
	if err != nil || layout.TilePath(lv, ix, w) != p {
		return nil, fmt.Errorf("%w: %q", ErrNotServed, p)
	}
	return readFile(l.dir, p)
}

// archivingSigner signs checkpoints and keeps a copy of each one in the
// log directory, so that Verify can later check every checkpoint the node
// ever signed, not just the one Tessera last published.
type archivingSigner struct {
	note.Signer
	dir    string
	logger *slog.Logger
	signed atomic.Uint64
}

func (s *archivingSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := s.Signer.Sign(msg)
	if err != nil {
		return nil, err
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal(msg); err != nil {
		return nil, fmt.Errorf("signing a checkpoint that does not parse: %v", err)
	}
	hs := binary.BigEndian.AppendUint32(nil, s.KeyHash())
	n := fmt.Sprintf("%s\n\u2014 %s %s\n", msg, s.Name(), base64.StdEncoding.EncodeToString(append(hs, sig...)))
	// A checkpoint that is signed but cannot be archived is not published.
	if err := writeAtomic(filepath.Join(s.dir, archiveDir, sizeName(cp.Size)), []byte(n)); err != nil {
		return nil, fmt.Errorf("archiving checkpoint: %w", err)
	}
	if s.signed.Add(1)%64 == 0 {
		if err := prune(filepath.Join(s.dir, archiveDir), archiveKeep); err != nil {
			s.logger.Warn("pruning checkpoint archive", slog.Any("error", err))
		}
	}
	return sig, nil
}

// How many signed checkpoints the archive and the cosignature stores keep.
// The newest checkpoint's root commits to every entry, so older ones add
// evidence, not coverage; keeping them all would add a file per checkpoint
// interval forever.
const (
	archiveKeep = 1024
	cosigKeep   = 64
)

// prune removes all but the keep newest checkpoint files of dir.
func prune(dir string, keep int) error {
	names, err := filepath.Glob(filepath.Join(dir, "[0-9]*"))
	if err != nil || len(names) <= keep {
		return err
	}
	for _, n := range names[:len(names)-keep] {
		if err := os.Remove(n); err != nil {
			return err
		}
	}
	return nil
}

func sizeName(size uint64) string { return fmt.Sprintf("%020d", size) }

// latestArchived returns the archived checkpoint of the largest size, or
// nil if there is none.
func latestArchived(dir string) ([]byte, error) {
	names, err := filepath.Glob(filepath.Join(dir, archiveDir, "[0-9]*"))
	if err != nil || len(names) == 0 {
		return nil, err
	}
	return readFile(dir, filepath.ToSlash(mustRel(dir, names[len(names)-1])))
}

func mustRel(base, p string) string {
	r, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return r
}

// writeAtomic writes b to p through a temporary file and a rename.
func writeAtomic(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

// TrustWitness lets partner's witness, whose cosignature/v1 verifier key
// is vkey, cosign this log's checkpoints.
func (l *Log) TrustWitness(partner, vkey string) error {
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return fmt.Errorf("witness key %q for %q: %v", vkey, partner, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.witnesses[partner] = v
	return nil
}

// AddCosignature checks that cosig (the signature lines a partner's
// [Witness.Witness] returned) is partner's cosignature on checkpoint, one
// of this log's signed checkpoints, and stores the cosigned checkpoint.
func (l *Log) AddCosignature(ctx context.Context, partner string, checkpoint, cosig []byte) error {
	l.mu.Lock()
	v, ok := l.witnesses[partner]
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("no witness key for partner %q", partner)
	}
	if len(checkpoint)+len(cosig) > maxCheckpointSize {
		return fmt.Errorf("cosigned checkpoint exceeds %d bytes", maxCheckpointSize)
	}
	cp, err := ParseCheckpoint(checkpoint, l.cfg.Origin, l.verifier)
	if err != nil {
		return err
	}
	n, err := note.Open(joinNote(checkpoint, cosig), note.VerifierList(v))
	if err != nil {
		return fmt.Errorf("cosignature from %q: %v", partner, err)
	}
	if len(n.Sigs) == 0 {
		return fmt.Errorf("cosignature from %q: no valid signature", partner)
	}
	joined := joinNote(checkpoint, cosig)
	pdir := filepath.Join(l.dir, cosigDir, fileSafe(partner))
	if err := writeAtomic(filepath.Join(pdir, sizeName(cp.Size)), joined); err != nil {
		return fmt.Errorf("storing cosignature: %w", err)
	}
	if err := prune(pdir, cosigKeep); err != nil {
		l.logger.WarnContext(ctx, "pruning cosignatures", slog.Any("error", err))
	}
	l.logger.DebugContext(ctx, "checkpoint cosigned", slog.String("partner", partner), slog.Uint64("size", cp.Size))
	return nil
}

// joinNote appends signature lines to a signed note.
func joinNote(n, sigs []byte) []byte {
	out := append([]byte{}, n...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, sigs...)
}

// Cosigned returns the latest checkpoint of this log that partner cosigned,
// with the cosignature, or nil if there is none.
func (l *Log) Cosigned(partner string) ([]byte, error) {
	names, err := filepath.Glob(filepath.Join(l.dir, cosigDir, fileSafe(partner), "[0-9]*"))
	if err != nil || len(names) == 0 {
		return nil, err
	}
	return os.ReadFile(names[len(names)-1])
}

// fileSafe turns a name into one path element.
func fileSafe(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}
