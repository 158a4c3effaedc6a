package main

import (
	"context"
	"fmt"
	"io"
)

func init() {
	commands["keys"] = command{summary: "rotate a running node's HPKE key", run: func(args []string, stdout, stderr io.Writer) error {
		return subcommands("keys", map[string]command{
			"rotate": {summary: "make a new HPKE key epoch now and send the new card to partners", run: runKeysRotate},
		}, args, stdout, stderr)
	}}
}

func runKeysRotate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys rotate", "keys rotate [--dir DIR]", `
Rotate the running node's HPKE key (what partners seal envelopes to): a new
epoch is made current, the new signed card goes to every connected partner
over its link, and epochs older than the last three are zeroised. Keys also
rotate on the key_rotation schedule in liaison.yaml. Needs the operator role.`, stdout)
	var dir, token, addr string
	addClientFlags(&dir, &token, &addr, fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := newClient(dir, token, addr)
	if err != nil {
		return err
	}
	var res struct{ Epoch uint32 }
	if err := c.do(context.Background(), "POST", "/v1/keys/rotate", nil, &res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "HPKE key rotated: epoch %d\n", res.Epoch)
	return nil
}
