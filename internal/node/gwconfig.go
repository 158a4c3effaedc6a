package node

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"liaison/internal/gateway/xmpp"
	"liaison/internal/message"
)

// CoTConfig is the gateways.cot section of liaison.yaml: the TAK gateway.
type CoTConfig struct {
	Enabled bool `yaml:"enabled"`
	// TCP, TLS and UDP are listen addresses ("" = off); TAK's are :8088
	// (plain streaming), :8089 (mutual TLS) and :8087 (UDP input).
	TCP string `yaml:"tcp"`
	TLS string `yaml:"tls"`
	UDP string `yaml:"udp"`
	// TLSCert and TLSKey are the server certificate's PEM files; default
	// the node's own TLS certificate.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// ClientCA is a PEM file of the CAs that issue TAK client
	// certificates. Required with tls.
	ClientCA string `yaml:"client_ca"`
	// Users maps a client certificate, by subject common name or
	// "sha256:<hex of the DER certificate>", to a user and TAK groups. A
	// certificate not listed is refused.
	Users map[string]CoTUser `yaml:"users"`
	// AnonymousGroups are the groups of tcp and udp clients.
	AnonymousGroups []string `yaml:"anonymous_groups"`
	// Channels maps a TAK group to an agreement channel.
	Channels map[string]string `yaml:"channels"`
	// Precedence of submitted events ("" = ROUTINE).
	Precedence string `yaml:"precedence"`
	// Classifications maps a CoT access value (case-insensitive) to a
	// classification name of this node's policy.
	Classifications map[string]string `yaml:"classifications"`
	// MaxEvent bounds one event in bytes (default 1 MiB).
	MaxEvent int `yaml:"max_event"`
}

// CoTUser is one TAK client certificate's user.
type CoTUser struct {
	Name   string   `yaml:"name"`
	Groups []string `yaml:"groups"`
}

// XMPPConfig is the gateways.xmpp section of liaison.yaml: the XMPP
// gateway with XEP-0258 security labels.
type XMPPConfig struct {
	Enabled bool `yaml:"enabled"`
	// Domain is this party's XMPP domain; MUCDomain its room service
	// (default "conference." + domain).
	Domain    string `yaml:"domain"`
	MUCDomain string `yaml:"muc_domain"`
	// C2S (STARTTLS, conventionally :5222), C2STLS (direct TLS, :5223)
	// and S2S (:5269) are listen addresses ("" = off).
	C2S    string `yaml:"c2s"`
	C2STLS string `yaml:"c2s_tls"`
	S2S    string `yaml:"s2s"`
	// TLSCert and TLSKey are the PEM files of a certificate for domain;
	// default the node's own TLS certificate.
	TLSCert string     `yaml:"tls_cert"`
	TLSKey  string     `yaml:"tls_key"`
	Users   []XMPPUser `yaml:"users"`
	Rooms   []XMPPRoom `yaml:"rooms"`
	// DirectChannel carries 1:1 chat between local users (default
	// "xmpp-direct"; it needs an agreement channel to carry anything).
	DirectChannel string        `yaml:"direct_channel"`
	Partners      []XMPPPartner `yaml:"partners"`
}

// XMPPUser is an account. Give either password (SCRAM-SHA-256 keys are
// derived at start and only they are kept in memory) or scram, the keys
// as "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" in
// base64 (PostgreSQL's format), so that no password is in the file.
// The clearance is STANAG 4774 clearance XML, or classification (every
// classification up to it) with releasable_to and handling values, under
// this node's policy.
type XMPPUser struct {
	Name           string   `yaml:"name"`
	Password       string   `yaml:"password"`
	SCRAM          string   `yaml:"scram"`
	Clearance      string   `yaml:"clearance"`
	Classification string   `yaml:"classification"`
	ReleasableTo   []string `yaml:"releasable_to"`
	Handling       []string `yaml:"handling"`
}

// XMPPRoom is a XEP-0045 room carrying an agreement channel.
type XMPPRoom struct {
	Name        string `yaml:"name"`
	Channel     string `yaml:"channel"`
	Description string `yaml:"description"`
}

// XMPPPartner is a partner XMPP domain reached over S2S; its TLS
// certificate must chain to the CA of the party's pinned card, whose
// fingerprint the agreement names.
type XMPPPartner struct {
	Domain  string `yaml:"domain"`
	Party   string `yaml:"party"`
	Address string `yaml:"address"`
	Channel string `yaml:"channel"`
}

func checkAddr(errs *[]error, field, addr string) {
	if addr == "" {
		return
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		*errs = append(*errs, fmt.Errorf("%s: %q is not host:port", field, addr))
	}
}

func (c *CoTConfig) check() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	checkAddr(&errs, "gateways.cot.tcp", c.TCP)
	checkAddr(&errs, "gateways.cot.tls", c.TLS)
	checkAddr(&errs, "gateways.cot.udp", c.UDP)
	if c.TCP == "" && c.TLS == "" && c.UDP == "" {
		errs = append(errs, errors.New("gateways.cot: enabled but no tcp, tls or udp listener"))
	}
	if c.TLS != "" && c.ClientCA == "" {
		errs = append(errs, errors.New("gateways.cot.client_ca: required with tls (TAK clients authenticate by certificate)"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("gateways.cot: tls_cert and tls_key go together"))
	}
	if c.Precedence != "" {
		if _, err := message.ParsePrecedence(c.Precedence); err != nil {
			errs = append(errs, fmt.Errorf("gateways.cot.precedence: %w", err))
		}
	}
	for g, ch := range c.Channels {
		if ch == "" {
			errs = append(errs, fmt.Errorf("gateways.cot.channels[%q]: empty channel", g))
		}
	}
	for k, u := range c.Users {
		if u.Name == "" {
			errs = append(errs, fmt.Errorf("gateways.cot.users[%q].name: required", k))
		}
	}
	return errors.Join(errs...)
}

func (c *XMPPConfig) check() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Domain == "" {
		bad("gateways.xmpp.domain: required")
	}
	checkAddr(&errs, "gateways.xmpp.c2s", c.C2S)
	checkAddr(&errs, "gateways.xmpp.c2s_tls", c.C2STLS)
	checkAddr(&errs, "gateways.xmpp.s2s", c.S2S)
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("gateways.xmpp: tls_cert and tls_key go together")
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		switch {
		case u.Name == "":
			bad("gateways.xmpp.users[%d].name: required", i)
		case seen[strings.ToLower(u.Name)]:
			bad("gateways.xmpp.users[%d].name: %q listed twice", i, u.Name)
		}
		seen[strings.ToLower(u.Name)] = true
		if (u.Password == "") == (u.SCRAM == "") {
			bad("gateways.xmpp.users[%d]: give exactly one of password and scram", i)
		}
		if u.SCRAM != "" {
			if _, err := parseSCRAM(u.Name, u.SCRAM); err != nil {
				bad("gateways.xmpp.users[%d].scram: %v", i, err)
			}
		}
		if (u.Clearance == "") == (u.Classification == "") {
			bad("gateways.xmpp.users[%d]: give exactly one of clearance and classification", i)
		}
	}
	for i, r := range c.Rooms {
		if r.Name == "" || r.Channel == "" {
			bad("gateways.xmpp.rooms[%d]: needs a name and a channel", i)
		}
	}
	for i, p := range c.Partners {
		if p.Domain == "" || p.Party == "" || p.Channel == "" {
			bad("gateways.xmpp.partners[%d]: needs a domain, a party and a channel", i)
		}
		checkAddr(&errs, fmt.Sprintf("gateways.xmpp.partners[%d].address", i), p.Address)
		if p.Address == "" {
			bad("gateways.xmpp.partners[%d].address: required", i)
		}
	}
	return errors.Join(errs...)
}

// parseSCRAM reads "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>".
func parseSCRAM(name, s string) (*xmpp.User, error) {
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return nil, fmt.Errorf("%q does not start with SCRAM-SHA-256$", s)
	}
	params, keys, ok := strings.Cut(rest, "$")
	iters, salt, ok1 := strings.Cut(params, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok || !ok1 || !ok2 {
		return nil, errors.New("want SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>")
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < 4096 || n > 1<<20 {
		return nil, fmt.Errorf("iterations %q must be 4096 to 1048576", iters)
	}
	u := &xmpp.User{Name: strings.ToLower(name), Iterations: n}
	for _, f := range []struct {
		dst *[]byte
		s   string
	}{{&u.Salt, salt}, {&u.StoredKey, stored}, {&u.ServerKey, server}} {
		if *f.dst, err = base64.StdEncoding.DecodeString(f.s); err != nil || len(*f.dst) == 0 {
			return nil, fmt.Errorf("%q is not base64", f.s)
		}
	}
	if len(u.StoredKey) != 32 || len(u.ServerKey) != 32 {
		return nil, errors.New("keys must be 32 bytes (SHA-256)")
	}
	return u, nil
}

// SCRAMString formats a user's keys for the scram field.
func SCRAMString(u *xmpp.User) string {
	b := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", u.Iterations, b(u.Salt), b(u.StoredKey), b(u.ServerKey))
}
