package guard

import (
	"bytes"
	"encoding/binary"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Dirty-word matching: a listed word matches when it occurs in the body as
// a whole word after both are normalised (NFKC) and case folded. A list is
// compiled once (each word folded) and kept in a [Cache]; an ASCII body,
// the common case, is then matched in place without folding or allocating,
// and any other body takes the full Unicode path. Both give the same
// answer: the tests and FuzzWordList compare them with the plain
// definition.

var folder = cases.Fold()

// fold normalises text for dirty-word matching: compatibility
// decomposition (so "ｓｅｃｒｅｔ" and ligatures match their plain forms),
// case folding, then composition.
func fold(s string) string {
	return norm.NFKC.String(folder.String(norm.NFKC.String(s)))
}

// wordList is a dirty-word list compiled for matching. It is never
// changed once built, so one may be shared between goroutines.
type wordList struct {
	src   []string // the list as given, to confirm a cache hit
	words []word
}

type word struct {
	listed string // as listed, for the reason
	folded string // normalised and folded; "" never matches
	ascii  bool   // folded is all ASCII, so it can occur in an ASCII body
}

func compileWords(ws []string) *wordList {
	l := &wordList{src: append([]string(nil), ws...), words: make([]word, 0, len(ws))}
	for _, w := range ws {
		fw := fold(strings.TrimSpace(w))
		l.words = append(l.words, word{listed: w, folded: fw, ascii: isASCIIString(fw)})
	}
	return l
}

// find reports the first listed word that occurs in body as a whole word
// after normalisation and case folding.
func (l *wordList) find(body []byte) (string, bool) {
	if isASCII(body) {
		// Folding ASCII text only lowers A-Z, and NFKC leaves it as it
		// is: match in place. A folded word with a non-ASCII byte cannot
		// occur in it.
		for _, w := range l.words {
			if w.folded != "" && w.ascii && containsWordASCII(body, w.folded) {
				return w.listed, true
			}
		}
		return "", false
	}
	text := fold(string(body))
	for _, w := range l.words {
		if w.folded != "" && containsWord(text, w.folded) {
			return w.listed, true
		}
	}
	return "", false
}

// containsWord reports whether fw occurs in text (both folded) between
// word boundaries.
func containsWord(text, fw string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], fw)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(fw)
		if boundary(text, start-1) && boundary(text, end) {
			return true
		}
		i = start + 1
	}
}

// boundary reports whether folded text has no word character at i.
func boundary(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return true
	}
	return !wordByte(s[i])
}

func wordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 0x80 || c == '_'
}

// lower is the case folding of one ASCII byte.
func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// containsWordASCII is containsWord on the folding of an ASCII body,
// without making the folding: it looks at lower(body[i]) for text[i].
func containsWordASCII(body []byte, fw string) bool {
	n := len(fw)
	if n > len(body) {
		return false
	}
	c := fw[0]
	switch {
	case c >= 'A' && c <= 'Z':
		return false // folded text has no capitals
	case c >= 'a' && c <= 'z':
		return scanASCII(body, fw, c) || scanASCII(body, fw, c-('a'-'A'))
	default:
		return scanASCII(body, fw, c)
	}
}

// scanASCII tries every place where body has first (a byte that folds to
// fw[0]).
func scanASCII(body []byte, fw string, first byte) bool {
	n := len(fw)
	last := len(body) - n // last possible start
	for i := 0; i <= last; {
		j := bytes.IndexByte(body[i:last+1], first)
		if j < 0 {
			return false
		}
		s := i + j
		if equalFoldASCII(body[s+1:s+n], fw[1:]) &&
			(s == 0 || !wordByte(lower(body[s-1]))) &&
			(s+n == len(body) || !wordByte(lower(body[s+n]))) {
			return true
		}
		i = s + 1
	}
	return false
}

// equalFoldASCII reports whether the folding of b is f.
func equalFoldASCII(b []byte, f string) bool {
	for k := range len(f) {
		if lower(b[k]) != f[k] {
			return false
		}
	}
	return true
}

// isASCII reports whether b has no byte above 0x7f, eight bytes a step.
func isASCII(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:i+8])&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isASCIIString(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
