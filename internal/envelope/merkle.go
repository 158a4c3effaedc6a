package envelope

import (
	"crypto/sha256"
	"math/bits"
)

// The batch tree is the RFC 6962 (RFC 9162 section 2.1) Merkle tree over
// SHA-256: leaf = H(0x00 || item), node = H(0x01 || left || right).

func leafHash(item []byte) [hashSize]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(item)
	var out [hashSize]byte
	h.Sum(out[:0])
	return out
}

func nodeHash(l, r [hashSize]byte) [hashSize]byte {
	var buf [1 + 2*hashSize]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[1+hashSize:], r[:])
	return sha256.Sum256(buf[:])
}

// split returns the largest power of two smaller than n (n >= 2).
func split(n int) int { return 1 << (bits.Len(uint(n-1)) - 1) }

// buildTree returns the root over leaves (len >= 1) and fills proofs[i]
// with the audit path of leaf i (RFC 9162 2.1.3.1), deepest sibling first.
// It hashes each node once.
func buildTree(leaves [][hashSize]byte, proofs [][][hashSize]byte) [hashSize]byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := split(len(leaves))
	l := buildTree(leaves[:k], proofs[:k])
	r := buildTree(leaves[k:], proofs[k:])
	for i := range proofs[:k] {
		proofs[i] = append(proofs[i], r)
	}
	for i := range proofs[k:] {
		proofs[k+i] = append(proofs[k+i], l)
	}
	return nodeHash(l, r)
}

// rootFromProof computes the root implied by a leaf hash, its index, the
// tree size and the proof (RFC 9162 2.1.3.2). ok is false when the proof has
// the wrong length for the index and size.
func rootFromProof(index, size int, leaf [hashSize]byte, proof [][hashSize]byte) (root [hashSize]byte, ok bool) {
	if index < 0 || index >= size {
		return root, false
	}
	fn, sn := uint64(index), uint64(size-1)
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return root, false
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	return r, sn == 0
}
