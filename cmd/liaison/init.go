package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"liaison/internal/pki"
)

func init() {
	commands["init"] = command{summary: "create a node home: keys, node CA, TLS certificate, liaison.yaml", run: runInit}
	commands["card"] = command{summary: "export this node's card or import a partner's", run: func(args []string, stdout, stderr io.Writer) error {
		return subcommands("card", map[string]command{
			"export": {summary: "write this node's signed public card", run: runCardExport},
			"import": {summary: "verify and pin a partner's card", run: runCardImport},
			"show":   {summary: "verify a card and print what it says", run: runCardShow},
		}, args, stdout, stderr)
	}}
}

func runInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("init", "init --party PARTY --dir DIR [--addr HOST:PORT] [--kem KEM]", `
Create a node home in DIR: an Ed25519 node signing key, an HPKE key pair
(epoch 1), a node CA and a TLS certificate it signs, and a commented
liaison.yaml. Private key files are written with mode 0600.`, stdout)
	party := fs.String("party", "", "party this node speaks for, e.g. USA (required)")
	dir := fs.String("dir", "", "node home directory (required)")
	addr := fs.String("addr", pki.DefaultAddr, "federation listen address; its host goes into the TLS certificate")
	api := fs.String("api", pki.DefaultAPIAddr, "API listen address")
	kem := fs.String("kem", pki.KEMMLKEM768X25519, "HPKE KEM: "+pki.KEMMLKEM768X25519+" or "+pki.KEMMLKEM1024P384)
	var policies, peers listFlag
	fs.Var(&policies, "policy", "SPIF policy file to copy into DIR/policies and load (repeatable: this party's and its partners')")
	fs.Var(&peers, "peer", "partner node to dial, PARTY=HOST:PORT (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var peerList []pki.Peer
	for _, p := range peers {
		party, ep, ok := strings.Cut(p, "=")
		if !ok || party == "" || ep == "" {
			return fmt.Errorf("%w: --peer %q: want PARTY=HOST:PORT", errUsage, p)
		}
		peerList = append(peerList, pki.Peer{Party: party, Endpoint: ep})
	}
	var polFiles []string
	var polData [][]byte
	for _, f := range policies {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		polFiles = append(polFiles, filepath.Join("policies", filepath.Base(f)))
		polData = append(polData, b)
	}
	if *party == "" || *dir == "" || fs.NArg() != 0 {
		return fmt.Errorf("%w: --party and --dir are required, no arguments", errUsage)
	}
	token := newToken()
	id, err := pki.Init(*dir, pki.InitOptions{Party: *party, Addr: *addr, APIAddr: *api, KEM: *kem, OperatorTokenSHA256: hashToken(token), Policies: polFiles, Peers: peerList})
	if err != nil {
		return err
	}
	if len(polFiles) > 0 {
		if err := os.MkdirAll(filepath.Join(*dir, "policies"), 0o755); err != nil {
			return err
		}
		for i, f := range polFiles {
			if err := os.WriteFile(filepath.Join(*dir, f), polData[i], 0o644); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(*dir, tokenFile), []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created node %s for party %s in %s\n", pki.NodeName(id.Party), id.Party, *dir)
	fmt.Fprintf(stdout, "  CA fingerprint: %s\n", pki.Fingerprint(id.CACert.Raw))
	fmt.Fprintf(stdout, "  HPKE KEM %#04x, epoch %d\n", id.KEM.ID(), id.Epoch)
	fmt.Fprintf(stdout, "  operator API token in %s (mode 0600)\n", filepath.Join(*dir, tokenFile))
	fmt.Fprintf(stdout, "Next: liaison card export --dir %s --out %s.card, and send the card to partners.\n", *dir, id.Party)
	return nil
}

// nodeEndpoints reads the advertised federation endpoints from liaison.yaml.
func nodeEndpoints(dir string) ([]string, error) {
	path := filepath.Join(dir, pki.ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Federation struct {
			Listen    string   `yaml:"listen"`
			Advertise []string `yaml:"advertise"`
		} `yaml:"federation"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(cfg.Federation.Advertise) > 0 {
		return cfg.Federation.Advertise, nil
	}
	if cfg.Federation.Listen == "" {
		return nil, fmt.Errorf("%s: no federation.listen or federation.advertise", path)
	}
	return []string{cfg.Federation.Listen}, nil
}

func runCardExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("card export", "card export [--dir DIR] [--out FILE]", `
Write this node's public card: party, node name, endpoints (federation.advertise
in liaison.yaml), CA certificate, signing key, HPKE key and epoch, signed by the
node key and the node CA. Without --out the card goes to standard output.`, stdout)
	dir := fs.String("dir", ".", "node home directory")
	out := fs.String("out", "", "file to write the card to (default standard output)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	id, err := pki.Load(*dir)
	if err != nil {
		return err
	}
	eps, err := nodeEndpoints(*dir)
	if err != nil {
		return err
	}
	card, err := id.Card(eps, time.Now())
	if err != nil {
		return err
	}
	b, err := card.Marshal()
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "Wrote card of %s (epoch %d, CA %s) to %s\n", card.Party, card.Epoch, card.CAFingerprint(), *out)
	return nil
}

func runCardImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("card import", "card import [--dir DIR] FILE", `
Verify a partner's card and pin it as DIR/cards/<PARTY>.card. Compare the CA
fingerprint printed with the one in the co-signed agreement.`, stdout)
	dir := fs.String("dir", ".", "node home directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want exactly one card file", errUsage)
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	card, err := pki.ImportCard(*dir, b)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Pinned card of %s (%s)\n", card.Party, card.Node)
	fmt.Fprintf(stdout, "  CA fingerprint: %s\n", card.CAFingerprint())
	fmt.Fprintf(stdout, "  endpoints: %v\n", card.Endpoints)
	fmt.Fprintf(stdout, "  HPKE KEM %#04x, epoch %d, issued %s\n", card.KEMID, card.Epoch, card.IssuedAt().Format(time.RFC3339))
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
