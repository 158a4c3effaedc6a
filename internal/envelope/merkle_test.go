package envelope

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// The batch tree must be the RFC 6962 tree: cross-check roots and proofs
// against transparency-dev/merkle for every size up to 70 and every leaf.
func TestTreeIsRFC6962(t *testing.T) {
	h := rfc6962.DefaultHasher
	for n := 1; n <= 70; n++ {
		items := make([][]byte, n)
		leaves := make([][hashSize]byte, n)
		for i := range items {
			items[i] = []byte(fmt.Sprintf("item %d of %d", i, n))
			leaves[i] = leafHash(items[i])
			if !bytes.Equal(leaves[i][:], h.HashLeaf(items[i])) {
				t.Fatalf("leaf hash differs from RFC 6962")
			}
		}
		proofs := make([][][hashSize]byte, n)
		root := buildTree(leaves, proofs)
		for i := range leaves {
			p := make([][]byte, len(proofs[i]))
			for j := range proofs[i] {
				p[j] = proofs[i][j][:]
			}
			if err := proof.VerifyInclusion(h, uint64(i), uint64(n), leaves[i][:], p, root[:]); err != nil {
				t.Fatalf("size %d leaf %d: %v", n, i, err)
			}
			got, ok := rootFromProof(i, n, leaves[i], proofs[i])
			if !ok || got != root {
				t.Fatalf("size %d leaf %d: rootFromProof disagrees", n, i)
			}
			if n > 1 {
				if _, ok := rootFromProof(i, n, leaves[i], proofs[i][:len(proofs[i])-1]); ok {
					t.Fatalf("size %d leaf %d: short proof accepted", n, i)
				}
			}
		}
	}
}
