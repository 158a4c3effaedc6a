package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"liaison/internal/gateway/xmpp"
	"liaison/internal/node"
)

func init() {
	commands["gateway"] = command{
		summary: "helpers for the TAK and XMPP gateways",
		run: func(args []string, stdout, stderr io.Writer) error {
			return subcommands("gateway", map[string]command{
				"scram": {summary: "derive an XMPP user's SCRAM-SHA-256 keys for liaison.yaml", run: gatewaySCRAM},
			}, args, stdout, stderr)
		},
	}
}

// gatewaySCRAM reads a password from stdin and prints the scram value of
// gateways.xmpp.users, so that liaison.yaml need not hold the password.
func gatewaySCRAM(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway scram", "gateway scram NAME < password-file",
		"Reads the user's password from the first line of standard input and prints\n"+
			"the value for gateways.xmpp.users[].scram (salted SCRAM-SHA-256 keys; the\n"+
			"password itself is not kept).", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want one user name", errUsage)
	}
	line, err := bufio.NewReader(io.LimitReader(os.Stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return fmt.Errorf("%w: no password on standard input", errUsage)
	}
	u, err := xmpp.NewUser(fs.Arg(0), pw, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "- {name: %s, scram: %q, classification: <CLASSIFICATION>}\n", u.Name, node.SCRAMString(u))
	return nil
}
