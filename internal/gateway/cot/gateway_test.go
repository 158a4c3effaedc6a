package cot

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"liaison/internal/gateway/cot/takproto"
)

func testLabeler() *MappingLabeler {
	return &MappingLabeler{
		PolicyID: "2.25.4242", PolicyName: "DEMO",
		Classifications: map[string]string{"Unclassified": "UNCLASSIFIED", "Restricted": "RESTRICTED"},
	}
}

// pair starts two gateways for parties USA and PAK joined by a fake core.
// startGateway makes a gateway of cfg and starts it; it closes when the
// test ends.
func startGateway(t *testing.T, cfg Config, core Core, l Labeler) *Gateway {
	t.Helper()
	g, err := New(cfg, core, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func pairGateways(t *testing.T) (usa, pak *Gateway, auditUSA *memAudit) {
	t.Helper()
	n := &fakeNet{}
	l := testLabeler()
	start := func(party string, a *memAudit) *Gateway {
		return startGateway(t, Config{
			Origin: party, TCP: "127.0.0.1:0", UDP: "127.0.0.1:0",
			AnonymousGroups: []string{"Cyan"},
			Channels:        map[string]string{"Cyan": "coalition-sa"},
			DefaultLabels:   map[string][]byte{"coalition-sa": l.Label("RESTRICTED", nil, []string{party})},
			Auditor:         a,
		}, n.node(party), l)
	}
	auditUSA = &memAudit{}
	return start("USA", auditUSA), start("PAK", &memAudit{}), auditUSA
}

type tcpClient struct {
	t    *testing.T
	conn net.Conn
	sp   *Splitter
	br   *bufio.Reader
}

func dial(t *testing.T, g *Gateway) *tcpClient {
	t.Helper()
	a, _, _ := g.Addrs()
	conn, err := net.Dial("tcp", a.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	br := bufio.NewReader(conn)
	c := &tcpClient{t: t, conn: conn, br: br, sp: NewSplitter(br, 0)}
	if e := c.next(); e.Type != TypeTakpOffer {
		t.Fatalf("first event type %q, want offer", e.Type)
	}
	return c
}

func (c *tcpClient) write(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// next reads one event, failing after 20 s.
func (c *tcpClient) next() *Event {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	raw, err := c.sp.Next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	e, err := ParseEvent(append([]byte(nil), raw...))
	if err != nil {
		c.t.Fatal(err)
	}
	return e
}

const detail = `<detail><contact callsign='ALPHA-7' endpoint='*:-1:stcp'/><__group name='Cyan' role='Team Member'/><x:odd xmlns:x="urn:x">keep &amp; me</x:odd></detail>`

func position(uid, marks string) string {
	return fmt.Sprintf(`<?xml version='1.0' encoding='UTF-8' standalone='yes'?><event version='2.0' uid='%s' type='a-f-G-U-C' how='m-g' time='2026-03-01T10:00:00.000Z' start='2026-03-01T10:00:00.000Z' stale='2026-03-01T10:02:00.000Z' %s><point lat='52.52' lon='13.40' hae='35' ce='10' le='9999999'/>%s</event>`+"\n", uid, marks, detail)
}

func TestPositionCrossesWithDetailIntact(t *testing.T) {
	usa, pak, audit := pairGateways(t)
	rx := dial(t, pak)
	tx := dial(t, usa)
	// Ping first: answered locally, never forwarded.
	tx.write(`<event version="2.0" uid="ping-1" type="t-x-c-t" how="h-g-i-g-o" time="2026-03-01T10:00:00Z" start="2026-03-01T10:00:00Z" stale="2026-03-01T10:00:10Z"><point lat="0" lon="0" hae="0" ce="9999999" le="9999999"/><detail/></event>`)
	if e := tx.next(); e.Type != TypePong {
		t.Fatalf("got %q, want pong", e.Type)
	}
	tx.write(position("usa-only", `access='Unclassified' releasableTo='USA'`))
	tx.write(position("unmarked", ``))
	tx.write(position("xaa-1", `access='Unclassified' caveat='FOUO' releaseableTo='USA PAK'`))
	e := rx.next()
	if e.UID != "xaa-1" {
		t.Fatalf("first event at PAK is %q, want xaa-1 (USA-only, unmarked and ping must not cross)", e.UID)
	}
	if string(e.Detail) != detail[len("<detail>"):len(detail)-len("</detail>")] {
		t.Errorf("detail changed:\n got %s\nwant %s", e.Detail, detail)
	}
	if e.Access != "Unclassified" || e.Caveat != "FOUO" || e.ReleasableTo != "USA PAK" {
		t.Errorf("markings %q/%q/%q", e.Access, e.Caveat, e.ReleasableTo)
	}
	if !strings.Contains(string(e.Raw), `releasableTo="USA PAK"`) || strings.Contains(string(e.Raw), "releaseableTo") {
		t.Errorf("want releasableTo spelling: %s", e.Raw)
	}
	var sawDefault bool
	for _, r := range audit.records("label") {
		if r.UID == "unmarked" && strings.HasPrefix(r.Detail, "default label") && strings.Contains(string(r.Effective), "RESTRICTED") {
			sawDefault = true
		}
	}
	if !sawDefault {
		t.Errorf("unmarked event not audited with default label: %+v", audit.records("label"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(usa.Contacts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if cs := usa.Contacts(); len(cs) != 1 || cs[0].Callsign != "ALPHA-7" || cs[0].Party != "USA" || cs[0].User != "anonymous" {
		t.Errorf("USA contacts %+v", cs)
	}
	// PAK learned the partner's contact from the delivered event.
	found := false
	for _, c := range pak.Contacts() {
		found = found || (c.UID == "xaa-1" && c.Party == "USA" && c.Callsign == "ALPHA-7")
	}
	if !found {
		t.Errorf("PAK contacts %+v", pak.Contacts())
	}
}

func TestProtocolV1Negotiation(t *testing.T) {
	usa, pak, _ := pairGateways(t)
	rx := dial(t, pak) // XML receiver
	tx := dial(t, usa)
	tx.write(`<event version='2.0' uid='takp-x' type='t-x-takp-q' how='m-g' time='2026-03-01T10:00:00Z' start='2026-03-01T10:00:00Z' stale='2026-03-01T10:01:00Z'><point lat='0' lon='0' hae='0' ce='999999' le='999999'/><detail><TakControl><TakRequest version='1'/></TakControl></detail></event>`)
	if e := tx.next(); e.Type != TypeTakpResponse || e.TakResponse != "true" {
		t.Fatalf("got %q status %q, want takp-r true", e.Type, e.TakResponse)
	}
	raw := position("v1-evt", `access='Unclassified' releasableTo='USA PAK'`)
	e, err := ParseEvent([]byte(strings.TrimSpace(raw[strings.Index(raw, "<event"):])))
	if err != nil {
		t.Fatal(err)
	}
	frame := takproto.AppendStream([]byte{0x00, 0x42}, e.ToProto().Marshal()) // garbage first: resync
	tx.write(string(frame))
	got := rx.next()
	if got.UID != "v1-evt" || got.ReleasableTo != "USA PAK" || !strings.Contains(string(got.Detail), "keep &amp; me") {
		t.Fatalf("got %s", got.Raw)
	}
	// And back: an XML event from PAK reaches the v1 client as a frame.
	rx.write(position("pak-1", `access='Unclassified' releasableTo='USA PAK'`))
	fr := takproto.NewReader(tx.br, 0)
	tx.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	p, err := fr.Next()
	if err != nil {
		t.Fatal(err)
	}
	m, err := takproto.Unmarshal(p)
	if err != nil || m.Event == nil || m.Event.UID != "pak-1" || m.Event.ReleaseableTo != "USA PAK" {
		t.Fatalf("v1 frame %+v %v", m, err)
	}
}
