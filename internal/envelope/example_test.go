package envelope_test

import (
	"crypto/ed25519"
	"crypto/hpke"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"liaison/internal/envelope"
	"liaison/internal/message"
	"liaison/internal/pki"
)

// Two nodes, XAA and XBB: XAA seals a batch to the key on XBB's card, XBB
// opens each envelope with XAA's pinned signing key and its own HPKE keys.
func Example() {
	dir, _ := os.MkdirTemp("", "liaison-example")
	defer os.RemoveAll(dir)
	xaa, _ := pki.Init(filepath.Join(dir, "xaa"), pki.InitOptions{Party: "XAA"})
	xbb, _ := pki.Init(filepath.Join(dir, "xbb"), pki.InitOptions{Party: "XBB", Addr: "127.0.0.1:7444"})
	xaaCard, _ := xaa.Card([]string{"127.0.0.1:7443"}, time.Now())
	xbbCard, _ := xbb.Card([]string{"127.0.0.1:7444"}, time.Now())

	// Sender side.
	batch, _ := envelope.NewBatch(xaa.SigningKey, envelope.RecipientKey{
		Party: xbbCard.Party, Epoch: xbbCard.Epoch, PublicKey: xbbCard.HPKEPublicKey(),
	})
	for _, text := range []string{"first", "second"} {
		batch.Add(&message.Message{
			ID: message.NewID(), Channel: "ops", Origin: "XAA", Precedence: message.Flash,
			Created: time.Now(), Label: []byte("<originatorConfidentialityLabel/>"),
			ContentType: "text/plain", Body: []byte(text),
		})
	}
	wires, _ := batch.Finish()

	// Receiver side.
	opener := &envelope.Opener{
		Self: "XBB",
		Verify: func(origin string) (ed25519.PublicKey, error) {
			if origin != xaaCard.Party {
				return nil, fmt.Errorf("no card for %q", origin)
			}
			return ed25519.PublicKey(xaaCard.SigningKey), nil
		},
		Keys: func(epoch uint32) (hpke.PrivateKey, error) { return xbb.HPKEKey(epoch) },
	}
	for _, w := range wires {
		m, h, err := opener.Open(w)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s from %s, %d of %d: %s\n", m.Precedence, m.Origin, h.Index+1, h.BatchSize, m.Body)
	}
	// Output:
	// FLASH from XAA, 1 of 2: first
	// FLASH from XAA, 2 of 2: second
}
