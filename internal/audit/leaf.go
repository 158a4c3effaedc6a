package audit

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// A leaf of the log holds one entry or a group of entries.
//
// One entry is its canonical encoding, a CBOR map (see [Entry.MarshalBinary]).
// A group is a CBOR array of 2 to [MaxGroup] such encodings, in the order
// the decisions were taken. A node groups the decisions it moves into the
// log together (those written with accepted messages, see
// [Log.AppendEncoded]): the log's storage writes and flushes files per
// 256 leaves, not per byte, so one leaf for many decisions is what lets a
// node audit every message without its disk spending more flushes on the
// log than on the messages.
//
// Each entry of a group is as verifiable as a leaf of its own: the group's
// inclusion proof proves every entry in it, and a group has one encoding,
// so an entry cannot be edited, dropped or moved within it without
// changing the leaf hash.

// Limits on a leaf.
const (
	// MaxGroup is the most entries a leaf groups. More would save few
	// flushes: the storage rewrites its partial entry bundle (up to 256
	// leaves) whole at every append, so bytes written grow with the leaf.
	// Measured with bench/accept, 16 did better than 64.
	MaxGroup = 16
	// MaxLeafSize bounds the bytes of one leaf; the log's entry bundles
	// store a leaf's length in two bytes.
	MaxLeafSize = 60 << 10
)

// ParseLeaf decodes a leaf: one entry, or a group of them. Like
// [ParseEntry], it accepts only the canonical encoding.
func ParseLeaf(b []byte) ([]Entry, error) {
	if len(b) > MaxLeafSize {
		return nil, fmt.Errorf("%w: leaf of %d bytes exceeds %d", ErrMalformedEntry, len(b), MaxLeafSize)
	}
	if len(b) == 0 || b[0]>>5 != 4 { // not a CBOR array: one entry
		e, err := ParseEntry(b)
		if err != nil {
			return nil, err
		}
		return []Entry{e}, nil
	}
	n, rest, err := groupHeader(b)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, n)
	for i := range n {
		var raw cbor.RawMessage
		next, err := decMode.UnmarshalFirst(rest, &raw)
		if err != nil {
			return nil, fmt.Errorf("%w: group entry %d: %v", ErrMalformedEntry, i, err)
		}
		e, err := ParseEntry(rest[:len(rest)-len(next)])
		if err != nil {
			return nil, fmt.Errorf("group entry %d: %w", i, err)
		}
		out = append(out, e)
		rest = next
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after a group of %d entries", ErrMalformedEntry, len(rest), n)
	}
	return out, nil
}

// groupHeader reads the array head of a group: its canonical (shortest)
// form, with a count from 2 to MaxGroup.
func groupHeader(b []byte) (n int, rest []byte, err error) {
	switch info := b[0] & 0x1f; {
	case info < 24:
		n, rest = int(info), b[1:]
	case info == 24 && len(b) > 1 && b[1] >= 24:
		n, rest = int(b[1]), b[2:]
	default:
		return 0, nil, fmt.Errorf("%w: group head %#x is not a canonical array of at most %d entries", ErrMalformedEntry, b[0], MaxGroup)
	}
	if n < 2 || n > MaxGroup {
		return 0, nil, fmt.Errorf("%w: group of %d entries; a group holds 2 to %d", ErrMalformedEntry, n, MaxGroup)
	}
	return n, rest, nil
}

// groupLeaves packs encoded entries, in order, into as few leaves as
// [MaxGroup] and [MaxLeafSize] allow. It returns each leaf's bytes and how
// many entries it holds. A leaf of one entry is that entry's encoding.
func groupLeaves(recs [][]byte) (leaves [][]byte, counts []int) {
	for i := 0; i < len(recs); {
		// Each leaf takes at least one entry (one fits: MaxEntrySize is
		// below MaxLeafSize), then more while they fit.
		size, j := 2+len(recs[i]), i+1 // 2: the longest array head
		for j < len(recs) && j-i < MaxGroup && size+len(recs[j]) <= MaxLeafSize {
			size += len(recs[j])
			j++
		}
		if j-i == 1 {
			leaves, counts = append(leaves, recs[i]), append(counts, 1)
			i = j
			continue
		}
		n := j - i
		leaf := make([]byte, 0, size)
		if n < 24 {
			leaf = append(leaf, 0x80|byte(n))
		} else {
			leaf = append(leaf, 0x98, byte(n))
		}
		for _, r := range recs[i:j] {
			leaf = append(leaf, r...)
		}
		leaves, counts = append(leaves, leaf), append(counts, n)
		i = j
	}
	return leaves, counts
}
