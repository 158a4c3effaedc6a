package stream

import (
	"bytes"
	"strings"
	"testing"
)

// BenchmarkNext reads labelled ~650-byte message stanzas from one stream.
func BenchmarkNext(b *testing.B) {
	st := strings.Replace(labelled, "hi &amp; bye", strings.Repeat("Convoy departs 0600. ", 20), 1)
	const per = 1000
	in := []byte(hdr + strings.Repeat(st, per))
	b.SetBytes(int64(len(st)))
	b.ReportAllocs()
	var r *Reader
	left := 0
	for b.Loop() {
		if left == 0 {
			r = NewReader(bytes.NewReader(in))
			if _, err := r.Header(); err != nil {
				b.Fatal(err)
			}
			left = per
		}
		if _, _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
		left--
	}
}
