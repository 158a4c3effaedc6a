package node

import (
	"testing"
	"time"

	"liaison/internal/pki"
)

// TestSealerFor keeps one HPKE context per partner across batches, and
// starts a new one for a new key epoch, after sealerLife, and once the
// partner was dropped.
func TestSealerFor(t *testing.T) {
	id, err := pki.Init(t.TempDir(), pki.InitOptions{Party: "PAK"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	card, err := id.Card([]string{"127.0.0.1:7443"}, now)
	if err != nil {
		t.Fatal(err)
	}
	var o outbox
	s1, err := o.sealerFor("PAK", card, now)
	if err != nil {
		t.Fatal(err)
	}
	if s2, _ := o.sealerFor("PAK", card, now.Add(sealerLife-time.Second)); s2 != s1 {
		t.Error("a second batch within sealerLife got a new context")
	}
	if s, _ := o.sealerFor("PAK", card, now.Add(sealerLife)); s == s1 {
		t.Error("the context outlived sealerLife")
	}
	cur, _ := o.sealerFor("PAK", card, now.Add(sealerLife))
	if err := id.Rotate(now); err != nil {
		t.Fatal(err)
	}
	rotated, err := id.Card([]string{"127.0.0.1:7443"}, now)
	if err != nil {
		t.Fatal(err)
	}
	s3, _ := o.sealerFor("PAK", rotated, now.Add(sealerLife))
	if s3 == cur || s3.Recipient().Epoch != rotated.Epoch {
		t.Errorf("after the partner's key rotated: same context %v, epoch %d (want %d)", s3 == cur, s3.Recipient().Epoch, rotated.Epoch)
	}
	o.dropSealer("PAK")
	if s, _ := o.sealerFor("PAK", rotated, now.Add(sealerLife)); s == s3 {
		t.Error("a dropped partner's context was kept")
	}
}
