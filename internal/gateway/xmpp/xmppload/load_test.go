package xmppload

import (
	"context"
	"testing"

	"liaison/internal/gateway/xmpp/stream"
)

func TestStanza(t *testing.T) {
	for _, tc := range []struct{ to, label string }{
		{"r0@a.test", "<x/>"},
		{"r1@a.test/res'<&", "<lbl xmlns='urn:x'>SECRET</lbl>"},
	} {
		e, _, err := stream.Parse(Stanza(tc.to, []byte(tc.label)), "jabber:client")
		if err != nil {
			t.Fatalf("%q: %v", tc.to, err)
		}
		if got := e.AttrValue("to"); got != tc.to {
			t.Errorf("to = %q, want %q", got, tc.to)
		}
		if b := e.Child("", "body"); b == nil || b.Text != Body {
			t.Errorf("%q: body missing or altered", tc.to)
		}
		if e.Child("urn:xmpp:sec-label:0", "securitylabel") == nil {
			t.Errorf("%q: no securitylabel", tc.to)
		}
	}
}

func TestRunRefusesUnreachable(t *testing.T) {
	if _, err := Run(context.Background(), Config{Addr: "127.0.0.1:1", Domain: "a.test", Pairs: 1, Total: 1}); err == nil {
		t.Fatal("Run against a closed port succeeded")
	}
}
