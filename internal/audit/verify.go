package audit

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"
)

// ErrTampered is returned (wrapped) when a log directory does not match
// the checkpoints its node signed: an entry edited, dropped, reordered or
// truncated, a hash tile changed, or a checkpoint replaced.
var ErrTampered = errors.New("audit log does not match its signed checkpoints")

// Report is the outcome of [Verify].
type Report struct {
	Origin       string   `json:"origin"`
	TreeSize     uint64   `json:"tree_size"`    // size of the published checkpoint
	Entries      uint64   `json:"entries"`      // leaves read, decoded and hashed
	Records      uint64   `json:"records"`      // entries in those leaves (a leaf may group several)
	Checkpoints  int      `json:"checkpoints"`  // signed checkpoints checked against the tree
	Cosignatures int      `json:"cosignatures"` // partner-cosigned checkpoints checked against the tree
	Problems     []string `json:"problems,omitempty"`
}

// OK reports whether the log verified without problems.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// maxProblems caps the problems listed: a log edited throughout would
// otherwise list every entry.
const maxProblems = 100

func (r *Report) problem(format string, args ...any) {
	switch {
	case len(r.Problems) < maxProblems:
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	case len(r.Problems) == maxProblems:
		r.Problems = append(r.Problems, "too many problems; the rest are not listed")
	}
}

// publishGrace is how long Verify waits for a running node to publish a
// checkpoint it has already archived.
const publishGrace = 2 * time.Second

// awaitPublished re-reads the published checkpoint until it is a valid
// checkpoint of at least size or publishGrace passes.
func awaitPublished(ctx context.Context, dir, origin string, v note.Verifier, size uint64) ([]byte, bool) {
	deadline := time.Now().Add(publishGrace)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if testHookAwait != nil {
			testHookAwait()
		} else {
			time.Sleep(20 * time.Millisecond)
		}
		raw, err := readFile(dir, layout.CheckpointPath)
		if err != nil {
			continue
		}
		if cp, err := ParseCheckpoint(raw, origin, v); err == nil && cp.Size >= size {
			return raw, true
		}
	}
	return nil, false
}

// testHookAwait, when set by a test, runs instead of each pause.
var testHookAwait func()

type signedCP struct {
	name string
	size uint64
	root []byte
}

// Verify checks the log in dir against every checkpoint it holds: the
// published one, each one the node archived when it signed it, and each
// one a partner cosigned. It decodes every entry, recomputes the Merkle
// tree from the entry bundles, compares each leaf with the hash tiles and
// each checkpoint's root with the recomputed root at its size.
//
// Problems found are listed in the report, and the error then wraps
// [ErrTampered]; other errors mean the check could not run.
func Verify(ctx context.Context, dir, origin string, pub ed25519.PublicKey) (Report, error) {
	v, err := NoteVerifier(origin, pub)
	if err != nil {
		return Report{}, err
	}
	return VerifyWith(ctx, dir, origin, v)
}

// VerifyWith is [Verify] with a signed-note verifier.
func VerifyWith(ctx context.Context, dir, origin string, v note.Verifier) (Report, error) {
	rep := Report{Origin: origin}
	r := &Reader{dir: dir, origin: origin, verifier: v}
	var cps []signedCP
	check := func(name string, raw []byte) (signedCP, bool) {
		cp, err := ParseCheckpoint(raw, origin, v)
		if err != nil {
			rep.problem("%s: %v", name, err)
			return signedCP{}, false
		}
		s := signedCP{name: name, size: cp.Size, root: cp.Hash}
		cps = append(cps, s)
		return s, true
	}

	raw, err := readFile(dir, layout.CheckpointPath)
	if err != nil {
		return rep, fmt.Errorf("reading checkpoint: %w", err)
	}
	published, pubOK := check("checkpoint", raw)
	rep.TreeSize = published.size

	archived, _ := filepath.Glob(filepath.Join(dir, archiveDir, "[0-9]*"))
	var maxArchived uint64
	for _, p := range archived {
		name := filepath.ToSlash(mustRel(dir, p))
		b, err := readFile(dir, name)
		if err != nil {
			rep.problem("%s: %v", name, err)
			continue
		}
		s, ok := check(name, b)
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(filepath.Base(p), 10, 64); err != nil || n != s.size {
			rep.problem("%s: holds a checkpoint of size %d", name, s.size)
		}
		maxArchived = max(maxArchived, s.size)
	}
	if pubOK && maxArchived > published.size {
		// A running node archives a checkpoint as it signs it, a moment
		// before it publishes it: give a live log that moment. A log that
		// was rolled back stays behind its archive.
		if raw, ok := awaitPublished(ctx, dir, origin, v, maxArchived); ok {
			if s, ok := check("checkpoint", raw); ok {
				published = s
				rep.TreeSize = s.size
			}
		}
		if published.size < maxArchived {
			rep.problem("checkpoint: size %d is older than the archived checkpoint of size %d (rolled back)", published.size, maxArchived)
		}
	}
	cosigned, _ := filepath.Glob(filepath.Join(dir, cosigDir, "*", "[0-9]*"))
	for _, p := range cosigned {
		name := filepath.ToSlash(mustRel(dir, p))
		b, err := readFile(dir, name)
		if err != nil {
			rep.problem("%s: %v", name, err)
			continue
		}
		if _, ok := check(name, b); ok {
			rep.Cosignatures++
		}
	}

	var size uint64
	for _, c := range cps {
		size = max(size, c.size)
	}
	rootAt := map[uint64][]byte{0: rfc6962.DefaultHasher.EmptyRoot()}
	for _, c := range cps {
		rootAt[c.size] = nil
	}
	n, err := r.hashAll(ctx, size, rootAt, &rep)
	if err != nil {
		return rep, err
	}
	rep.Entries = n
	if n < size {
		rep.problem("log holds %d entries but a signed checkpoint commits to %d (truncated)", n, size)
	}
	slices.SortFunc(cps, func(a, b signedCP) int { return cmp.Compare(a.size, b.size) })
	for _, c := range cps {
		got := rootAt[c.size]
		if got == nil {
			continue // beyond the entries present; reported above
		}
		rep.Checkpoints++
		if !bytes.Equal(got, c.root) {
			rep.problem("%s: root of size %d does not match the entries", c.name, c.size)
		}
	}
	if pubOK && n >= published.size {
		root, err := rootFromTiles(ctx, published.size, r.readTile)
		switch {
		case err != nil:
			rep.problem("hash tiles: %v", err)
		case !bytes.Equal(root, published.root):
			rep.problem("hash tiles do not match the checkpoint of size %d", published.size)
		}
	}
	if !rep.OK() {
		more := ""
		if len(rep.Problems) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(rep.Problems)-1)
		}
		return rep, fmt.Errorf("%w: %s%s", ErrTampered, rep.Problems[0], more)
	}
	return rep, nil
}

// hashAll reads, decodes and hashes the first size entries, comparing each
// leaf hash with the level-0 hash tile, and records the root after each
// size that is a key of rootAt. It returns how many entries it hashed.
func (r *Reader) hashAll(ctx context.Context, size uint64, rootAt map[uint64][]byte, rep *Report) (uint64, error) {
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	var n uint64
	for bi := uint64(0); bi*layout.EntryBundleWidth < size; bi++ {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		p := layout.PartialTileSize(0, bi, size)
		want := uint64(p)
		if p == 0 {
			want = layout.EntryBundleWidth
		}
		raw, err := r.readBundle(ctx, bi, p)
		if errors.Is(err, os.ErrNotExist) {
			rep.problem("entry bundle %d is missing", bi)
			return n, nil
		} else if err != nil {
			rep.problem("entry bundle %d: %v", bi, err)
			return n, nil
		}
		var b api.EntryBundle
		if err := b.UnmarshalText(raw); err != nil {
			rep.problem("entry bundle %d: %v", bi, err)
			return n, nil
		}
		var tile api.HashTile
		if traw, err := r.readTile(ctx, 0, bi, p); err != nil {
			rep.problem("hash tile 0/%d: %v", bi, err)
		} else if err := tile.UnmarshalText(traw); err != nil {
			rep.problem("hash tile 0/%d: %v", bi, err)
		}
		var mismatched, firstMismatch uint64
		for i, data := range b.Entries {
			if uint64(i) >= want {
				break
			}
			idx := bi*layout.EntryBundleWidth + uint64(i)
			if es, err := ParseLeaf(data); err != nil {
				rep.problem("entry %d: %v", idx, err)
			} else {
				rep.Records += uint64(len(es))
			}
			leaf := rfc6962.DefaultHasher.HashLeaf(data)
			if i < len(tile.Nodes) && !bytes.Equal(tile.Nodes[i], leaf) {
				if mismatched == 0 {
					firstMismatch = idx
				}
				mismatched++
			}
			if err := cr.Append(leaf, nil); err != nil {
				return n, err
			}
			n++
			if _, ok := rootAt[n]; ok {
				root, err := cr.GetRootHash(nil)
				if err != nil {
					return n, err
				}
				rootAt[n] = root
			}
		}
		switch mismatched {
		case 0:
		case 1:
			rep.problem("entry %d does not match its hash tile (edited or moved)", firstMismatch)
		default:
			rep.problem("entry %d and %d more in bundle %d do not match their hash tile (edited, dropped or moved)", firstMismatch, mismatched-1, bi)
		}
		if uint64(len(b.Entries)) < want {
			rep.problem("entry bundle %d holds %d entries, want %d (truncated)", bi, len(b.Entries), want)
			return n, nil
		}
	}
	return n, nil
}
