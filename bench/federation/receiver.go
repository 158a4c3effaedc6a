package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"liaison/bench/internal/rig"
	"liaison/internal/federation/linksim"
	"liaison/internal/message"
)

// receiver is PAK as the bench sees it: in this process, or in a process
// of its own (the default), as every real deployment runs each node with
// its own Go runtime. Either way each message's arrival is timed where
// PAK's subscriber sees it.
type receiver interface {
	// addr is PAK's federation listener.
	addr() string
	// auditSize is how many entries PAK's audit log holds at its settled
	// checkpoint.
	auditSize(ctx context.Context) uint64
	// cpu is the CPU time used by PAK's process when it is not this one.
	cpu() time.Duration
	close()
}

// arrival is one message seen by PAK's subscriber.
type arrival struct {
	id   message.ID
	prec message.Precedence
	size int
	at   time.Time
}

// localPAK is PAK in this process.
type localPAK struct{ p *rig.Party }

func (l localPAK) addr() string                         { return l.p.Node.FederationAddr().String() }
func (l localPAK) auditSize(ctx context.Context) uint64 { return rig.SettledAuditEntries(ctx, l.p) }
func (l localPAK) cpu() time.Duration                   { return 0 }
func (l localPAK) close()                               { l.p.Node.Close() }

func (l localPAK) subscribe(ctx context.Context, arrived func(arrival)) error {
	sub, err := l.p.Node.Subscribe(ctx, rig.Channel, 0)
	if err != nil {
		return err
	}
	go func() {
		for e := range sub {
			arrived(arrival{e.Message.ID, e.Message.Precedence, len(e.Message.Body), time.Now()})
		}
	}()
	return nil
}

// child is this binary run with args as a process of its own. It writes
// one line per event on stdout: "addr A" once it listens, replies to the
// requests written on its stdin, and lines of its own that onLine handles;
// it exits when its stdin closes.
type child struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	address string
	mu      sync.Mutex // one request at a time
	replies chan string
	done    chan error
}

// startChild starts it and waits for its address. onLine gets each line
// that is neither "addr" nor a reply (a kind in replies).
func startChild(ctx context.Context, args []string, replies []string, onLine func(kind, rest string)) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin, replies: make(chan string, 1), done: make(chan error, 1)}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			kind, rest, _ := strings.Cut(sc.Text(), " ")
			switch {
			case kind == "addr":
				addrc <- rest
			case slices.Contains(replies, kind):
				c.replies <- rest
			default:
				onLine(kind, rest)
			}
		}
		c.done <- cmd.Wait()
	}()
	select {
	case c.address = <-addrc:
		return c, nil
	case err := <-c.done:
		return nil, fmt.Errorf("%s: the process ended before it listened: %v", args[0], err)
	case <-time.After(30 * time.Second):
		c.close()
		return nil, fmt.Errorf("%s: the process did not report its address within 30 s", args[0])
	case <-ctx.Done():
		c.close()
		return nil, ctx.Err()
	}
}

func (c *child) addr() string { return c.address }

// ask writes request q and returns the reply; if none comes it says so on
// stderr and returns "".
func (c *child) ask(q string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintln(c.stdin, q); err != nil {
		fmt.Fprintf(os.Stderr, "federation bench: asking %s %q: %v\n", c.cmd.Args[1], q, err)
		return ""
	}
	select {
	case r := <-c.replies:
		return r
	case <-time.After(30 * time.Second):
		fmt.Fprintf(os.Stderr, "federation bench: %s did not answer %q within 30 s\n", c.cmd.Args[1], q)
		return ""
	}
}

func (c *child) close() {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
	}
}

// childPAK is PAK in a process of its own (this binary with -pak-home),
// which also writes "m ID PREC SIZE UNIXNANO" for each arrival and answers
// "audit" and "cpu".
type childPAK struct{ *child }

func startChildPAK(ctx context.Context, home string, arrived func(arrival)) (childPAK, error) {
	args := []string{"-pak-home", home}
	if rig.LeaseBatch > 0 {
		args = append(args, "-lease-batch", strconv.Itoa(rig.LeaseBatch))
	}
	c, err := startChild(ctx, args, []string{"audit", "cpu"}, func(kind, rest string) {
		if kind != "m" {
			fmt.Fprintln(os.Stderr, "federation bench: PAK said:", kind, rest)
			return
		}
		a, err := parseArrival(rest)
		if err != nil {
			fmt.Fprintln(os.Stderr, "federation bench: from PAK:", err)
			return
		}
		arrived(a)
	})
	return childPAK{c}, err
}

func parseArrival(s string) (arrival, error) {
	f := strings.Fields(s)
	if len(f) != 4 {
		return arrival{}, fmt.Errorf("arrival %q: want 4 fields", s)
	}
	id, err := message.ParseID(f[0])
	if err != nil {
		return arrival{}, err
	}
	prec, err1 := strconv.Atoi(f[1])
	size, err2 := strconv.Atoi(f[2])
	ns, err3 := strconv.ParseInt(f[3], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return arrival{}, fmt.Errorf("arrival %q: %w", s, err)
	}
	return arrival{id, message.Precedence(prec), size, time.Unix(0, ns)}, nil
}

func (c childPAK) auditSize(context.Context) uint64 {
	n, _ := strconv.ParseUint(c.ask("audit"), 10, 64)
	return n
}

func (c childPAK) cpu() time.Duration {
	n, _ := strconv.ParseInt(c.ask("cpu"), 10, 64)
	return time.Duration(n)
}

// wire is the proxy between USA and PAK: a linksim.Proxy in this process
// (-one-process) or one in a process of its own.
type wire interface {
	Addr() string
	Bytes() (up, down int64)
	Partition()
	Heal()
	Close() error
}

// childProxy is a linksim proxy in a process of its own (this binary with
// -proxy-to), which answers "partition", "heal" ("ok") and "bytes" ("bytes
// UP DOWN") and whose CPU counts as neither node's.
type childProxy struct{ *child }

func startChildProxy(ctx context.Context, target string) (childProxy, error) {
	c, err := startChild(ctx, []string{"-proxy-to", target}, []string{"ok", "bytes"}, func(kind, rest string) {
		fmt.Fprintln(os.Stderr, "federation bench: the proxy said:", kind, rest)
	})
	return childProxy{c}, err
}

func (c childProxy) Addr() string { return c.addr() }
func (c childProxy) Partition()   { c.ask("partition") }
func (c childProxy) Heal()        { c.ask("heal") }
func (c childProxy) Close() error { c.close(); return nil }

func (c childProxy) Bytes() (up, down int64) {
	fmt.Sscan(c.ask("bytes"), &up, &down)
	return up, down
}

// runChildProxy is the proxy's process: a linksim proxy to target, with no
// impairment, until its stdin closes.
func runChildProxy(target string) error {
	p, err := linksim.New(target, linksim.Config{})
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Println("addr", p.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "partition":
			p.Partition()
			fmt.Println("ok")
		case "heal":
			p.Heal()
			fmt.Println("ok")
		case "bytes":
			up, down := p.Bytes()
			fmt.Println("bytes", up, down)
		}
	}
	return nil
}

// runChildPAK is the child's side: it opens PAK's home, reports its
// address and every arrival on the bench channel, and answers requests
// until its stdin closes.
func runChildPAK(home string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := rig.OpenParty(ctx, home, "PAK", nil)
	if err != nil {
		return err
	}
	defer p.Node.Close()
	sub, err := p.Node.Subscribe(ctx, rig.Channel, 0)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
		mu.Unlock()
	}
	say("addr %s", p.Node.FederationAddr())
	go func() {
		for e := range sub {
			at := time.Now().UnixNano()
			mu.Lock()
			fmt.Fprintf(out, "m %s %d %d %d\n", e.Message.ID, e.Message.Precedence, len(e.Message.Body), at)
			if len(sub) == 0 { // flush when caught up, so a lone FLASH is not held back
				out.Flush()
			}
			mu.Unlock()
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "audit":
			say("audit %d", rig.SettledAuditEntries(ctx, p))
		case "cpu":
			say("cpu %d", rig.CPU())
		}
	}
	return nil
}
