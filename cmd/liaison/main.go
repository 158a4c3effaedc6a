// Command liaison runs and manages a Liaison node: the boundary gateway that
// makes a Communication Interoperability and Security agreement real.
//
// The command is thin: each subcommand parses its flags, calls into an
// internal package and turns the error into an exit status. Subcommands live
// in their own files and register themselves in [commands].
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand of liaison.
type command struct {
	summary string
	// run executes the subcommand with the arguments that follow its name.
	// It returns errUsage (possibly wrapped) for bad arguments.
	run func(args []string, stdout, stderr io.Writer) error
}

// commands holds every subcommand by name; each file registers its own in
// an init function so that adding one touches no other file.
var commands = map[string]command{}

// errUsage marks an error caused by how the command was called; main exits
// with status 2 for it.
var errUsage = errors.New("usage")

// errSilent marks a failure whose explanation was already printed.
var errSilent = errors.New("failed")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "liaison: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd.run(args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errSilent):
		return 1
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "liaison %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "liaison %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Liaison: a boundary node for Communication Interoperability and Security agreements.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: liaison <command> [flags] [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-12s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'liaison <command> --help' for a command's flags.")
}

// newFlagSet returns a flag set for a subcommand whose --help prints the
// synopsis, the description and the flags to stdout.
func newFlagSet(name, synopsis, description string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: liaison %s\n\n", synopsis)
		if description != "" {
			fmt.Fprintln(stdout, strings.TrimSpace(description))
			fmt.Fprintln(stdout)
		}
		fmt.Fprintln(stdout, "Flags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs, turning a parse error into errUsage.
// Flags may come before or after positional arguments ("card show FILE
// --field ca"); everything after a literal "--" is positional.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		n := len(args)
		dashdash := false
		for i, a := range args {
			if a == "--" {
				n, dashdash = i, true
				break
			}
		}
		if err := fs.Parse(args[:n]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) > 0 {
			pos = append(pos, rest[0])
			args = append(rest[1:], args[n:]...)
			continue
		}
		if dashdash {
			pos = append(pos, args[n+1:]...)
		}
		break
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// subcommands dispatches to a group of sub-subcommands such as
// "liaison label check".
func subcommands(group string, subs map[string]command, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stdout, "Usage: liaison %s <command> [flags]\n\nCommands:\n", group)
		names := make([]string, 0, len(subs))
		for name := range subs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Fprintf(stdout, "  %-12s %s\n", name, subs[name].summary)
		}
		if len(args) == 0 {
			return fmt.Errorf("%w: missing %s command", errUsage, group)
		}
		return nil
	}
	sub, ok := subs[args[0]]
	if !ok {
		return fmt.Errorf("%w: unknown %s command %q", errUsage, group, args[0])
	}
	return sub.run(args[1:], stdout, stderr)
}
