package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"liaison/internal/federation/linksim"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// testNode is one side of a link with fake Outbox and Inbox.
type testNode struct {
	party string
	cfg   Config
	m     *Manager
	out   *fakeOutbox
	in    *fakeInbox
	addr  string

	mu         sync.Mutex
	events     []Event
	deliveries []Delivery
	controls   []string
}

// trustSet maps each party to the CA pinned for it.
type trustSet map[string]*testCA

func (ts trustSet) pool() *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range ts {
		p.AddCert(ca.cert)
	}
	return p
}

func testConfig(t testing.TB, party string, cert tls.Certificate, trust trustSet, out *fakeOutbox, in *fakeInbox) Config {
	return Config{
		Self: party,
		TLS: func(peer string) (*tls.Config, error) {
			if peer == "" {
				return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: trust.pool()}, nil
			}
			ca := trust[peer]
			if ca == nil {
				return nil, fmt.Errorf("no CA pinned for %q", peer)
			}
			return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: ca.pool}, nil
		},
		PartyOf: partyOf,
		Authorize: func(peer string, chain []*x509.Certificate) error {
			ca := trust[peer]
			if ca == nil {
				return fmt.Errorf("no agreement in force names %q", peer)
			}
			return chain[0].CheckSignatureFrom(ca.cert)
		},
		Outbox:     out,
		Inbox:      in,
		Heartbeat:  time.Second,
		BackoffMin: 5 * time.Millisecond,
		BackoffMax: 50 * time.Millisecond,
		Poll:       50 * time.Millisecond,
		Logger:     slog.New(slog.DiscardHandler),
	}
}

// startNode builds and starts a node; mod may change the config.
func startNode(t testing.TB, party string, cert tls.Certificate, trust trustSet, out *fakeOutbox, in *fakeInbox, mod func(*Config)) *testNode {
	t.Helper()
	n := &testNode{party: party, out: out, in: in}
	n.cfg = testConfig(t, party, cert, trust, out, in)
	n.cfg.Events = func(e Event) { n.mu.Lock(); n.events = append(n.events, e); n.mu.Unlock() }
	n.cfg.Delivery = func(ds []Delivery) { n.mu.Lock(); n.deliveries = append(n.deliveries, ds...); n.mu.Unlock() }
	n.cfg.Control = func(p, kind string, data []byte) {
		n.mu.Lock()
		n.controls = append(n.controls, p+"/"+kind+"/"+string(data))
		n.mu.Unlock()
	}
	if mod != nil {
		mod(&n.cfg)
	}
	m, err := New(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	a, err := m.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = a.String()
	t.Cleanup(func() { m.Close() })
	return n
}

func (n *testNode) eventsOf(k EventKind) []Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Event
	for _, e := range n.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func (n *testNode) deliveredCount(k DeliveryKind) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, d := range n.deliveries {
		if d.Kind == k {
			c++
		}
	}
	return c
}

func (n *testNode) up(party string) bool {
	for _, s := range n.m.Status() {
		if s.Party == party {
			return s.Up
		}
	}
	return false
}

// pair starts XAA and XBB, each trusting the other, XAA dialing XBB.
type pairT struct {
	a, b         *testNode
	caA, caB     *testCA
	certA, certB tls.Certificate
	trust        trustSet
}

func newPair(t testing.TB, modA, modB func(*Config)) *pairT {
	t.Helper()
	p := newPairNoDial(t, modA, modB)
	p.a.m.AddPeer("XBB", p.b.addr)
	return p
}

// newPairProxy is newPair with XAA dialing XBB through a linksim proxy.
func newPairProxy(t testing.TB, modA, modB func(*Config), lc linksim.Config) (*pairT, *linksim.Proxy) {
	t.Helper()
	p := newPairNoDial(t, modA, modB)
	px, err := linksim.New(p.b.addr, lc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	p.a.m.AddPeer("XBB", px.Addr())
	return p, px
}

func newPairNoDial(t testing.TB, modA, modB func(*Config)) *pairT {
	t.Helper()
	p := &pairT{caA: newCA(t, "XAA"), caB: newCA(t, "XBB")}
	p.certA, p.certB = p.caA.leaf(t, "XAA", time.Time{}), p.caB.leaf(t, "XBB", time.Time{})
	p.trust = trustSet{"XAA": p.caA, "XBB": p.caB}
	p.b = startNode(t, "XBB", p.certB, p.trust, newOutbox(), newInbox(), modB)
	p.a = startNode(t, "XAA", p.certA, p.trust, newOutbox(), newInbox(), modA)
	p.b.m.AddPeer("XAA", "")
	p.a.m.AddPeer("XBB", "")
	return p
}
