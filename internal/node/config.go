package node

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"liaison/internal/api"
)

// ConfigFile is the name of the node's configuration inside its home.
const ConfigFile = "liaison.yaml"

// maxConfig bounds the configuration file.
const maxConfig = 1 << 20

// Config is a node's configuration, read from HOME/liaison.yaml. Relative
// paths are relative to the home directory.
type Config struct {
	// Party is the party this node serves, e.g. "USA". Required.
	Party string `yaml:"party"`
	// Node is the node's DNS name, a SAN of its TLS certificate. Default
	// the party in lower case + ".liaison".
	Node       string `yaml:"node"`
	Federation struct {
		// Listen is the address partners' nodes dial. Default
		// 127.0.0.1:7443.
		Listen string `yaml:"listen"`
		// Advertise lists the endpoints put in the node card. Default
		// the listen address.
		Advertise []string `yaml:"advertise"`
	} `yaml:"federation"`
	// Store is "sqlite:PATH" (default sqlite:store.db) or a postgres://
	// URL for a store shared by several instances of this party.
	Store string `yaml:"store"`
	Audit struct {
		// Dir is the audit log's directory. Default "audit".
		Dir string `yaml:"dir"`
	} `yaml:"audit"`
	// KEM is the HPKE KEM of the node's envelope keys.
	KEM string `yaml:"kem"`
	// Policies lists the SPIF files this node loads: its own party's
	// policy and those of the partners its agreements name.
	Policies []string `yaml:"policies"`
	// DirtyWords maps a list name, as channels' content rules refer to it,
	// to its words. A value starting with "@" names a file with one word
	// per line.
	DirtyWords map[string][]string `yaml:"dirty_words"`
	// Peers are the partner nodes this node dials.
	Peers []Peer `yaml:"peers"`
	API   struct {
		// Listen is the HTTPS API and console address. Default
		// 127.0.0.1:8443; "off" serves no API.
		Listen string        `yaml:"listen"`
		Tokens []TokenConfig `yaml:"tokens"`
		// CertRoles maps a client certificate's common name to roles.
		CertRoles map[string][]string `yaml:"cert_roles"`
	} `yaml:"api"`
	// Language is the language of display markings (e.g. "en", "fr").
	Language string `yaml:"language"`
	// Heartbeat is the federation heartbeat interval. Default 5s.
	Heartbeat Duration `yaml:"heartbeat"`
	// KeyRotation is how often the node's HPKE key rotates. Default 24h;
	// "0s" turns scheduled rotation off.
	KeyRotation *Duration `yaml:"key_rotation"`
	// Gateways configures the protocol gateways; absent means off.
	Gateways GatewaysConfig `yaml:"gateways"`

	home string
}

// Peer is a partner node to dial.
type Peer struct {
	Party    string `yaml:"party"`
	Endpoint string `yaml:"endpoint"`
}

// TokenConfig is a bearer token's entry: only its SHA-256 is kept.
type TokenConfig struct {
	Name   string   `yaml:"name"`
	SHA256 string   `yaml:"sha256"`
	Roles  []string `yaml:"roles"`
}

// GatewaysConfig holds the protocol gateways' settings (gwconfig.go);
// an absent section means that gateway is off.
type GatewaysConfig struct {
	CoT  *CoTConfig  `yaml:"cot"`
	XMPP *XMPPConfig `yaml:"xmpp"`
}

// Duration is a time.Duration written as "5s", "10m", "24h".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 5s or 24h", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// LoadConfig reads HOME/liaison.yaml, fills defaults and checks it.
func LoadConfig(home string) (*Config, error) {
	path := filepath.Join(home, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read node config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg.home = home
	return cfg, nil
}

// ParseConfig parses and checks a node configuration.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > maxConfig {
		return nil, fmt.Errorf("config is %d bytes, limit %d", len(data), maxConfig)
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg.defaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) defaults() {
	if c.Node == "" {
		c.Node = strings.ToLower(c.Party) + ".liaison"
	}
	if c.Federation.Listen == "" {
		c.Federation.Listen = "127.0.0.1:7443"
	}
	if len(c.Federation.Advertise) == 0 {
		c.Federation.Advertise = []string{c.Federation.Listen}
	}
	if c.API.Listen == "" {
		c.API.Listen = "127.0.0.1:8443"
	}
	if c.Store == "" {
		c.Store = "sqlite:store.db"
	}
	if c.Audit.Dir == "" {
		c.Audit.Dir = "audit"
	}
	if c.Language == "" {
		c.Language = "en"
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = Duration(5 * time.Second)
	}
	if c.KeyRotation == nil {
		d := Duration(24 * time.Hour)
		c.KeyRotation = &d
	}
}

// check reports every problem at once, each naming its field.
func (c *Config) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Party == "" {
		bad("party: required (e.g. USA)")
	}
	for field, addr := range map[string]string{"federation.listen": c.Federation.Listen, "api.listen": c.API.Listen} {
		if addr == "off" && field == "api.listen" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("%s: %q is not host:port", field, addr)
		}
	}
	if !strings.HasPrefix(c.Store, "sqlite:") && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		bad("store: %q must be sqlite:PATH or a postgres:// URL", c.Store)
	}
	seen := map[string]bool{}
	for i, p := range c.Peers {
		switch {
		case p.Party == "":
			bad("peers[%d].party: required", i)
		case p.Party == c.Party:
			bad("peers[%d].party: %q is this node's own party", i, p.Party)
		case seen[p.Party]:
			bad("peers[%d].party: %q listed twice", i, p.Party)
		}
		seen[p.Party] = true
		if _, _, err := net.SplitHostPort(p.Endpoint); err != nil {
			bad("peers[%d].endpoint: %q is not host:port", i, p.Endpoint)
		}
	}
	for i, t := range c.API.Tokens {
		if t.Name == "" {
			bad("api.tokens[%d].name: required", i)
		}
		if len(t.SHA256) != 64 {
			bad("api.tokens[%d].sha256: must be the 64 hex digits of the token's SHA-256", i)
		}
		for _, r := range t.Roles {
			if _, err := api.ParseRole(r); err != nil {
				bad("api.tokens[%d].roles: %v", i, err)
			}
		}
	}
	for cn, roles := range c.API.CertRoles {
		for _, r := range roles {
			if _, err := api.ParseRole(r); err != nil {
				bad("api.cert_roles[%q]: %v", cn, err)
			}
		}
	}
	if c.Gateways.CoT != nil {
		errs = append(errs, c.Gateways.CoT.check())
	}
	if c.Gateways.XMPP != nil {
		errs = append(errs, c.Gateways.XMPP.check())
	}
	if c.KeyRotation != nil && *c.KeyRotation < 0 {
		bad("key_rotation: must not be negative")
	}
	return errors.Join(errs...)
}

// Path resolves a path from the configuration against the node home.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.home, p)
}

// Home is the node's home directory.
func (c *Config) Home() string { return c.home }

// apiTokens converts the configured tokens for the API.
func (c *Config) apiTokens() []api.Token {
	var ts []api.Token
	for _, t := range c.API.Tokens {
		var roles []api.Role
		for _, r := range t.Roles {
			role, _ := api.ParseRole(r) // checked at load
			roles = append(roles, role)
		}
		ts = append(ts, api.Token{Name: t.Name, SHA256: t.SHA256, Roles: roles})
	}
	return ts
}

func (c *Config) certRoles() map[string][]api.Role {
	out := map[string][]api.Role{}
	for cn, rs := range c.API.CertRoles {
		for _, r := range rs {
			role, _ := api.ParseRole(r)
			out[cn] = append(out[cn], role)
		}
	}
	return out
}

// dirtyWords resolves "@file" entries into their words.
func (c *Config) dirtyWords() (map[string][]string, error) {
	out := map[string][]string{}
	for name, words := range c.DirtyWords {
		for _, w := range words {
			file, ok := strings.CutPrefix(w, "@")
			if !ok {
				out[name] = append(out[name], w)
				continue
			}
			data, err := os.ReadFile(c.Path(file))
			if err != nil {
				return nil, fmt.Errorf("dirty_words[%q]: %w", name, err)
			}
			for _, line := range strings.Split(string(data), "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					out[name] = append(out[name], line)
				}
			}
		}
	}
	return out, nil
}
