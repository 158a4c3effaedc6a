package cot

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"liaison/internal/gateway/cot/takproto"
)

func TestUDPInput(t *testing.T) {
	usa, pak, _ := pairGateways(t)
	rx := dial(t, pak)
	_, _, ua := usa.Addrs()
	conn, err := net.Dial("udp", ua.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := position("udp-xml", `access='Unclassified' releasableTo='USA PAK'`)
	conn.Write([]byte(raw))
	if e := rx.next(); e.UID != "udp-xml" {
		t.Fatalf("got %q", e.UID)
	}
	e, _ := ParseEvent([]byte(strings.TrimSpace(raw[strings.Index(raw, "<event"):])))
	e.UID = "udp-mesh"
	conn.Write(takproto.AppendMesh(nil, e.ToProto().Marshal()))
	if e := rx.next(); e.UID != "udp-mesh" || e.Callsign != "ALPHA-7" {
		t.Fatalf("got %q", e.Raw)
	}
}

func TestDeleteForwarded(t *testing.T) {
	usa, pak, _ := pairGateways(t)
	rx := dial(t, pak)
	tx := dial(t, usa)
	tx.write(`<event version="2.0" uid="del-1" type="t-x-d-d" how="h-g-i-g-o" time="2026-03-01T10:00:00Z" start="2026-03-01T10:00:00Z" stale="2026-03-01T10:00:20Z" access="Unclassified" releasableTo="USA PAK"><point lat="0" lon="0" hae="0" ce="9999999" le="9999999"/><detail><link uid="usa-1" relation="p-p" type="a-f-G-U-C"/></detail></event>`)
	if e := rx.next(); e.Type != TypeDelete || e.LinkUID != "usa-1" {
		t.Fatalf("got %s", e.Raw)
	}
}

func TestTLSUnknownCertificateRefused(t *testing.T) {
	p := newTestPKI(t)
	usa, _ := tlsPair(t, p)
	_, addr, _ := usa.Addrs()
	_, _, cert := p.issue(t, "stranger", false)
	conn, err := tls.Dial("tcp", addr.String(), &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: p.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := conn.Read(make([]byte, 100)); err == nil {
		t.Fatalf("unknown client was served %d bytes", n)
	}
}

// A client that never reads fills its queue; the channel blocks (no event
// is dropped for the others) until the slow client is cut off and audited.
func TestSlowClientIsDisconnectedNotSkipped(t *testing.T) {
	n := &fakeNet{}
	l := testLabeler()
	a := &memAudit{}
	g := startGateway(t, Config{
		Origin: "USA", TCP: "127.0.0.1:0", AnonymousGroups: []string{"Cyan"},
		Channels: map[string]string{"Cyan": "sa"}, QueueLen: 4, SlowClient: 2 * time.Second, Auditor: a,
	}, n.node("USA"), l)
	slow := dial(t, g)
	slow.conn.(*net.TCPConn).SetReadBuffer(4096)
	fast := dial(t, g)
	tx := dial(t, g)
	const total = 2000
	big := strings.Repeat("x", 6000)
	go func() {
		for i := range total {
			tx.conn.Write([]byte(strings.Replace(position("n"+strconv.Itoa(i), `access='Unclassified' releasableTo='USA'`), "<x:odd", "<pad>"+big+"</pad><x:odd", 1)))
		}
	}()
	for i := range total {
		if e := fast.next(); e.UID != "n"+strconv.Itoa(i) {
			t.Fatalf("event %d: got %q", i, e.UID)
		}
	}
	if len(a.records("slow-client")) != 1 {
		t.Errorf("slow-client audits: %+v", a.records("slow-client"))
	}
}

func TestTLSUserByFingerprint(t *testing.T) {
	p := newTestPKI(t)
	_, _, serverCert := p.issue(t, "gateway", true)
	_, _, cert := p.issue(t, "no-such-cn", false)
	sum := sha256.Sum256(cert.Certificate[0])
	g := startGateway(t, Config{
		Origin: "USA", TLS: "127.0.0.1:0",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert},
		Users:     map[string]User{"sha256:" + hex.EncodeToString(sum[:]): {Name: "device-7", Groups: []string{"Cyan"}}},
		Channels:  map[string]string{"Cyan": "sa"},
	}, (&fakeNet{}).node("USA"), testLabeler())
	_, addr, _ := g.Addrs()
	conn, err := tls.Dial("tcp", addr.String(), &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: p.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	raw, err := NewSplitter(bufio.NewReader(conn), 0).Next()
	if err != nil {
		t.Fatalf("client known by fingerprint not served: %v", err)
	}
	if e, err := ParseEvent(raw); err != nil || e.Type != TypeTakpOffer {
		t.Fatalf("first event %s, want the protocol offer", raw)
	}
}
