package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// maxFileSize bounds every file a reader loads from a log directory: a full
// entry bundle holds 256 entries of at most [MaxEntrySize] bytes.
const maxFileSize = 256 * (MaxEntrySize + 2)

// maxCheckpointSize bounds a checkpoint note, with room for cosignatures.
const maxCheckpointSize = 16 << 10

// Record is an entry with its place in the log: the index of its leaf
// and, in a leaf that groups several entries (see [ParseLeaf]), its
// position there.
type Record struct {
	Index uint64 `json:"index"`
	Pos   int    `json:"pos,omitempty"`
	Entry Entry  `json:"entry"`
}

// Reader reads a log directory (a live node's or a copy) and checks what it
// reads against the log's latest signed checkpoint. It does not write.
type Reader struct {
	dir      string
	origin   string
	verifier note.Verifier
}

// OpenReader returns a reader of the log in dir whose checkpoints are signed
// by verifier for origin.
func OpenReader(dir, origin string, verifier note.Verifier) (*Reader, error) {
	if origin == "" || verifier == nil {
		return nil, errors.New("audit reader needs an origin and a verifier")
	}
	if _, err := os.Stat(filepath.Join(dir, layout.CheckpointPath)); err != nil {
		return nil, fmt.Errorf("no audit log in %q: %w", dir, err)
	}
	return &Reader{dir: dir, origin: origin, verifier: verifier}, nil
}

// readFile reads a file of the log directory by its tlog-tiles path.
func readFile(dir, p string) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(p)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%q is %d bytes, more than %d", p, st.Size(), maxFileSize)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, err
	}
	return b, nil
}

// partialOrFull reads the partial resource p and falls back to the full
// one, as the tlog-tiles client contract requires.
func partialOrFull(p uint8, read func(p uint8) ([]byte, error)) ([]byte, error) {
	if p != 0 {
		b, err := read(p)
		if !errors.Is(err, fs.ErrNotExist) {
			return b, err
		}
	}
	return read(0)
}

func (r *Reader) readTile(_ context.Context, level, index uint64, p uint8) ([]byte, error) {
	return partialOrFull(p, func(p uint8) ([]byte, error) {
		return readFile(r.dir, layout.TilePath(level, index, p))
	})
}

func (r *Reader) readBundle(_ context.Context, index uint64, p uint8) ([]byte, error) {
	return partialOrFull(p, func(p uint8) ([]byte, error) {
		return readFile(r.dir, layout.EntriesPath(index, p))
	})
}

// Checkpoint returns the log's published checkpoint, verified, and its raw
// signed note.
func (r *Reader) Checkpoint() (log.Checkpoint, []byte, error) {
	raw, err := readFile(r.dir, layout.CheckpointPath)
	if err != nil {
		return log.Checkpoint{}, nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	cp, err := ParseCheckpoint(raw, r.origin, r.verifier)
	return cp, raw, err
}

// ParseCheckpoint parses a C2SP tlog-checkpoint signed note and checks that
// verifier signed it for origin.
func ParseCheckpoint(raw []byte, origin string, verifier note.Verifier) (log.Checkpoint, error) {
	if len(raw) > maxCheckpointSize {
		return log.Checkpoint{}, fmt.Errorf("checkpoint of %d bytes exceeds %d", len(raw), maxCheckpointSize)
	}
	cp, _, _, err := log.ParseCheckpoint(raw, origin, verifier)
	if err != nil {
		return log.Checkpoint{}, fmt.Errorf("invalid checkpoint for %q: %v", origin, err)
	}
	if len(cp.Hash) != rfc6962.DefaultHasher.Size() {
		return log.Checkpoint{}, fmt.Errorf("invalid checkpoint for %q: root hash of %d bytes", origin, len(cp.Hash))
	}
	return *cp, nil
}

// Entries returns the entries of the leaves with index in [from, to) that
// the published checkpoint commits to; to is clipped to the checkpoint's
// size. A leaf that groups entries yields a record for each.
func (r *Reader) Entries(ctx context.Context, from, to uint64) ([]Record, error) {
	cp, _, err := r.Checkpoint()
	if err != nil {
		return nil, err
	}
	var out []Record
	err = r.leaves(ctx, from, min(to, cp.Size), cp.Size, func(idx uint64, data []byte) error {
		es, err := ParseLeaf(data)
		if err != nil {
			return fmt.Errorf("entry %d: %w", idx, err)
		}
		for i, e := range es {
			out = append(out, Record{Index: idx, Pos: i, Entry: e})
		}
		return nil
	})
	return out, err
}

// leaves calls fn with the index and bytes of each leaf in [from, to) of
// a tree of the given size.
func (r *Reader) leaves(ctx context.Context, from, to, size uint64, fn func(idx uint64, data []byte) error) error {
	if from >= to {
		return nil
	}
	for ri := range layout.Range(from, to-from, size) {
		raw, err := r.readBundle(ctx, ri.Index, ri.Partial)
		if err != nil {
			return fmt.Errorf("reading entry bundle %d: %w", ri.Index, err)
		}
		var b api.EntryBundle
		if err := b.UnmarshalText(raw); err != nil {
			return fmt.Errorf("entry bundle %d: %v", ri.Index, err)
		}
		if uint(len(b.Entries)) < ri.First+ri.N {
			return fmt.Errorf("entry bundle %d holds %d entries, want %d", ri.Index, len(b.Entries), ri.First+ri.N)
		}
		for i := ri.First; i < ri.First+ri.N; i++ {
			if err := fn(ri.Index*layout.EntryBundleWidth+uint64(i), b.Entries[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Inclusion is a leaf's entries (one, or a group) with the proof that the
// log's checkpoint includes the leaf.
type Inclusion struct {
	Index      uint64   `json:"index"`
	Entries    []Entry  `json:"entries"`
	LeafHash   []byte   `json:"leaf_hash"`
	TreeSize   uint64   `json:"tree_size"`
	Root       []byte   `json:"root"`
	Proof      [][]byte `json:"proof"`
	Checkpoint string   `json:"checkpoint"`
}

// Show returns the entries of the leaf at index with its inclusion proof in
// the tree of the published checkpoint; the proof has been verified.
func (r *Reader) Show(ctx context.Context, index uint64) (Inclusion, error) {
	cp, raw, err := r.Checkpoint()
	if err != nil {
		return Inclusion{}, err
	}
	if index >= cp.Size {
		return Inclusion{}, fmt.Errorf("entry %d is beyond the checkpoint (size %d)", index, cp.Size)
	}
	var data []byte
	if err := r.leaves(ctx, index, index+1, cp.Size, func(_ uint64, d []byte) error { data = d; return nil }); err != nil {
		return Inclusion{}, err
	}
	es, err := ParseLeaf(data)
	if err != nil {
		return Inclusion{}, fmt.Errorf("entry %d: %w", index, err)
	}
	pb, err := client.NewProofBuilder(ctx, cp.Size, r.readTile)
	if err != nil {
		return Inclusion{}, err
	}
	p, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return Inclusion{}, fmt.Errorf("building inclusion proof for %d: %v", index, err)
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(data)
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leaf, p, cp.Hash); err != nil {
		return Inclusion{}, fmt.Errorf("%w: entry %d is not included in checkpoint of size %d: %v", ErrTampered, index, cp.Size, err)
	}
	return Inclusion{Index: index, Entries: es, LeafHash: leaf, TreeSize: cp.Size, Root: cp.Hash, Proof: p, Checkpoint: string(raw)}, nil
}
