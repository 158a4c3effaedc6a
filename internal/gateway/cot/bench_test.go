package cot

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"liaison/internal/gateway/cot/takproto"
)

var benchEvent = []byte(strings.TrimSpace(position("XAA-unit-7", `access='Unclassified' caveat='FOUO' releasableTo='XAA XBB'`)[strings.Index(position("", ""), "<event"):]))

func BenchmarkParseEvent(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	for b.Loop() {
		if _, err := ParseEvent(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplitter(b *testing.B) {
	stream := bytes.Repeat(append(append([]byte{}, benchEvent...), '\n'), 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		sp := NewSplitter(bufio.NewReader(bytes.NewReader(stream)), 0)
		for range 100 {
			if _, err := sp.Next(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkWithMarkings(b *testing.B) {
	e, err := ParseEvent(benchEvent)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.WithMarkings("Unclassified", "", "XAA XBB")
	}
}

func BenchmarkProtoRoundTrip(b *testing.B) {
	e, err := ParseEvent(benchEvent)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p := e.ToProto().Marshal()
		m, err := takproto.Unmarshal(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := FromProto(m.Event); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFromCoT(b *testing.B) {
	l := testLabeler()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.FromCoT("Unclassified", "FOUO", []string{"XAA", "XBB"}, "sa"); err != nil {
			b.Fatal(err)
		}
	}
}
