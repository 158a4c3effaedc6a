package guard

import (
	"strings"
	"testing"
)

// refFindDirtyWord is the plain definition of dirty-word matching, kept
// as the guard had it before lists were compiled: fold the body and every
// word, then look for whole-word occurrences. The compiled matcher must
// agree with it on every input.
func refFindDirtyWord(body []byte, words []string) (string, bool) {
	text := fold(string(body))
	for _, w := range words {
		fw := fold(strings.TrimSpace(w))
		if fw == "" {
			continue
		}
		for i := 0; ; {
			j := strings.Index(text[i:], fw)
			if j < 0 {
				break
			}
			start, end := i+j, i+j+len(fw)
			if boundary(text, start-1) && boundary(text, end) {
				return w, true
			}
			i = start + 1
		}
	}
	return "", false
}

var dirtyLists = [][]string{
	{"Kestrel", "night jar"},
	{"KESTREL", "NIGHTJAR"},
	{"", "  ", "x", "_a", "a_", "9"},
	{"ｓｅｃｒｅｔ", "ﬁle", "Straße", "K", "ǅ"}, // full width, ligature, sharp s, Kelvin sign, title case
	{"İstanbul", "ΣΊΣΥΦΟΣ", "ŉ", "\u212b"},
	{"a\u0301", "é", "℡", "\xff", "a\xffb"},
}

func TestWordListMatchesReference(t *testing.T) {
	bodies := []string{
		"", "x", "X", "at kestrel now", "at KESTREL.", "kestrels", "akestrel", "_kestrel", "kestrel_", "kestrel9",
		"the Night Jar.", "night  jar", "NIGHTJAR", "nightjar!", "tel", "TEL", "a_", "_A", "9 9", "_a_",
		"at ＫＥＳＴＲＥＬ", "ｓｅｃｒｅｔ", "SECRET", "secret file", "a ﬁle", "the FILE", "STRASSE", "strasse", "straße",
		"k", "\u212a", "Kestrel\u0301", "é", "e\u0301", "E\u0301", "a\u0301", "á", "℡", "tel\u00a0", "\xff", "a\xffb", "a\xff",
		"istanbul", "İSTANBUL", "i\u0307stanbul", "σίσυφος", "ΣΊΣΥΦΟΣ", "ʼn", "\u00c5", "å", "ǆ", "Ǆ", "ǅ", "dž",
		"\x00kestrel\x00", "kestrel\x7f", "~kestrel`", "@kestrel[", "KESTREL\n", "\tnightjar\r",
	}
	for _, ws := range dirtyLists {
		l := compileWords(ws)
		for _, b := range bodies {
			wantW, want := refFindDirtyWord([]byte(b), ws)
			gotW, got := l.find([]byte(b))
			if gotW != wantW || got != want {
				t.Errorf("words %q body %q: find = %q %v, reference %q %v", ws, b, gotW, got, wantW, want)
			}
		}
	}
}

// The cache hands back the compiled list while the list is unchanged, and
// compiles again when a list is changed in place.
func TestWordListCache(t *testing.T) {
	var c Cache
	ws := []string{"kestrel", "nightjar"}
	a := c.wordList(ws)
	if b := c.wordList(ws); b != a {
		t.Errorf("same list compiled twice")
	}
	ws[1] = "osprey"
	if w, ok := c.wordList(ws).find([]byte("an osprey")); !ok || w != "osprey" {
		t.Errorf("list changed in place: find = %q %v, want osprey", w, ok)
	}
	if _, ok := c.wordList(ws[:1]).find([]byte("an osprey")); ok {
		t.Errorf("shorter list over the same array matched a word it does not hold")
	}
}

func FuzzWordList(f *testing.F) {
	f.Add([]byte("at kestrel now"), "Kestrel", "night jar")
	f.Add([]byte("at ＫＥＳＴＲＥＬ"), "kestrel", "")
	f.Add([]byte("a ﬁle"), "FILE", "Straße")
	f.Add([]byte("STRASSE k"), "straße", "\u212a")
	f.Add([]byte("x\xffy"), "\xff", "y")
	f.Add([]byte("ŉ e\u0301"), "ʼn", "é")
	f.Fuzz(func(t *testing.T, body []byte, w1, w2 string) {
		ws := []string{w1, w2}
		if len(body) > 0 {
			// A piece of the body in capitals, so that matches happen
			// often, on either side of a word boundary.
			a := len(w1) % len(body)
			b := a + 1 + len(w2)%(len(body)-a)
			ws = append(ws, strings.ToUpper(string(body[a:b])))
		}
		wantW, want := refFindDirtyWord(body, ws)
		gotW, got := compileWords(ws).find(body)
		if gotW != wantW || got != want {
			t.Fatalf("words %q body %q: find = %q %v, reference %q %v", ws, body, gotW, got, wantW, want)
		}
	})
}
