package xmpp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"liaison/internal/gateway/xmpp/xmppload"
)

func benchNode(tb testing.TB, pairs int) (*testNode, *tls.Config) {
	n := startNode(tb)
	for i := range pairs {
		for _, p := range []string{"s", "r"} {
			u, err := NewUser(fmt.Sprintf("%s%d", p, i), "pw", []byte("RESTRICTED"))
			if err != nil {
				tb.Fatal(err)
			}
			n.users.Add(u)
		}
	}
	return n, &tls.Config{ServerName: "c.test", RootCAs: n.pki.pool}
}

// benchProsody starts Prosody for b.test (xmppload.StartProsody) with
// accounts sN/rN (password "pw") and returns its address.
func benchProsody(tb testing.TB, pki *testPKI, pairs int) string {
	tb.Helper()
	certs := tb.TempDir()
	pki.leafIn(tb, certs, "b.test", []string{"b.test"})
	p, err := xmppload.StartProsody(tb.TempDir(), filepath.Join(certs, "b.test.crt"), filepath.Join(certs, "b.test.key"), pairs, "pw")
	if errors.Is(err, xmppload.ErrNoProsody) {
		tb.Skip("prosody not installed")
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p.Addr
}

// BenchmarkLabelledChat routes labelled 1:1 messages between real TLS
// sessions through Liaison's gateway (in-memory core) and through Prosody
// 0.12 with the same load, in the same run. Run with -benchtime=1x.
func BenchmarkLabelledChat(b *testing.B) {
	const pairs, total, window = 20, 20000, 100
	n, tc := benchNode(b, pairs)
	paddr := benchProsody(b, n.pki, pairs)
	ptc := &tls.Config{ServerName: "b.test", RootCAs: n.pki.pool}
	ctx := context.Background()
	lbl := fakeLabel("RESTRICTED")
	var liaison, prosody xmppload.Result
	for b.Loop() {
		var err error
		if liaison, err = xmppload.Run(ctx, xmppload.Config{Addr: n.addr, Domain: "c.test", TLS: tc, Password: "pw",
			Pairs: pairs, Total: total, Window: window, Label: lbl}); err != nil {
			b.Fatal(err)
		}
		if prosody, err = xmppload.Run(ctx, xmppload.Config{Addr: paddr, Domain: "b.test", TLS: ptc, Password: "pw",
			Pairs: pairs, Total: total, Window: window, Label: lbl, FullJID: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(liaison.Rate(), "liaison-msg/s")
	b.ReportMetric(prosody.Rate(), "prosody-msg/s")
	b.ReportMetric(liaison.Rate()/prosody.Rate(), "ratio")
}
