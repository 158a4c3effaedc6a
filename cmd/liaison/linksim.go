package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"liaison/internal/federation/linksim"
)

func init() {
	commands["linksim"] = command{summary: "run a TCP proxy that emulates a poor link (tests, demos)", run: runLinksim}
}

func runLinksim(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("linksim", "linksim --target host:port [flags]", `
Forward TCP connections to the target through an emulated poor link: a bit
rate, a one-way delay, connection cuts and stalls (TCP hides packet loss as
delay, so loss is emulated as cuts and stalls). Prints the listening address,
then runs until interrupted.`, stdout)
	target := fs.String("target", "", "address to forward to (required)")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	rate := fs.Int("rate", 0, "bits per second in each direction; 0 is unlimited")
	delay := fs.Duration("delay", 0, "one-way delay")
	cut := fs.Float64("cut", 0, "probability per KiB forwarded that the connection is cut")
	stallEvery := fs.Float64("stall-every", 0, "probability per KiB forwarded of a stall")
	stall := fs.Duration("stall", time.Second, "length of a stall")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *target == "" {
		return fmt.Errorf("%w: --target is required", errUsage)
	}
	px, err := linksim.New(*target, linksim.Config{Listen: *listen, Rate: *rate, Delay: *delay, CutEvery: *cut, StallEvery: *stallEvery, Stall: *stall})
	if err != nil {
		return err
	}
	defer px.Close()
	fmt.Fprintln(stdout, px.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	up, down := px.Bytes()
	fmt.Fprintf(stderr, "linksim: forwarded %d bytes up, %d down, %d cuts\n", up, down, px.Cuts())
	return nil
}
