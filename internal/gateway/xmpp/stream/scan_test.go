package stream

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode"
)

// TestStricter lists what this reader refuses and encoding/xml accepts,
// each for a rule of XML 1.0 or Namespaces in XML 1.0 that RFC 6120 §11
// requires a stream to follow.
func TestStricter(t *testing.T) {
	cases := []struct {
		name, in string
		want     error
	}{
		{"undeclared element prefix", `<message><a:x/></message>`, errPrefix},
		{"undeclared attribute prefix", `<message a:k='1'/>`, errPrefix},
		{"prefix out of scope", `<message><x xmlns:a='urn:a'/><a:y/></message>`, errPrefix},
		{"empty prefix binding", `<message xmlns:p=''/>`, errNSDecl},
		{"xmlns prefix declared", `<message xmlns:xmlns='urn:x'/>`, errNSDecl},
		{"xml prefix rebound", `<message xmlns:xml='urn:x'/>`, errNSDecl},
		{"xml namespace for another prefix", `<message xmlns:x='http://www.w3.org/XML/1998/namespace'/>`, errNSDecl},
		{"xmlns namespace as default", `<message xmlns='http://www.w3.org/2000/xmlns/'/>`, errNSDecl},
		{"element with xmlns prefix", `<message><xmlns:x/></message>`, errQName},
		{"empty prefix", `<message><:x/></message>`, errQName},
		{"empty local name", `<message x:='1'/>`, errQName},
		{"same attribute twice", `<message id='1' id='2'/>`, errDupAttr},
		{"same expanded name", `<message xmlns:a='urn:a' xmlns:b='urn:a' a:k='1' b:k='2'/>`, errDupAttr},
		{"surrogate reference", `<message><body>&#xDC00;</body></message>`, errCharRef},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := oracleParse([]byte(c.in), ""); err != nil {
				t.Fatalf("encoding/xml refuses it too: %v", err)
			}
			_, _, err := Parse([]byte(c.in), "")
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// TestNamespaces checks names as encoding/xml reports them, which callers
// rely on: declarations in Attr, xml:lang in the XML namespace, unprefixed
// attributes in none, scopes ending with their element.
func TestNamespaces(t *testing.T) {
	in := `<message xmlns:l='urn:l' xml:lang='en' id='1'><l:a l:k='v' k='w'><b xmlns='urn:b'><c/></b><d/></l:a></message>`
	e, _, err := Parse([]byte(in), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"xmlns l urn:l", "http://www.w3.org/XML/1998/namespace lang en", " id 1"}
	for i, a := range e.Attr {
		if got := a.Name.Space + " " + a.Name.Local + " " + a.Value; got != want[i] {
			t.Errorf("attr %d = %q, want %q", i, got, want[i])
		}
	}
	a := e.Children[0]
	if a.Name.Space != "urn:l" || a.Attr[0].Name.Space != "urn:l" || a.Attr[1].Name.Space != "" {
		t.Errorf("l:a = %+v", a)
	}
	if b, c, d := a.Children[0], a.Children[0].Children[0], a.Children[1]; b.Name.Space != "urn:b" ||
		c.Name.Space != "urn:b" || d.Name.Space != NSClient {
		t.Errorf("spaces b=%q c=%q d=%q", b.Name.Space, c.Name.Space, d.Name.Space)
	}
}

// TestLeavesRest checks that Next consumes its source exactly up to the
// end of the stanza, as encoding/xml reading byte by byte did: what
// follows <starttls/> is the TLS handshake, not for this reader.
func TestLeavesRest(t *testing.T) {
	src := bufio.NewReader(strings.NewReader(hdr + " <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x01"))
	r := NewReader(src)
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(src)
	if string(rest) != "\x16\x03\x01" {
		t.Fatalf("left %q", rest)
	}
}

// TestLimitBoundary checks where the size bound falls: a stanza of exactly
// the limit passes, one byte more does not, and white space before a
// stanza counts with the '<' that ends it.
func TestLimitBoundary(t *testing.T) {
	const limit = 100
	stanza := func(n int) string { return "<a>" + strings.Repeat("x", n-7) + "</a>" }
	cases := []struct {
		in string
		ok bool
	}{
		{stanza(limit), true},
		{stanza(limit + 1), false},
		{strings.Repeat(" ", limit-1) + "<a/>", true},
		{strings.Repeat(" ", limit) + "<a/>", false},
		{"<a b='" + strings.Repeat("x", limit) + "'/>", false},
	}
	for i, c := range cases {
		for _, split := range []bool{false, true} {
			var src io.Reader = strings.NewReader(hdr + c.in)
			if split {
				src = oneByte{src}
			}
			r := NewReader(src)
			if _, err := r.Header(); err != nil {
				t.Fatal(err)
			}
			r.SetLimit(limit)
			_, raw, err := r.Next()
			if c.ok && err != nil || !c.ok && !errors.Is(err, ErrTooLarge) {
				t.Errorf("case %d split %v: raw %d bytes, err %v", i, split, len(raw), err)
			}
		}
	}
}

func TestStreamEnd(t *testing.T) {
	const open = `<s:stream xmlns='jabber:server' xmlns:s='http://etherx.jabber.org/streams'>`
	for in, want := range map[string]error{
		open + `<message/></s:stream>`:                                           ErrStreamEnd,
		open + `<message/> </stream:stream>`:                                     nil,
		`<stream:stream xmlns='jabber:client' xmlns:stream='` + NSStream + `'/>`: ErrStreamEnd,
		open + `<message/>`:                                                      io.EOF,
		open + `<message/><message>`:                                             io.ErrUnexpectedEOF,
	} {
		r := NewReader(strings.NewReader(in))
		if _, err := r.Header(); err != nil {
			t.Fatal(err)
		}
		var err error
		for err == nil {
			_, _, err = r.Next()
		}
		if want == nil && (errors.Is(err, ErrStreamEnd) || errors.Is(err, io.EOF)) || want != nil && !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", in, err, want)
		}
		if _, _, again := r.Next(); again != err {
			t.Errorf("%q: error not sticky: %v then %v", in, err, again)
		}
	}
}

func TestASCIINames(t *testing.T) {
	for c := range rune(0x80) {
		if got, want := asciiNameChar(byte(c), true), unicode.Is(nameFirst, c); got != want {
			t.Errorf("%q first: %v, want %v", c, got, want)
		}
		if got, want := asciiNameChar(byte(c), false), unicode.Is(nameFirst, c) || unicode.Is(nameSecond, c); got != want {
			t.Errorf("%q: %v, want %v", c, got, want)
		}
	}
}

// TestAllocs keeps the reader lean: a stanza's elements, attribute lists
// and child lists come from a few arrays, and besides those it allocates
// only the strings it keeps (those not interned) and the raw copy.
func TestAllocs(t *testing.T) {
	for in, max := range map[string]float64{
		`<presence/>`:                2,
		`<r xmlns='urn:xmpp:sm:3'/>`: 3,
		labelled:                     24,
	} {
		r := NewReader(strings.NewReader(hdr + strings.Repeat(in, 101)))
		if _, err := r.Header(); err != nil {
			t.Fatal(err)
		}
		got := testing.AllocsPerRun(100, func() {
			if _, _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		})
		if got > max {
			t.Errorf("%.30q: %.0f allocations, want at most %.0f", in, got, max)
		}
	}
}
