package audit_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"time"

	"liaison/internal/audit"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	_, key, _ := ed25519.GenerateKey(nil)

	l, err := audit.Open(ctx, dir, audit.Config{Origin: "liaison.xaa.example/audit", Signer: key})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The node queues a decision and collects its index after its own commit.
	wait := l.AppendAsync(ctx, audit.Entry{
		Kind: audit.KindReleased, At: time.Now(), MessageID: "0193a1b2-0000-7000-8000-000000000001",
		Digest: "sha256:9f86d08188", Party: "XAA", Peer: "XBB", Channel: "ops", Decision: "release",
	})
	index, err := wait()
	fmt.Println("index", index, err)
	if err := l.Close(ctx); err != nil { // waits until a checkpoint covers every entry
		fmt.Println(err)
	}

	rep, err := audit.Verify(ctx, dir, "liaison.xaa.example/audit", key.Public().(ed25519.PublicKey))
	fmt.Println("entries", rep.Entries, "ok", rep.OK(), err)
	// Output:
	// index 0 <nil>
	// entries 1 ok true <nil>
}
