package cot

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const ev1 = `<event version="2.0" uid="a" type="a-f-G" how="m-g" time="2026-03-01T10:00:00Z" start="2026-03-01T10:00:00Z" stale="2026-03-01T10:02:00Z"><point lat="1" lon="2" hae="3" ce="4" le="5"/><detail><remarks>a &gt; b</remarks></detail></event>`
const ev2 = `<event version='2.0' uid='b' type='a-h-G' how='h-e' time='2026-03-01T10:00:00.123456789Z' start='2026-03-01T10:00:00Z' stale='2026-03-01T10:02:00Z'><detail/><point lat='1' lon='2' hae='3' ce='9.999999e+06' le='5'/></event >`

func split(t *testing.T, in string, max int, oneByte bool) ([]string, error) {
	t.Helper()
	var r io.Reader = strings.NewReader(in)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	sp := NewSplitter(bufio.NewReaderSize(r, 16), max)
	var out []string
	for {
		b, err := sp.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(b))
	}
}

func TestSplitter(t *testing.T) {
	decl := `<?xml version='1.0' encoding='UTF-8' standalone='yes'?>`
	tests := []struct {
		name string
		in   string
		want []string
		err  error
	}{
		{"back to back", ev1 + ev2, []string{ev1, ev2}, nil},
		{"declarations", decl + ev1 + "\n" + decl + ev2, []string{ev1, ev2}, nil},
		{"whitespace", "\n  " + ev1 + "\r\n\t" + ev2 + "\n\n", []string{ev1, ev2}, nil},
		{"auth first skipped", `<auth><cot username="u" password="p" uid="x"/></auth>` + ev1, []string{ev1}, nil},
		{"not eventual", `<eventually/>` + ev1, []string{ev1}, nil},
		{"empty", "", nil, nil},
		{"truncated", ev1 + ev2[:40], []string{ev1}, io.ErrUnexpectedEOF},
		{"too large", ev1 + strings.Replace(ev2, "<detail/>", "<detail>"+strings.Repeat("x", 400)+"</detail>", 1), []string{ev1}, ErrEventTooLarge},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			t.Run(tt.name, func(t *testing.T) {
				got, err := split(t, tt.in, 300, oneByte)
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if strings.Join(got, "|") != strings.Join(tt.want, "|") {
					t.Errorf("got %q\nwant %q", got, tt.want)
				}
			})
		}
	}
}

// The splitter must leave bytes after an event in the bufio.Reader, so a
// connection can switch to protocol 1 after the negotiation response.
func TestSplitterDoesNotReadAhead(t *testing.T) {
	br := bufio.NewReader(strings.NewReader(ev1 + "\xbf\x01\x00"))
	if _, err := NewSplitter(br, 0).Next(); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "\xbf\x01\x00" {
		t.Fatalf("left %q", rest)
	}
}

func FuzzSplitter(f *testing.F) {
	f.Add([]byte(ev1+ev2), uint8(3))
	f.Add([]byte("<event></event><event"), uint8(1))
	f.Add([]byte("garbage<event x='>'></event >"), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		// Feed the input in two halves (split reads).
		c := int(cut) % (len(in) + 1)
		r := io.MultiReader(iotest.OneByteReader(strings.NewReader(string(in[:c]))), strings.NewReader(string(in[c:])))
		sp := NewSplitter(bufio.NewReaderSize(r, 16), 1024)
		for range len(in) + 1 {
			b, err := sp.Next()
			if err != nil {
				return
			}
			if len(b) > 1024 || !strings.HasPrefix(string(b), "<event") || !endsWithClose(b) {
				t.Fatalf("bad event %q", b)
			}
		}
	})
}
