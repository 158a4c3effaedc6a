package node

import (
	"bytes"
	"testing"

	"liaison/internal/message"
)

func TestWireCache(t *testing.T) {
	var c wireCache
	a, b := message.NewID(), message.NewID()
	c.put("PAK", a, 1, []byte("wire-a"))
	if got := c.get("PAK", a, 1); !bytes.Equal(got, []byte("wire-a")) {
		t.Fatalf("get = %q", got)
	}
	if c.get("PAK", a, 2) != nil {
		t.Fatal("a wire sealed to epoch 1 served for epoch 2")
	}
	if c.get("IND", a, 1) != nil {
		t.Fatal("a wire for PAK served for IND")
	}
	c.drop("PAK", a)
	if c.get("PAK", a, 1) != nil || c.size != 0 {
		t.Fatalf("dropped wire still cached (size %d)", c.size)
	}

	// Oldest out first when over the bound; a wire over half the bound
	// is not cached at all.
	big := make([]byte, maxCachedWires/2)
	c.put("PAK", a, 1, big)
	c.put("PAK", b, 1, big)
	c.put("PAK", message.NewID(), 1, []byte("x"))
	if c.get("PAK", a, 1) != nil || c.get("PAK", b, 1) == nil || c.size > maxCachedWires {
		t.Fatalf("eviction: a cached %v, b cached %v, size %d", c.get("PAK", a, 1) != nil, c.get("PAK", b, 1) != nil, c.size)
	}
	huge := message.NewID()
	c.put("PAK", huge, 1, make([]byte, maxCachedWires/2+1))
	if c.get("PAK", huge, 1) != nil {
		t.Fatal("a wire over half the bound was cached")
	}
	for range 1000 {
		id := message.NewID()
		c.put("PAK", id, 1, []byte("y"))
		c.drop("PAK", id)
	}
	if len(c.order) > 2*len(c.m)+65 {
		t.Fatalf("order keeps %d keys for %d wires", len(c.order), len(c.m))
	}
}
