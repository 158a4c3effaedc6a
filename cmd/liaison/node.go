package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"liaison/internal/api"
	"liaison/internal/node"
)

func init() {
	commands["up"] = command{summary: "run the node in the foreground", run: runUp}
	commands["send"] = command{summary: "send a labelled message on a channel", run: runSend}
	commands["tail"] = command{summary: "print a channel's messages, and follow new ones", run: runTail}
	commands["status"] = command{summary: "agreements, links, queues and alarms of a running node", run: runStatus}
	commands["quarantine"] = command{summary: "list, release or deny messages held for review", run: func(args []string, stdout, stderr io.Writer) error {
		return subcommands("quarantine", map[string]command{
			"list":    {summary: "messages held for review", run: runQuarantineList},
			"release": {summary: "approve release (two different reviewers release)", run: runReview(true)},
			"deny":    {summary: "deny release (one denial ends the hold)", run: runReview(false)},
		}, args, stdout, stderr)
	}}
}

func defaultHome() string {
	if h := os.Getenv("LIAISON_HOME"); h != "" {
		return h
	}
	return "."
}

func runUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("up", "up [--dir DIR] [--log-level LEVEL] [--log-json]", `
Run the node whose home is DIR: open its store and audit log, listen for
partner links and the HTTPS API (console under /console), dial configured
peers. SIGINT or SIGTERM shuts down gracefully: listeners close first, and
every message acknowledged before is on disk.`, stdout)
	dir := fs.String("dir", defaultHome(), "node home (or $LIAISON_HOME)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	jsonLog := fs.Bool("log-json", false, "log JSON lines instead of text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("%w: --log-level %q: %v", errUsage, *level, err)
	}
	var h slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv})
	if *jsonLog {
		h = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv})
	}
	logger := slog.New(h)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.Open(ctx, *dir, node.Options{Logger: logger})
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return err
	}
	fmt.Fprintf(stdout, "Liaison node %s up: federation %s", n.Party(), n.FederationAddr())
	if a := n.APIAddr(); a != nil {
		fmt.Fprintf(stdout, ", API https://%s/ (console https://%s/console/)", a, a)
	}
	fmt.Fprintln(stdout)
	<-ctx.Done()
	logger.Info("shutting down")
	return n.Close()
}

// client talks to a running node's API with the operator token and the
// node's CA from its home.
type client struct {
	base  string
	token string
	http  *http.Client
}

func addClientFlags(fsDir *string, token *string, addr *string, fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(fsDir, "dir", defaultHome(), "node home (or $LIAISON_HOME): its API address, CA and operator.token")
	fs.StringVar(token, "token", os.Getenv("LIAISON_TOKEN"), "API bearer token (default: $LIAISON_TOKEN, else DIR/operator.token)")
	fs.StringVar(addr, "api", "", "API address host:port (default: api.listen in DIR/liaison.yaml)")
}

func newClient(dir, token, addr string) (*client, error) {
	cfg, err := node.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = cfg.API.Listen
	}
	if token == "" {
		b, err := os.ReadFile(filepath.Join(dir, tokenFile))
		if err != nil {
			return nil, fmt.Errorf("no token: pass --token, set LIAISON_TOKEN, or keep %s: %w", tokenFile, err)
		}
		token = strings.TrimSpace(string(b))
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("node CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s holds no PEM certificate", filepath.Join(dir, "ca.crt"))
	}
	host, _, _ := strings.Cut(addr, ":")
	return &client{
		base:  "https://" + addr,
		token: token,
		http:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName(host, cfg.Node)}}},
	}, nil
}

// serverName picks the name to verify: the address when it is an IP the
// certificate covers, else the node's DNS name.
func serverName(host, nodeName string) string {
	if host == "" || host == "localhost" {
		return nodeName
	}
	return host
}

// startWait is how long a client command waits for a node that is still
// starting (connection refused) before giving up.
const startWait = 15 * time.Second

// send sends req, retrying while the node refuses connections because it
// is still starting: "liaison up … &" followed at once by a command works.
func (c *client) send(req *http.Request, body []byte) (*http.Response, error) {
	deadline := time.Now().Add(startWait)
	for {
		resp, err := c.http.Do(req)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			return resp, err
		}
		select {
		case <-req.Context().Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
		req = req.Clone(req.Context())
		if body != nil {
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
	}
}

func (c *client) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(req, body)
	if err != nil {
		return fmt.Errorf("node API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s (%s)", e.Error.Message, e.Error.Code)
		}
		return fmt.Errorf("node API: %s", resp.Status)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func runSend(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("send", "send --channel C (--label FILE | --marking \"…\") [--precedence P] [--type CT] (TEXT | @FILE | --lines FILE)", `
Send a message on a channel. The label is a STANAG 4774 XML file, or a
display marking chosen from the channel's label catalogue (exactly as the
catalogue prints it, e.g. "CONFIDENTIAL // REL TO USA, PAK"). The answer
is the guard's decision for each partner.

With --lines FILE (- for standard input), each non-empty line of FILE is
one text message with that label and precedence, posted 256 to a request
(POST /v1/messages/batch); it prints how many were accepted, and each
refused line with its reason.`, stdout)
	var dir, token, addr string
	addClientFlags(&dir, &token, &addr, fs)
	channel := fs.String("channel", "", "channel (required)")
	labelFile := fs.String("label", "", "STANAG 4774 label XML file")
	marking := fs.String("marking", "", "display marking from the channel's catalogue")
	prec := fs.String("precedence", "ROUTINE", "FLASH, IMMEDIATE, PRIORITY or ROUTINE")
	ctype := fs.String("type", "text/plain; charset=utf-8", "content type of the body")
	asJSON := fs.Bool("json", false, "print the receipt as JSON (with --lines: each batch's answer)")
	lines := fs.String("lines", "", "send each non-empty line of this file (- for standard input) as a message")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *channel == "" || (fs.NArg() == 1) == (*lines != "") || fs.NArg() > 1 || (*labelFile == "") == (*marking == "") {
		return fmt.Errorf("%w: --channel, one of --label or --marking, and one TEXT or @FILE argument or --lines FILE are required", errUsage)
	}
	if *lines != "" && !strings.HasPrefix(*ctype, "text/") {
		return fmt.Errorf("%w: --lines sends text: --type must be text/…, not %q", errUsage, *ctype)
	}
	var body []byte
	if *lines == "" {
		body = []byte(fs.Arg(0))
		if f, ok := strings.CutPrefix(fs.Arg(0), "@"); ok {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			body = b
		}
	}
	c, err := newClient(dir, token, addr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var lbl string
	if *labelFile != "" {
		b, err := os.ReadFile(*labelFile)
		if err != nil {
			return err
		}
		lbl = string(b)
	} else {
		var cat struct{ Labels []api.LabelChoice }
		if err := c.do(ctx, "GET", "/v1/channels/"+url.PathEscape(*channel)+"/labels", nil, &cat); err != nil {
			return err
		}
		var known []string
		for _, l := range cat.Labels {
			known = append(known, l.Marking)
			if strings.EqualFold(strings.TrimSpace(l.Marking), strings.TrimSpace(*marking)) {
				lbl = l.Label
			}
		}
		if lbl == "" {
			return fmt.Errorf("marking %q is not in channel %s's catalogue; choose one of:\n  %s", *marking, *channel, strings.Join(known, "\n  "))
		}
	}
	if *lines != "" {
		return sendLines(ctx, c, *lines, api.PostMessage{Channel: *channel, Precedence: *prec, Label: lbl, ContentType: *ctype}, *asJSON, stdout, stderr)
	}
	pm := map[string]any{"channel": *channel, "precedence": *prec, "label": lbl, "content_type": *ctype}
	if strings.HasPrefix(*ctype, "text/") {
		pm["body"] = string(body)
	} else {
		pm["body_base64"] = body
	}
	req, _ := json.Marshal(pm)
	var rc api.Receipt
	if err := c.do(ctx, "POST", "/v1/messages", req, &rc); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rc)
	}
	fmt.Fprintf(stdout, "accepted %s (seq %d)\n", rc.ID, rc.Seq)
	for _, r := range rc.Recipients {
		fmt.Fprintf(stdout, "  %-6s %-11s %s\n", r.Party, r.State, r.Reason)
	}
	return nil
}

// sendLines posts each non-empty line of file (- for stdin) as a message
// like tmpl, api.MaxBatch to a request, and reports what was refused.
func sendLines(ctx context.Context, c *client, file string, tmpl api.PostMessage, asJSON bool, stdout, stderr io.Writer) error {
	var r io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var (
		batch    []api.PostMessage
		lineNo   []int // line number of each message in batch
		n, total int
		accepted int
		refused  int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		req, err := json.Marshal(api.PostBatch{Messages: batch})
		if err != nil {
			return err
		}
		var ans api.BatchAnswer
		if err := c.do(ctx, "POST", "/v1/messages/batch", req, &ans); err != nil {
			return fmt.Errorf("lines %d-%d: %w", lineNo[0], lineNo[len(lineNo)-1], err)
		}
		if len(ans.Results) != len(batch) {
			return fmt.Errorf("lines %d-%d: %d results for %d messages", lineNo[0], lineNo[len(lineNo)-1], len(ans.Results), len(batch))
		}
		if asJSON {
			if err := json.NewEncoder(stdout).Encode(ans); err != nil {
				return err
			}
		}
		for i, res := range ans.Results {
			if res.Error != nil {
				fmt.Fprintf(stderr, "line %d refused: %s: %s\n", lineNo[i], res.Error.Code, res.Error.Message)
			}
		}
		accepted += ans.Accepted
		refused += ans.Refused
		total += len(batch)
		if total > len(batch) {
			fmt.Fprintf(stderr, "%d messages sent\n", total)
		}
		batch, lineNo = batch[:0], lineNo[:0]
		return nil
	}
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		pm := tmpl
		pm.Body = &line
		batch = append(batch, pm)
		lineNo = append(lineNo, n)
		if len(batch) == api.MaxBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: line %d: %w", file, n+1, err)
	}
	if err := flush(); err != nil {
		return err
	}
	if !asJSON {
		fmt.Fprintf(stdout, "accepted %d of %d messages, %d refused\n", accepted, total, refused)
	}
	if refused > 0 {
		return fmt.Errorf("%d of %d messages refused", refused, total)
	}
	return nil
}

func runTail(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tail", "tail --channel C [--after SEQ] [--follow] [--json]", `
Print a channel's messages oldest first with their markings; with --follow,
keep printing new ones as they arrive (server-sent events).`, stdout)
	var dir, token, addr string
	addClientFlags(&dir, &token, &addr, fs)
	channel := fs.String("channel", "", "channel (required)")
	after := fs.Uint64("after", 0, "start after this sequence number")
	follow := fs.Bool("follow", false, "keep following new messages")
	count := fs.Int("count", 0, "with --follow, stop after printing this many messages (0: never)")
	asJSON := fs.Bool("json", false, "print JSON lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *channel == "" {
		return fmt.Errorf("%w: --channel is required", errUsage)
	}
	c, err := newClient(dir, token, addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	print := func(e api.Entry) {
		if *asJSON {
			json.NewEncoder(stdout).Encode(e)
			return
		}
		m := e.Message
		body := string(m.Body)
		if !strings.HasPrefix(m.ContentType, "text/") {
			body = fmt.Sprintf("(%s, %d bytes)", m.ContentType, len(m.Body))
		}
		fmt.Fprintf(stdout, "%d  %s  %-9s %s from %s\n    [%s]\n    %s\n", e.Seq, m.Created.UTC().Format(time.RFC3339), m.Precedence, m.ID, m.Origin, e.Marking, body)
	}
	if !*follow {
		for {
			var page struct {
				Messages []api.Entry
				Next     uint64
			}
			if err := c.do(ctx, "GET", fmt.Sprintf("/v1/channels/%s/messages?after=%d&limit=1000", url.PathEscape(*channel), *after), nil, &page); err != nil {
				return err
			}
			for _, e := range page.Messages {
				print(e)
			}
			if len(page.Messages) < 1000 {
				return nil
			}
			*after = page.Next
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/channels/%s/stream?after=%d", c.base, url.PathEscape(*channel), *after), nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.send(req, nil)
	if err != nil {
		return fmt.Errorf("node API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("node API: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 96<<20)
	printed := 0
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var e api.Entry
			if err := json.Unmarshal([]byte(data), &e); err == nil {
				print(e)
				if printed++; *count > 0 && printed >= *count {
					return nil
				}
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

func runStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "status [--dir DIR] [--json]", `
Show a running node's agreements (status now), partner links, queue depth
per partner and precedence, audit log state and alarms.`, stdout)
	var dir, token, addr string
	addClientFlags(&dir, &token, &addr, fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := newClient(dir, token, addr)
	if err != nil {
		return err
	}
	var st api.NodeStatus
	if err := c.do(context.Background(), "GET", "/v1/status", nil, &st); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(stdout, "Node %s at %s\n\nAgreements:\n", st.Party, st.Time.UTC().Format(time.RFC3339))
	for _, a := range st.Agreements {
		fmt.Fprintf(stdout, "  %s v%d  %-16s %s → %s  %s\n", a.ID, a.Version, a.Status, a.Effective.Format("2006-01-02"), a.Expiry.Format("2006-01-02"), a.Reason)
	}
	fmt.Fprintln(stdout, "\nLinks:")
	for _, l := range st.Links {
		q := st.Queues[l.Party]
		fmt.Fprintf(stdout, "  %-6s %-8s queued F/I/P/R %d/%d/%d/%d  %s\n", l.Party, l.State, q["FLASH"], q["IMMEDIATE"], q["PRIORITY"], q["ROUTINE"], l.Reason)
	}
	if st.Audit != nil {
		fmt.Fprintf(stdout, "\nAudit log: %d entries\n", st.Audit.Size)
		for _, p := range st.Audit.Partners {
			fmt.Fprintf(stdout, "  %s: verified their log to %d, they cosigned ours to %d", p.Party, p.TheirSize, p.OurCosignedSize)
			if !p.LastWitnessed.IsZero() {
				fmt.Fprintf(stdout, " (witnessed %s)", p.LastWitnessed.UTC().Format(time.RFC3339))
			}
			fmt.Fprintln(stdout)
		}
		for _, f := range st.Audit.Forks {
			fmt.Fprintf(stdout, "  ! FORK %s\n", f)
		}
	}
	if len(st.Alarms) > 0 {
		fmt.Fprintln(stdout, "\nALARMS:")
		for _, a := range st.Alarms {
			fmt.Fprintf(stdout, "  ! %s\n", a)
		}
	}
	return nil
}

func runQuarantineList(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("quarantine list", "quarantine list [--dir DIR] [--json]", "List messages held for review.", stdout)
	var dir, token, addr string
	addClientFlags(&dir, &token, &addr, fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := newClient(dir, token, addr)
	if err != nil {
		return err
	}
	var q struct{ Held []api.Held }
	if err := c.do(context.Background(), "GET", "/v1/quarantine", nil, &q); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(q.Held)
	}
	if len(q.Held) == 0 {
		fmt.Fprintln(stdout, "nothing held for review")
	}
	for _, h := range q.Held {
		fmt.Fprintf(stdout, "%s → %s on %s: %s; approved by [%s], %d more needed\n", h.ID, h.Recipient, h.Channel, h.Reason, strings.Join(h.Approvals, ", "), h.Needed)
	}
	return nil
}

func runReview(approve bool) func(args []string, stdout, stderr io.Writer) error {
	verb := "deny"
	if approve {
		verb = "release"
	}
	return func(args []string, stdout, stderr io.Writer) error {
		fs := newFlagSet("quarantine "+verb, "quarantine "+verb+" [--dir DIR] [--token T] MESSAGE-ID RECIPIENT", "Review a held message as the token's reviewer.", stdout)
		var dir, token, addr string
		addClientFlags(&dir, &token, &addr, fs)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() != 2 {
			return fmt.Errorf("%w: MESSAGE-ID and RECIPIENT are required", errUsage)
		}
		c, err := newClient(dir, token, addr)
		if err != nil {
			return err
		}
		var res api.ReviewResult
		if err := c.do(context.Background(), "POST", "/v1/quarantine/"+url.PathEscape(fs.Arg(0))+"/"+url.PathEscape(fs.Arg(1))+"/"+verb, nil, &res); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s (approved by %s)\n", fs.Arg(0), res.Outcome, strings.Join(res.Approvals, ", "))
		return nil
	}
}
