package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"liaison/internal/demo"
)

func init() {
	commands["demo"] = command{summary: "tell the CIS-MOA story on three real nodes over loopback", run: runDemo}
}

func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "demo [--keep] [--dir DIR] [--json]", `
Start real Liaison nodes for USA, PAK and IND on loopback, each with its own
home, and tell the story of the US–Pakistan CIS-MOA with a simulated clock:
signature in 2005, labelled traffic of every precedence, a FLASH overtaking
a backlog, denials and two-person review, a report released to one partner
and denied to another, expiry in 2020 (traffic held, not lost), renewal by
circulation summary in 2023 (held traffic delivered), and partners verifying
each other's audit logs. Exits 0 when every step behaved as told, non-zero
naming the step otherwise.`, stdout)
	keep := fs.Bool("keep", false, "keep the nodes' homes and leave the nodes up (consoles open) until Ctrl-C")
	dir := fs.String("dir", "", "put the nodes' homes here instead of a temporary directory")
	asJSON := fs.Bool("json", false, "print JSON lines instead of narration")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := demo.Run(ctx, demo.Options{Out: stdout, JSON: *asJSON, Keep: *keep, Dir: *dir, Color: isTerminal(stdout)})
	if errors.Is(err, demo.ErrFailed) {
		fmt.Fprintln(stderr, err)
		return errSilent
	}
	return err
}

// isTerminal reports whether w is a terminal (for colours), honouring
// NO_COLOR.
func isTerminal(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
