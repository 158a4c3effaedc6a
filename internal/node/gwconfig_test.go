package node

import (
	"bytes"
	"strings"
	"testing"

	"liaison/internal/gateway/xmpp"
	"liaison/internal/pki"
)

func TestGatewayConfigTemplateParses(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.Init(dir, pki.InitOptions{Party: "XAA", OperatorTokenSHA256: strings.Repeat("ab", 32)}); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gateways.CoT == nil || cfg.Gateways.CoT.Enabled || cfg.Gateways.XMPP == nil || cfg.Gateways.XMPP.Enabled {
		t.Errorf("template gateways = %+v, want both present and off", cfg.Gateways)
	}
}

func TestGatewayConfig(t *testing.T) {
	u, err := xmpp.NewUser("Alice", "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	scram := SCRAMString(u)
	for _, tc := range []struct {
		name, yaml string
		want       string // substring of the error; "" = valid
	}{
		{"off", "cot: {enabled: false}\nxmpp: {enabled: false}", ""},
		{"absent", "{}", ""},
		{"cot ok", "cot: {enabled: true, tls: '127.0.0.1:0', client_ca: ca.pem, channels: {Cyan: ex}, classifications: {U: UNCLASSIFIED}}", ""},
		{"cot no listener", "cot: {enabled: true}", "no tcp, tls or udp listener"},
		{"cot tls without ca", "cot: {enabled: true, tls: '127.0.0.1:0'}", "gateways.cot.client_ca"},
		{"cot bad addr", "cot: {enabled: true, tcp: nowhere}", `gateways.cot.tcp: "nowhere"`},
		{"cot bad precedence", "cot: {enabled: true, tcp: ':0', precedence: URGENTISH}", "gateways.cot.precedence"},
		{"cot empty channel", "cot: {enabled: true, tcp: ':0', channels: {Cyan: ''}}", `channels["Cyan"]`},
		{"cot user without name", "cot: {enabled: true, tcp: ':0', users: {cn1: {groups: [Cyan]}}}", `users["cn1"].name`},
		{"cot cert without key", "cot: {enabled: true, tcp: ':0', tls_cert: a.pem}", "tls_cert and tls_key"},
		{"cot unknown field", "cot: {enabled: true, tcp: ':0', listen: ':1'}", "listen"},
		{"xmpp ok", "xmpp: {enabled: true, domain: x.test, c2s: ':0', users: [{name: a, scram: '" + scram + "', classification: SECRET}], rooms: [{name: ops, channel: ex}]}", ""},
		{"xmpp no domain", "xmpp: {enabled: true}", "gateways.xmpp.domain"},
		{"xmpp password and scram", "xmpp: {enabled: true, domain: x, users: [{name: a, password: p, scram: '" + scram + "', classification: S}]}", "exactly one of password and scram"},
		{"xmpp no clearance", "xmpp: {enabled: true, domain: x, users: [{name: a, password: p}]}", "exactly one of clearance and classification"},
		{"xmpp dup user", "xmpp: {enabled: true, domain: x, users: [{name: a, password: p, classification: S}, {name: A, password: q, classification: S}]}", "listed twice"},
		{"xmpp bad scram", "xmpp: {enabled: true, domain: x, users: [{name: a, scram: 'SCRAM-SHA-1$1:a$b:c', classification: S}]}", "users[0].scram"},
		{"xmpp room without channel", "xmpp: {enabled: true, domain: x, rooms: [{name: ops}]}", "rooms[0]"},
		{"xmpp partner without address", "xmpp: {enabled: true, domain: x, partners: [{domain: y, party: XBB, channel: c}]}", "partners[0].address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ind bytes.Buffer
			for line := range strings.Lines(tc.yaml) {
				ind.WriteString("  " + line)
			}
			_, err := ParseConfig([]byte("party: XAA\ngateways:\n" + ind.String() + "\n"))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestSCRAMRoundTrip(t *testing.T) {
	u, err := xmpp.NewUser("Bob", "secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseSCRAM("Bob", SCRAMString(u))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "bob" || got.Iterations != u.Iterations || !bytes.Equal(got.Salt, u.Salt) ||
		!bytes.Equal(got.StoredKey, u.StoredKey) || !bytes.Equal(got.ServerKey, u.ServerKey) {
		t.Errorf("round trip changed the keys: %+v vs %+v", got, u)
	}
}

func FuzzParseSCRAM(f *testing.F) {
	u, _ := xmpp.NewUser("a", "b", nil)
	f.Add(SCRAMString(u))
	f.Add("SCRAM-SHA-256$4096:$:")
	f.Add("SCRAM-SHA-256$99999999999999999999:a$b:c")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseSCRAM("x", s)
		if err == nil && (len(u.StoredKey) != 32 || len(u.ServerKey) != 32 || u.Iterations < 4096) {
			t.Fatalf("accepted %q with bad keys", s)
		}
	})
}
