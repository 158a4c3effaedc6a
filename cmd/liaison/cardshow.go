package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"liaison/internal/pki"
)

func runCardShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("card show", "card show FILE [--field NAME] [--json]", `
Verify a node card's signatures and print what it says: party, node name,
endpoints, CA fingerprint (what an agreement pins as ca_fingerprint), the
node's signing key (which signs its envelopes and audit checkpoints) and its
HPKE key epoch. --field prints one value alone, for scripts: party, node,
endpoints, ca, signing-key, epoch.`, stdout)
	field := fs.String("field", "", "print only this field")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: one card FILE is required", errUsage)
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	c, err := pki.ParseCard(b)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	v := map[string]string{
		"party":       c.Party,
		"node":        c.Node,
		"endpoints":   strings.Join(c.Endpoints, ","),
		"ca":          c.CAFingerprint(),
		"signing-key": base64.StdEncoding.EncodeToString(ed25519.PublicKey(c.SigningKey)),
		"epoch":       fmt.Sprint(c.Epoch),
	}
	if *field != "" {
		val, ok := v[*field]
		if !ok {
			return fmt.Errorf("%w: unknown field %q (party, node, endpoints, ca, signing-key, epoch)", errUsage, *field)
		}
		fmt.Fprintln(stdout, val)
		return nil
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(v)
	}
	for _, k := range []string{"party", "node", "endpoints", "ca", "signing-key", "epoch"} {
		fmt.Fprintf(stdout, "%-12s %s\n", k+":", v[k])
	}
	return nil
}
