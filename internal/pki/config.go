package pki

import (
	"fmt"
	"path/filepath"
	"strings"
)

// configYAML returns the commented liaison.yaml that Init writes.
func configYAML(dir string, opts InitOptions) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	r := strings.NewReplacer(
		"{{party}}", opts.Party,
		"{{lparty}}", strings.ToLower(opts.Party),
		"{{node}}", NodeName(opts.Party),
		"{{addr}}", opts.Addr,
		"{{api}}", opts.APIAddr,
		"{{store}}", fmt.Sprintf("sqlite:%s", filepath.Join(abs, "store.db")),
		"{{audit}}", filepath.Join(abs, "audit"),
		"{{kem}}", kemName(opts.KEM),
		"{{token}}", opts.OperatorTokenSHA256,
		"{{policies}}", flowList(opts.Policies),
		"{{peers}}", peersYAML(opts.Peers),
	)
	return r.Replace(configTemplate)
}

func kemName(s string) string {
	if s == "" {
		return KEMMLKEM768X25519
	}
	return s
}

const configTemplate = `# Liaison node configuration, written by 'liaison init'.
# Keys and certificates live beside this file (node.key, hpke-<epoch>.key,
# ca.key, ca.crt, tls.key, tls.crt); private key files must stay mode 0600.

# The party this node speaks for. It must match the party in ca.crt.
party: {{party}}
# The node's DNS name, a SAN of tls.crt; partners dial it as the TLS server name.
node: {{node}}

federation:
  # Where partner nodes connect (mutual TLS 1.3). Bind 0.0.0.0 only behind a boundary firewall.
  listen: {{addr}}
  # Endpoints advertised in the node card; defaults to the listen address.
  advertise: [{{addr}}]

api:
  # HTTPS API, health, metrics and the web console under /console.
  listen: {{api}}
  # Bearer tokens: only each token's SHA-256 is kept here. 'liaison init'
  # wrote the operator token beside this file (operator.token, mode 0600).
  # Roles: operator, sender, reviewer, auditor.
  tokens:
    - name: operator
      sha256: "{{token}}"
      roles: [operator]
  # Client certificates (issued by this node's CA) by common name, e.g.
  #   cert_roles: {"duty-officer": [sender, reviewer]}

# SPIF security policies this node loads: its own party's and its partners'
# (every policy an installed agreement names must be here).
policies: {{policies}}

# Dirty-word lists that channels' content rules name, e.g.
#   dirty_words: {default: [codeword, "@words.txt"]}

# Durable state: "sqlite:<path>" (embedded) or "postgres://..." (scale-out).
store: "{{store}}"

audit:
  # Tamper-evident audit log (Tessera, POSIX driver).
  dir: {{audit}}

# HPKE KEM of the node's envelope keys (mlkem768-x25519 or mlkem1024-p384).
kem: {{kem}}

# Partner nodes. Import a partner's card first ('liaison card import'), then
# list it here, e.g.
#   - party: GBR
#     endpoint: gbr.example:7443
peers:{{peers}}

# Protocol gateways (docs/GATEWAYS.md). Every message they accept goes through
# the node's guard under the agreements; an absent or disabled section is off.
gateways:
  # TAK / Cursor-on-Target: TAK clients over mutual TLS (XML or TAK Protocol v1).
  cot:
    enabled: false
    # tls: 0.0.0.0:8089       # mutual TLS streaming (TAK's default port)
    # tcp: 127.0.0.1:8088     # plain streaming, anonymous_groups only
    # udp: 127.0.0.1:8087     # UDP input, anonymous_groups only
    # tls_cert: tak.crt       # server certificate; default this node's tls.crt
    # tls_key: tak.key
    # client_ca: tak-ca.crt   # CA(s) of the TAK client certificates (required with tls)
    # users:                  # client certificate common name (or "sha256:<hex of DER>")
    #   alpha-1: {name: alpha-1, groups: [Cyan]}
    # channels: {Cyan: exercise}   # TAK group -> agreement channel
    # classifications:        # CoT access value -> classification of this party's policy
    #   Unclassified: UNCLASSIFIED
    #   Confidential: CONFIDENTIAL
    # precedence: ROUTINE
    # An event's label is built from access (classification), caveat (Handling values)
    # and releasableTo (Releasable To values) and validated by the policy; an unmarked
    # or invalid marking gets the channel's default_label from the agreement.
  # XMPP with XEP-0258 security labels; rooms are agreement channels.
  xmpp:
    enabled: false
    # domain: {{lparty}}.example
    # muc_domain: conference.{{lparty}}.example
    # c2s: 0.0.0.0:5222       # STARTTLS (mandatory); c2s_tls: direct TLS; s2s: partner servers
    # tls_cert: xmpp.crt      # certificate for domain; default this node's tls.crt
    # tls_key: xmpp.key
    # users:                  # password (only SCRAM-SHA-256 keys are kept in memory) or
    #                         # scram: "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"
    #   - {name: alice, scram: "...", classification: CONFIDENTIAL, releasable_to: [{{party}}]}
    #   - {name: bob, password: "...", clearance: "<ConfidentialityClearance ...>"}
    # rooms:
    #   - {name: ops, channel: exercise, description: Exercise operations}
    # partners:               # S2S; the partner CA is the one its pinned card names
    #   - {domain: gbr.example, party: GBR, address: gbr.example:5269, channel: xmpp-gbr}
`

// flowList writes strings as a YAML flow sequence, each quoted.
func flowList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = fmt.Sprintf("%q", it)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func peersYAML(peers []Peer) string {
	if len(peers) == 0 {
		return " []"
	}
	var b strings.Builder
	for _, p := range peers {
		fmt.Fprintf(&b, "\n  - party: %s\n    endpoint: %q", p.Party, p.Endpoint)
	}
	return b.String()
}
