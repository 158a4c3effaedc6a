package stream

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

const hdr = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='c.test' version='1.0'>`

const labelled = `<message to='bob@c.test' type='chat' id='m1'><body>hi &amp; bye</body>` +
	`<securitylabel xmlns='urn:xmpp:sec-label:0'><displaymarking fgcolor='black' bgcolor='red'>X SECRET</displaymarking>` +
	`<label><l:originatorConfidentialityLabel xmlns:l='urn:nato:stanag:4774:confidentialitymetadatalabel:1:0'><l:x/></l:originatorConfidentialityLabel></label></securitylabel></message>`

// oneByte feeds one byte per Read, to catch split reads.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func TestNextKeepsRawBytes(t *testing.T) {
	stanzas := []string{
		`<presence/>`,
		labelled,
		`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`,
		`<message><body><![CDATA[a<b]]></body></message>`,
	}
	in := hdr + "\n " + strings.Join(stanzas, " \n") + "\n</stream:stream>"
	for _, split := range []bool{false, true} {
		var src io.Reader = strings.NewReader(in)
		if split {
			src = oneByte{src}
		}
		r := NewReader(src)
		h, err := r.Header()
		if err != nil {
			t.Fatal(err)
		}
		if h.NS != NSClient || h.To != "c.test" || h.Version != "1.0" {
			t.Fatalf("header = %+v", h)
		}
		for i, want := range stanzas {
			e, raw, err := r.Next()
			if err != nil {
				t.Fatalf("stanza %d: %v", i, err)
			}
			if string(raw) != want {
				t.Fatalf("stanza %d raw = %q, want %q", i, raw, want)
			}
			if e.Name.Space != NSClient {
				t.Errorf("stanza %d ns = %q", i, e.Name.Space)
			}
			for _, c := range e.Children {
				if got := string(c.Raw(raw)); !strings.HasPrefix(got, "<") || !strings.HasSuffix(got, ">") {
					t.Errorf("stanza %d child %s raw = %q", i, c.Name.Local, got)
				}
			}
		}
		if _, _, err := r.Next(); err != ErrStreamEnd {
			t.Fatalf("at end: %v, want ErrStreamEnd", err)
		}
	}
}

func TestLabelRawSlice(t *testing.T) {
	e, raw, err := Parse([]byte(labelled), "")
	if err != nil {
		t.Fatal(err)
	}
	sl := e.Child("urn:xmpp:sec-label:0", "securitylabel")
	if sl == nil {
		t.Fatal("no securitylabel")
	}
	lbl := sl.Child("", "label").Children[0]
	want := `<l:originatorConfidentialityLabel xmlns:l='urn:nato:stanag:4774:confidentialitymetadatalabel:1:0'><l:x/></l:originatorConfidentialityLabel>`
	if got := string(lbl.Raw(raw)); got != want {
		t.Fatalf("label raw = %q", got)
	}
	if b := e.Child("", "body"); b == nil || b.Text != "hi & bye" {
		t.Fatalf("body = %+v", b)
	}
}

func TestRefused(t *testing.T) {
	big := "<message><body>" + strings.Repeat("a", 2000) + "</body></message>"
	deep := strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40)
	cases := []struct {
		name, in string
		want     error
	}{
		{"doctype", `<!DOCTYPE x [<!ENTITY a "b">]><message/>`, ErrForbidden},
		{"comment", `<message><!-- x --></message>`, ErrForbidden},
		{"pi", `<message><?php x?></message>`, ErrForbidden},
		{"entity", `<message><body>&lol;</body></message>`, nil},
		{"too large", big, ErrTooLarge},
		{"too deep", deep, ErrTooLarge},
		{"whitespace flood", strings.Repeat(" ", 5000) + "<a/>", ErrTooLarge},
		{"text between", `hello<a/>`, nil},
		{"bad end", `<a></b>`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(hdr + c.in))
			if _, err := r.Header(); err != nil {
				t.Fatal(err)
			}
			r.SetLimit(1000)
			_, _, err := r.Next()
			if err == nil {
				t.Fatal("accepted")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestHeaderRefused(t *testing.T) {
	for _, in := range []string{
		`<!DOCTYPE stream:stream><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
		`<stream:stream xmlns='jabber:other' xmlns:stream='http://etherx.jabber.org/streams'>`,
		`<stream xmlns='jabber:client'>`,
		`<?xml version='1.0'?><?x y?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
	} {
		if _, err := NewReader(strings.NewReader(in)).Header(); err == nil {
			t.Errorf("accepted %q", in)
		}
	}
}

func TestRestartOnSameReader(t *testing.T) {
	in := hdr + `<auth/>` + hdr + `<iq id='1'/>`
	br := bytes.NewBufferString(in)
	r := NewReader(br)
	for i := 0; i < 2; i++ {
		if _, err := r.Header(); err != nil {
			t.Fatalf("header %d: %v", i, err)
		}
		if _, _, err := r.Next(); err != nil {
			t.Fatalf("next %d: %v", i, err)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte(labelled))
	f.Add([]byte(`<presence/><iq type='get'/>`))
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>`))
	f.Add([]byte(`<a><![CDATA[x]]></a>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(io.MultiReader(strings.NewReader(hdr), bytes.NewReader(in)))
		if _, err := r.Header(); err != nil {
			t.Fatal(err)
		}
		r.SetLimit(4096)
		for range 64 {
			e, raw, err := r.Next()
			if err != nil {
				return
			}
			if len(raw) > 4096 {
				t.Fatalf("stanza of %d bytes past the limit", len(raw))
			}
			// The raw bytes re-parse to the same element name.
			e2, _, err := Parse(raw, NSClient)
			if err != nil {
				t.Fatalf("raw %q does not re-parse: %v", raw, err)
			}
			if e2.Name != e.Name {
				t.Fatalf("re-parse name %v != %v", e2.Name, e.Name)
			}
		}
	})
}
