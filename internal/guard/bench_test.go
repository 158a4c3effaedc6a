package guard

import (
	"encoding/base64"
	"math/rand/v2"
	"testing"

	"liaison/internal/message"
)

// benchBody is n bytes of base64 text, like the accept benchmark's bodies:
// no dirty words.
func benchBody(n int) []byte {
	raw := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(raw)
	return []byte(base64.StdEncoding.EncodeToString(raw)[:n])
}

// BenchmarkDecideNode mirrors what a node does for every accepted message
// of bench/accept: a CONFIDENTIAL // REL TO USA, PAK label translated for
// PAK, a 1 KiB text body and a dirty-word list.
func BenchmarkDecideNode(b *testing.B) {
	f := newFixture(b)
	m := msg("bulk", "USA", message.Routine, usLabel("CONFIDENTIAL", relTo("USA", "PAK")), "text/plain", string(benchBody(1024)))
	for _, bc := range []struct {
		name  string
		cache *Cache
	}{{"Decide", nil}, {"Cache", NewCache(sharedParser())}} {
		b.Run(bc.name, func(b *testing.B) {
			r := f.rules
			r.Cache = bc.cache
			b.ReportAllocs()
			for b.Loop() {
				if d := Decide(m, "PAK", t2010, r); d.Verdict != Release {
					b.Fatal(d.Reason)
				}
			}
		})
	}
}

func BenchmarkFindDirtyWord(b *testing.B) {
	words := []string{"KESTREL", "NIGHTJAR"}
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"ascii-1KiB", benchBody(1024)},
		{"unicode-1KiB", append([]byte("ｓｅｃｒｅｔ "), benchBody(1024-len("ｓｅｃｒｅｔ "))...)},
	} {
		b.Run(bc.name+"/reference", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if _, found := refFindDirtyWord(bc.body, words); found {
					b.Fatal("found a dirty word")
				}
			}
		})
		b.Run(bc.name+"/compiled", func(b *testing.B) {
			l := compileWords(words)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if _, found := l.find(bc.body); found {
					b.Fatal("found a dirty word")
				}
			}
		})
	}
}
