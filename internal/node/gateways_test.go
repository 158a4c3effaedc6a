package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"liaison/internal/api"
	"liaison/internal/gateway/cot"
	"liaison/internal/node"
)

// takPeer is one node-tak (or TAK Protocol v1) client from interop/takpeer.
type takPeer struct {
	t     *testing.T
	name  string
	stdin io.WriteCloser
	lines chan map[string]any
}

func takpeerDir(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("../../interop/takpeer")
	_, errNode := exec.LookPath("node")
	_, errMods := os.Stat(filepath.Join(dir, "node_modules", "@tak-ps", "node-tak"))
	if errNode != nil || errMods != nil {
		requirePeer(t, "TAK peer unavailable: need node and `npm ci` in interop/takpeer")
	}
	return dir
}

func startTAK(t *testing.T, dir, mode string, addr net.Addr, ca *gwCA, cn string) *takPeer {
	t.Helper()
	certFile, keyFile := ca.issue(t, cn, false)
	cmd := exec.Command("node", "peer.mjs", mode, addr.String(), certFile, keyFile, ca.caFile)
	cmd.Dir = dir
	cmd.Stderr = io.Discard
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	p := &takPeer{t: t, name: cn, stdin: stdin, lines: make(chan map[string]any, 100)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				p.lines <- m
			}
		}
		close(p.lines)
	}()
	return p
}

// await returns the next line with key, failing after 20 s.
func (p *takPeer) await(key string) map[string]any {
	p.t.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case m, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("%s exited while waiting for %q", p.name, key)
			}
			if e, ok := m["error"]; ok {
				p.t.Fatalf("%s: %v", p.name, e)
			}
			if _, ok := m[key]; ok {
				return m
			}
		case <-timeout.C:
			p.t.Fatalf("%s: timed out waiting for %q", p.name, key)
		}
	}
}

// event returns the next CoT event the client receives.
func (p *takPeer) event() *cot.Event {
	p.t.Helper()
	raw := p.await("cot")["cot"].(string)
	e, err := cot.ParseEvent([]byte(raw))
	if err != nil {
		p.t.Fatalf("%s got an unparsable event: %v: %s", p.name, err, raw)
	}
	return e
}

func (p *takPeer) send(xml string) {
	b, _ := json.Marshal(map[string]string{"send": xml})
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatal(err)
	}
}

func takEvent(uid, marks string) string {
	now := time.Now().UTC()
	return fmt.Sprintf(`<event version="2.0" uid="%s" type="a-f-G-U-C" how="m-g" time="%s" start="%s" stale="%s" %s><point lat="33.7" lon="73.1" hae="500" ce="10" le="9999999"/><detail><contact callsign="%s" endpoint="*:-1:stcp"/><__group name="Cyan" role="Team Member"/><liaison_probe answer="42">kept</liaison_probe></detail></event>`,
		uid, cot.FormatTime(now), cot.FormatTime(now), cot.FormatTime(now.Add(2*time.Minute)), marks, uid)
}

func cotSection(t *testing.T, party string, ca *gwCA) string {
	cert, key := ca.issue(t, strings.ToLower(party)+"-tak-server", true)
	lp := strings.ToLower(party)
	return fmt.Sprintf(`gateways:
  cot:
    enabled: true
    tls: 127.0.0.1:0
    tls_cert: %s
    tls_key: %s
    client_ca: %s
    users:
      %s-xml: {name: %s-xml, groups: [Cyan]}
      %s-v1: {name: %s-v1, groups: [Cyan]}
    channels: {Cyan: %s}
    classifications: {Unclassified: UNCLASSIFIED, Restricted: RESTRICTED, Confidential: CONFIDENTIAL, Secret: SECRET}
`, cert, key, ca.caFile, lp, lp, lp, lp, chanSA)
}

// history returns a channel's messages at n whose body names uid.
func history(t *testing.T, n *node.Node, channel string) []api.Entry {
	t.Helper()
	es, err := n.History(context.Background(), channel, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func withUID(es []api.Entry, uid string) []api.Entry {
	var out []api.Entry
	for _, e := range es {
		if bytes.Contains(e.Message.Body, []byte(`uid="`+uid+`"`)) {
			out = append(out, e)
		}
	}
	return out
}

func TestGatewaysTAKAcrossNodes(t *testing.T) {
	dir := takpeerDir(t)
	p := newGWPair(t, cotSection)
	p.dumpOnFailure(t)
	ctx := context.Background()
	_, usaAddr, _ := p.usa.node.CoTGateway().Addrs()
	_, pakAddr, _ := p.pak.node.CoTGateway().Addrs()

	a := startTAK(t, dir, "tak", usaAddr, p.ca, "usa-xml")
	b := startTAK(t, dir, "tak", pakAddr, p.ca, "pak-xml")
	v := startTAK(t, dir, "v1", pakAddr, p.ca, "pak-v1")
	a.await("pong") // node-tak pings on connect: answered by its own gateway
	b.await("pong")
	v.await("ready")

	a.send(takEvent("usa-only", `access="Confidential" releasableTo="USA"`))
	a.send(takEvent("usa-bad", `access="Confidential" caveat="BOGUS" releasableTo="USA PAK"`))
	a.send(takEvent("usa-unmarked", ``))
	a.send(takEvent("usa-1", `access="Confidential" releasableTo="USA PAK"`))
	for _, c := range []*takPeer{b, v} {
		e := c.event()
		if e.UID != "usa-1" {
			t.Fatalf("%s got %q first; the USA-only, invalid and unmarked events and pings must not cross", c.name, e.UID)
		}
		for _, want := range []string{`callsign="usa-1"`, `<liaison_probe answer="42">kept</liaison_probe>`, `name="Cyan"`} {
			if !strings.Contains(string(e.Detail), want) {
				t.Errorf("%s: detail lacks %s: %s", c.name, want, e.Detail)
			}
		}
		if c == b {
			rel := strings.Fields(e.ReleasableTo)
			slices.Sort(rel)
			if e.Access != "Confidential" || !slices.Equal(rel, []string{"PAK", "USA"}) {
				t.Errorf("PAK client got access %q releasableTo %q, want Confidential and PAK USA", e.Access, e.ReleasableTo)
			}
		}
	}
	// The marking written back is PAK's label for the message.
	es := withUID(history(t, p.pak.node, chanSA), "usa-1")
	if len(es) != 1 {
		t.Fatalf("PAK history holds %d copies of usa-1", len(es))
	}
	if l := p.pak.node.LocalLabel(es[0].Message); l == nil || l.PolicyID() != gwPolicies["PAK"].id {
		t.Errorf("PAK's local label of usa-1 is not under PAK's policy: %+v", l)
	}

	// TAK Protocol v1 at PAK to the XML client at USA. node-cot's to_proto
	// keeps access but drops releasableTo: UNCLASSIFIED, valid and releasable.
	v.send(takEvent("pak-v1", `access="Unclassified"`))
	if e := a.event(); e.UID != "pak-v1" || !strings.Contains(string(e.Detail), "liaison_probe") || e.Access != "Unclassified" {
		t.Fatalf("USA XML client got %q access %q detail %s, want pak-v1", e.UID, e.Access, e.Detail)
	}
	if e := b.event(); e.UID != "pak-v1" {
		t.Fatalf("PAK XML client got %q, want the local v1 event pak-v1", e.UID)
	}

	// The USA-only event stayed home, denied to PAK and audited at USA.
	only := withUID(history(t, p.usa.node, chanSA), "usa-only")
	if len(only) != 1 {
		t.Fatalf("USA history holds %d copies of usa-only", len(only))
	}
	waitUntil(t, 10*time.Second, "USA audits usa-only as denied to PAK", func() bool {
		av, err := p.usa.node.Audit(ctx, only[0].Message.ID.String(), 50)
		if err != nil {
			return false
		}
		return slices.ContainsFunc(av.Entries, func(e api.AuditEntry) bool { return e.Kind == "denied" && e.Peer == "PAK" })
	})
	waitUntil(t, 10*time.Second, "USA audits the gateway's labelling", func() bool {
		av, err := p.usa.node.Audit(ctx, "", 200)
		return err == nil && slices.ContainsFunc(av.Entries, func(e api.AuditEntry) bool { return e.Kind == "cot.label" && e.Channel == chanSA })
	})
	for _, n := range []*gwNode{p.usa, p.pak} {
		for _, e := range history(t, n.node, chanSA) {
			ev, err := cot.ParseEvent(e.Message.Body)
			if err != nil || strings.HasPrefix(ev.Type, "t-x-") {
				t.Errorf("%s history holds control traffic or junk: %v %s", n.party, err, e.Message.Body)
			}
		}
	}
	for _, uid := range []string{"usa-only", "usa-bad", "usa-unmarked"} {
		if n := len(withUID(history(t, p.pak.node, chanSA), uid)); n != 0 {
			t.Errorf("%s reached PAK (%d copies)", uid, n)
		}
	}
	// An invalid marking (Handling has no BOGUS) and no marking at all both
	// get the agreement channel's default label: fail closed.
	for _, uid := range []string{"usa-bad", "usa-unmarked"} {
		es := withUID(history(t, p.usa.node, chanSA), uid)
		if len(es) != 1 || !strings.Contains(string(es[0].Message.Label), "NOFORN") || !strings.Contains(es[0].Marking, "NOFORN") {
			t.Errorf("%s at USA: %d copies, want one with the channel default (NOFORN)", uid, len(es))
		}
	}
}

func slixmppPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import slixmpp").Run() == nil {
			return path
		}
	}
	requirePeer(t, "python3 with slixmpp not found (apt-get install python3-slixmpp)")
	return ""
}

func xmppSection(t *testing.T, party string, ca *gwCA) string {
	domain := strings.ToLower(party) + ".test"
	cert, key := ca.issue(t, domain, true, domain, "conference."+domain)
	return fmt.Sprintf(`gateways:
  xmpp:
    enabled: true
    domain: %s
    c2s: 127.0.0.1:0
    tls_cert: %s
    tls_key: %s
    users:
      - {name: alice, password: alicepw, classification: CONFIDENTIAL, releasable_to: [%s]}
      - {name: bob, password: bobpw, classification: CONFIDENTIAL, releasable_to: [%s]}
    rooms:
      - {name: ops, channel: %s, description: coalition operations}
`, domain, cert, key, party, party, chanChat)
}

func TestGatewaysXMPPAcrossNodes(t *testing.T) {
	py := slixmppPython(t)
	p := newGWPair(t, xmppSection)
	p.dumpOnFailure(t)
	ctx := context.Background()
	port := func(n *gwNode) string {
		_, port, _ := net.SplitHostPort(n.node.XMPPAddr("c2s").String())
		return port
	}
	usaPol := p.usa.node.Policy(gwPolicies["USA"].id)
	label := node.BuildLabel(usaPol, "CONFIDENTIAL", []string{"USA", "PAK"}, time.Now())
	above := node.BuildLabel(usaPol, "SECRET", []string{"USA", "PAK"}, time.Now())

	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, py, "../../interop/xmpppeer/crossnode.py",
		"--domain-a", "usa.test", "--port-a", port(p.usa), "--domain-b", "pak.test", "--port-b", port(p.pak),
		"--ca", p.ca.caFile, "--room", "ops", "--label", string(label), "--above", string(above),
		"--want-class", "CONFIDENTIAL", "--want-policy", "urn:oid:"+gwPolicies["PAK"].id)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := map[string]bool{}
	marking := ""
	for line := range strings.Lines(out.String()) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "PASS "):
			res[strings.TrimPrefix(line, "PASS ")] = true
		case strings.HasPrefix(line, "MARKING "):
			marking = strings.TrimPrefix(line, "MARKING ")
		}
	}
	for _, want := range []string{"login-both-nodes", "muc-join", "crossed-with-label", "display-marking",
		"from-room-of-receiving-node", "above-ceiling-refused", "above-ceiling-not-delivered"} {
		if !res[want] {
			t.Errorf("check %s did not pass (script: %v)\n%s%s", want, err, out.String(), errb.String())
		}
	}
	if t.Failed() {
		return
	}
	// The marking bob saw is PAK's marking of the message, as PAK's
	// history shows it; the refused message never entered either node.
	var found bool
	for _, e := range history(t, p.pak.node, chanChat) {
		switch string(e.Message.Body) {
		case "position report across the boundary":
			found = true
			if e.Marking != marking {
				t.Errorf("bob saw marking %q, PAK's history marks the message %q", marking, e.Marking)
			}
		case "above the ceiling":
			t.Errorf("the message above the ceiling reached PAK")
		}
	}
	if !found {
		t.Errorf("PAK's history lacks the crossed message")
	}
	for _, e := range history(t, p.usa.node, chanChat) {
		if string(e.Message.Body) == "above the ceiling" {
			t.Errorf("the message above the ceiling was accepted at USA")
		}
	}
	waitUntil(t, 10*time.Second, "USA audits the bounce", func() bool {
		av, err := p.usa.node.Audit(ctx, "", 200)
		return err == nil && slices.ContainsFunc(av.Entries, func(e api.AuditEntry) bool { return e.Kind == "xmpp.bounced" })
	})
}

// takClient is a minimal TAK streaming client over mutual TLS in Go, so
// that the node's CoT wiring is tested even where node-tak is absent.
type takClient struct {
	t    *testing.T
	conn *tls.Conn
	sp   *cot.Splitter
}

func dialTAK(t *testing.T, addr net.Addr, ca *gwCA, cn string) *takClient {
	t.Helper()
	certFile, keyFile := ca.issue(t, cn, false)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	c, err := tls.Dial("tcp", addr.String(), &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &takClient{t: t, conn: c, sp: cot.NewSplitter(bufio.NewReader(c), cot.DefaultMaxEvent)}
}

// next returns the next event that is not control traffic.
func (c *takClient) next() *cot.Event {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		raw, err := c.sp.Next()
		if err != nil {
			c.t.Fatalf("reading events: %v", err)
		}
		e, err := cot.ParseEvent(raw)
		if err != nil {
			c.t.Fatalf("unparsable event: %v: %s", err, raw)
		}
		if !strings.HasPrefix(e.Type, "t-x-") {
			return e
		}
	}
}

func TestGatewaysCoTWiring(t *testing.T) {
	p := newGWPair(t, cotSection)
	p.dumpOnFailure(t)
	_, usaAddr, _ := p.usa.node.CoTGateway().Addrs()
	_, pakAddr, _ := p.pak.node.CoTGateway().Addrs()
	a := dialTAK(t, usaAddr, p.ca, "usa-xml")
	b := dialTAK(t, pakAddr, p.ca, "pak-xml")
	// A ping is answered at home; the USA-only event stays home.
	now := time.Now().UTC()
	ping := fmt.Sprintf(`<event version="2.0" uid="ping-1" type="t-x-c-t" how="h-g-i-g-o" time="%s" start="%s" stale="%s"><point lat="0" lon="0" hae="0" ce="9999999" le="9999999"/><detail/></event>`,
		cot.FormatTime(now), cot.FormatTime(now), cot.FormatTime(now.Add(time.Minute)))
	for _, ev := range []string{ping, takEvent("usa-only", `access="Confidential" releasableTo="USA"`), takEvent("usa-1", `access="Confidential" caveat="" releasableTo="USA PAK"`)} {
		if _, err := a.conn.Write([]byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	e := b.next()
	rel := strings.Fields(e.ReleasableTo)
	slices.Sort(rel)
	if e.UID != "usa-1" || e.Access != "Confidential" || !slices.Equal(rel, []string{"PAK", "USA"}) || !strings.Contains(string(e.Detail), `<liaison_probe answer="42">kept</liaison_probe>`) {
		t.Fatalf("PAK got %q access %q releasableTo %q detail %s; want usa-1 marked Confidential, PAK USA", e.UID, e.Access, e.ReleasableTo, e.Detail)
	}
	if n := len(withUID(history(t, p.pak.node, chanSA), "ping-1")) + len(withUID(history(t, p.usa.node, chanSA), "ping-1")); n != 0 {
		t.Errorf("the ping was submitted (%d copies)", n)
	}
}
