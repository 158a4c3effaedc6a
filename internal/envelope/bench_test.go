package envelope

import (
	"crypto/ed25519"
	"crypto/hpke"
	"fmt"
	"testing"

	"liaison/internal/message"
)

const benchBody = 1024

func benchMessages(n int) []*message.Message {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = testMessage(i, randomBytes(benchBody))
	}
	return msgs
}

// reportPerMessage turns the per-batch time of b.Loop into per-message
// figures.
func reportPerMessage(b *testing.B, perLoop int) {
	perMsg := float64(b.Elapsed().Nanoseconds()) / float64(b.N*perLoop)
	b.ReportMetric(perMsg, "ns/msg")
	b.ReportMetric(1e9/perMsg, "msgs/s")
}

// labelBytes is what a message's labels add to its envelope in any design.
func labelBytes(m *message.Message) int {
	n := len(m.Label)
	for _, a := range m.Alternatives {
		n += len(a)
	}
	return n
}

// BenchmarkSeal seals and signs batches of 1 KiB messages (incompressible,
// so every message pays the compression attempt and none gains from it).
func BenchmarkSeal(b *testing.B) {
	f := newFixture(b, hpke.MLKEM768X25519())
	for _, n := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			msgs := benchMessages(n)
			var wires [][]byte
			b.ReportAllocs()
			for b.Loop() {
				bt, err := NewBatch(f.signer, f.recipient(1))
				if err != nil {
					b.Fatal(err)
				}
				for _, m := range msgs {
					if err := bt.Add(m); err != nil {
						b.Fatal(err)
					}
				}
				if wires, err = bt.Finish(); err != nil {
					b.Fatal(err)
				}
			}
			reportPerMessage(b, n)
			last := len(wires) - 1
			b.ReportMetric(float64(len(wires[last])-benchBody), "B-overhead/msg")
			b.ReportMetric(float64(len(wires[last])-benchBody-labelBytes(msgs[last])), "B-overhead-exc-labels/msg")
		})
	}
}

// BenchmarkOpen verifies and opens every envelope of a batch, with an
// Opener (one signature check and one decapsulation per batch) and with
// Open (one of each per envelope).
func BenchmarkOpen(b *testing.B) {
	f := newFixture(b, hpke.MLKEM768X25519())
	for _, n := range []int{1, 64, 256} {
		wires := seal(b, f, 1, benchMessages(n)...)
		b.Run(fmt.Sprintf("opener/batch=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o := &Opener{Verify: f.verify, Keys: f.lookup, Self: "XBB"}
				for _, w := range wires {
					if _, _, err := o.Open(w); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportPerMessage(b, n)
		})
	}
	b.Run("open/batch=64", func(b *testing.B) {
		wires := seal(b, f, 1, benchMessages(64)...)
		b.ReportAllocs()
		for b.Loop() {
			for _, w := range wires {
				if _, _, err := f.open(w); err != nil {
					b.Fatal(err)
				}
			}
		}
		reportPerMessage(b, len(wires))
	})
}

// BenchmarkBaseline is the cost without amortisation: one single-shot
// hpke.Seal and one ed25519.Sign per message, and on the receiving side one
// ed25519.Verify and one hpke.Open.
func BenchmarkBaseline(b *testing.B) {
	f := newFixture(b, hpke.MLKEM768X25519())
	body := randomBytes(benchBody)
	pub := f.keys[1].PublicKey()
	b.Run("seal+sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ct, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), nil, body)
			if err != nil {
				b.Fatal(err)
			}
			_ = ed25519.Sign(f.signer, ct)
		}
		reportPerMessage(b, 1)
	})
	ct, _ := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), nil, body)
	sig := ed25519.Sign(f.signer, ct)
	b.Logf("baseline overhead: %d bytes per message (encapsulated key, AEAD tag, signature)", len(ct)+len(sig)-len(body))
	vk := f.signer.Public().(ed25519.PublicKey)
	b.Run("verify+open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(vk, ct, sig) {
				b.Fatal("verify")
			}
			if _, err := hpke.Open(f.keys[1], hpke.HKDFSHA256(), hpke.AES256GCM(), nil, ct); err != nil {
				b.Fatal(err)
			}
		}
		reportPerMessage(b, 1)
	})
}
