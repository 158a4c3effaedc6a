package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"liaison/internal/api"
	"liaison/internal/audit"
	"liaison/internal/node"
	"liaison/internal/pki"
)

func init() {
	commands["audit"] = command{
		summary: "read, verify, export and reconcile the tamper-evident audit log",
		run: func(args []string, stdout, stderr io.Writer) error {
			return subcommands("audit", auditCommands, args, stdout, stderr)
		},
	}
}

var auditCommands = map[string]command{
	"tail":      {summary: "print the last entries of the log", run: auditTail},
	"show":      {summary: "print one entry with its verified inclusion proof", run: auditShow},
	"verify":    {summary: "check every checkpoint and entry of a log directory", run: auditVerify},
	"export":    {summary: "write entries as JSON lines, for a partner to reconcile", run: auditExport},
	"reconcile": {summary: "list crossings one log has and the other lacks", run: auditReconcile},
}

// logFlags are the flags that locate and authenticate a log directory:
// --log, --pub and --origin, or --dir, a node home.
type logFlags struct {
	dir, origin, pub string
	home             string
	json             bool
}

func (f *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "log", "", "audit log `directory` (or give --dir)")
	fs.StringVar(&f.origin, "origin", "", "log origin, e.g. liaison.xaa.example/audit (required unless --pub is a note verifier key)")
	fs.StringVar(&f.pub, "pub", "", "node public `key`: base64, a note verifier key (name+hash+base64), or a file holding either (required with --log)")
	fs.StringVar(&f.home, "dir", "", "node `home` (or $LIAISON_HOME when --log is not given): its audit log, origin and public key")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of text")
}

// fromHome locates the log of the node whose home is f.home: its audit
// directory (audit.dir in liaison.yaml), origin and the public half of its
// signing key.
func (f *logFlags) fromHome() (note.Verifier, error) {
	cfg, err := node.LoadConfig(f.home)
	if err != nil {
		return nil, err
	}
	id, err := pki.Load(f.home)
	if err != nil {
		return nil, err
	}
	f.dir = cfg.Path(cfg.Audit.Dir)
	f.origin = node.AuditOrigin(cfg.Party)
	return audit.NoteVerifier(f.origin, id.SigningKey.Public().(ed25519.PublicKey))
}

// verifier resolves --dir, or --log, --origin and --pub, into a
// checkpoint verifier.
func (f *logFlags) verifier() (note.Verifier, error) {
	if f.home != "" && (f.dir != "" || f.pub != "" || f.origin != "") {
		return nil, fmt.Errorf("%w: give --dir HOME, or --log DIR with --pub, not both", errUsage)
	}
	if f.home == "" && f.dir == "" && f.pub == "" {
		f.home = os.Getenv("LIAISON_HOME")
	}
	if f.home != "" {
		return f.fromHome()
	}
	if f.dir == "" || f.pub == "" {
		return nil, fmt.Errorf("%w: --dir HOME, or --log DIR and --pub KEY, are required", errUsage)
	}
	val := f.pub
	if b, err := os.ReadFile(f.pub); err == nil {
		val = strings.TrimSpace(string(b))
	}
	if strings.Count(val, "+") >= 2 && !isBase64Key(val) {
		v, err := note.NewVerifier(val)
		if err != nil {
			return nil, fmt.Errorf("verifier key %q: %v", val, err)
		}
		if f.origin == "" {
			f.origin = v.Name()
		}
		if v.Name() != f.origin {
			return nil, fmt.Errorf("verifier key names %q, not origin %q", v.Name(), f.origin)
		}
		return v, nil
	}
	if f.origin == "" {
		return nil, fmt.Errorf("%w: --origin is required with a bare public key", errUsage)
	}
	raw, err := base64.StdEncoding.DecodeString(val)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q is not a base64 Ed25519 key", val)
	}
	return audit.NoteVerifier(f.origin, ed25519.PublicKey(raw))
}

func isBase64Key(s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	return err == nil && len(b) == ed25519.PublicKeySize
}

func (f *logFlags) reader() (*audit.Reader, error) {
	v, err := f.verifier()
	if err != nil {
		return nil, err
	}
	return audit.OpenReader(f.dir, f.origin, v)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printRecord(w io.Writer, r audit.Record) {
	e := r.Entry
	idx := strconv.FormatUint(r.Index, 10)
	if r.Pos > 0 { // the second or later entry of a leaf that groups several
		idx += "." + strconv.Itoa(r.Pos)
	}
	fmt.Fprintf(w, "%s\t%s\t%s", idx, e.At.Format("2006-01-02T15:04:05.000Z07:00"), e.Kind)
	for _, kv := range [][2]string{
		{"msg", e.MessageID}, {"digest", e.Digest}, {"party", e.Party}, {"peer", e.Peer},
		{"channel", e.Channel}, {"decision", e.Decision}, {"reason", e.Reason},
		{"actor", e.Actor}, {"agreement", e.Agreement},
	} {
		if kv[1] != "" {
			fmt.Fprintf(w, " %s=%s", kv[0], kv[1])
		}
	}
	for k, v := range e.Detail {
		fmt.Fprintf(w, " %s=%q", k, v)
	}
	fmt.Fprintln(w)
}

func auditTail(args []string, stdout, _ io.Writer) error {
	var lf logFlags
	fs := newFlagSet("audit tail", "audit tail (--dir HOME | --log DIR --pub KEY [--origin O]) [-n N] [--json]",
		"Print the last N entries that the log's signed checkpoint covers.", stdout)
	lf.register(fs)
	n := fs.Uint64("n", 20, "number of entries")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r, err := lf.reader()
	if err != nil {
		return err
	}
	cp, _, err := r.Checkpoint()
	if err != nil {
		return err
	}
	from := cp.Size - min(*n, cp.Size)
	recs, err := r.Entries(context.Background(), from, cp.Size)
	if err != nil {
		return err
	}
	// The last n leaves hold at least n entries (more where they group
	// several); the last n entries are what was asked for.
	recs = recs[len(recs)-int(min(*n, uint64(len(recs)))):]
	if lf.json {
		return audit.WriteRecords(stdout, recs)
	}
	for _, rec := range recs {
		printRecord(stdout, rec)
	}
	return nil
}

func auditShow(args []string, stdout, _ io.Writer) error {
	var lf logFlags
	fs := newFlagSet("audit show", "audit show (--dir HOME | --log DIR --pub KEY [--origin O]) [--json] INDEX",
		"Print the entry at INDEX (all of them, where the leaf groups several) with\nits inclusion proof in the tree of the latest signed checkpoint; the proof is\nverified before it is printed.", stdout)
	lf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: want one INDEX", errUsage)
	}
	index, err := strconv.ParseUint(fs.Arg(0), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: index %q is not a number", errUsage, fs.Arg(0))
	}
	r, err := lf.reader()
	if err != nil {
		return err
	}
	inc, err := r.Show(context.Background(), index)
	if err != nil {
		return err
	}
	if lf.json {
		return printJSON(stdout, inc)
	}
	for i, e := range inc.Entries {
		printRecord(stdout, audit.Record{Index: inc.Index, Pos: i, Entry: e})
	}
	fmt.Fprintf(stdout, "leaf hash: %s\ntree size: %d\nroot:      %s\ninclusion proof (%d hashes, verified):\n",
		hex.EncodeToString(inc.LeafHash), inc.TreeSize, hex.EncodeToString(inc.Root), len(inc.Proof))
	for _, h := range inc.Proof {
		fmt.Fprintf(stdout, "  %s\n", hex.EncodeToString(h))
	}
	fmt.Fprintf(stdout, "checkpoint:\n%s", inc.Checkpoint)
	return nil
}

func auditVerify(args []string, stdout, stderr io.Writer) error {
	var lf logFlags
	fs := newFlagSet("audit verify", "audit verify (--dir HOME | --log DIR --pub KEY [--origin O]) [--json]",
		`Check a log directory (a live node's or a copy) against every checkpoint
its node signed: decode every entry, recompute the Merkle tree, compare each
leaf with the hash tiles and each checkpoint's root with the tree. Finds an
entry edited, dropped, reordered or truncated, and a checkpoint replaced.
Exits 1 if the log does not verify.`, stdout)
	lf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	v, err := lf.verifier()
	if err != nil {
		return err
	}
	rep, err := audit.VerifyWith(context.Background(), lf.dir, lf.origin, v)
	if err != nil && !errors.Is(err, audit.ErrTampered) {
		return err
	}
	if lf.json {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "log %s: %d entries in %d leaves, tree size %d, %d checkpoints and %d cosigned checkpoints checked\n",
			rep.Origin, rep.Records, rep.Entries, rep.TreeSize, rep.Checkpoints, rep.Cosignatures)
		for _, p := range rep.Problems {
			fmt.Fprintf(stdout, "PROBLEM: %s\n", p)
		}
		if rep.OK() {
			fmt.Fprintln(stdout, "OK")
		}
	}
	if !rep.OK() {
		fmt.Fprintf(stderr, "liaison audit verify: %v\n", err)
		return errSilent
	}
	return nil
}

func auditExport(args []string, stdout, _ io.Writer) error {
	var lf logFlags
	fs := newFlagSet("audit export", "audit export (--dir HOME | --log DIR --pub KEY [--origin O]) [--peer P] [--from N] [--to N]",
		"Write the log's entries as JSON lines, one {\"index\":..., \"entry\":{...}} per line.\nWith --peer, only the messages that crossed the link with that party.", stdout)
	lf.register(fs)
	peer := fs.String("peer", "", "only crossings with this `party`")
	from := fs.Uint64("from", 0, "first index")
	to := fs.Uint64("to", 1<<63, "index after the last")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	r, err := lf.reader()
	if err != nil {
		return err
	}
	recs, err := r.Entries(context.Background(), *from, *to)
	if err != nil {
		return err
	}
	if *peer != "" {
		kept := recs[:0]
		for _, rec := range recs {
			if audit.Crossed(rec.Entry, *peer) {
				kept = append(kept, rec)
			}
		}
		recs = kept
	}
	return audit.WriteRecords(stdout, recs)
}

func auditReconcile(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit reconcile", "audit reconcile --peer P [--dir HOME] [--json]\n       liaison audit reconcile --self S --peer P --mine FILE --theirs FILE [--json]",
		`Compare the messages two partners' logs say crossed between them. Lists
crossings one side has and the other lacks, and those whose digest or
decision differ. Exits 1 if the logs disagree.

With --peer alone, asks the running node (its API, as 'liaison status'
does) to fetch the partner's records over the link and compare them with
its own; the link to P must be up. With --mine and --theirs, compares two
files written by 'liaison audit export' on each side.`, stdout)
	var dir, token, addr string
	addClientFlags(&dir, &token, &addr, fs)
	self := fs.String("self", "", "the party this node acts for (with --mine)")
	peer := fs.String("peer", "", "the partner party (required)")
	mine := fs.String("mine", "", "this node's export `file`")
	theirs := fs.String("theirs", "", "the partner's export `file`")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var d audit.Diff
	switch {
	case *peer == "":
		return fmt.Errorf("%w: --peer is required", errUsage)
	case *mine == "" && *theirs == "" && *self == "":
		c, err := newClient(dir, token, addr)
		if err != nil {
			return err
		}
		var ad api.AuditDiff
		if err := c.do(context.Background(), "GET", "/v1/audit/reconcile?peer="+url.QueryEscape(*peer), nil, &ad); err != nil {
			return err
		}
		d = fromAPIDiff(ad)
	case *self == "" || *mine == "" || *theirs == "":
		return fmt.Errorf("%w: to compare files, --self, --peer, --mine and --theirs are required", errUsage)
	default:
		m, err := readRecordFile(*mine)
		if err != nil {
			return err
		}
		t, err := readRecordFile(*theirs)
		if err != nil {
			return err
		}
		d = audit.Reconcile(m, t, *self, *peer)
	}
	if *asJSON {
		if err := printJSON(stdout, d); err != nil {
			return err
		}
	} else {
		printDiff(stdout, d)
	}
	if !d.Empty() {
		fmt.Fprintf(stderr, "liaison audit reconcile: the logs disagree\n")
		return errSilent
	}
	return nil
}

func readRecordFile(p string) ([]audit.Record, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := audit.ReadRecords(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return recs, nil
}

func printDiff(w io.Writer, d audit.Diff) {
	fmt.Fprintf(w, "%d crossings with %s match\n", d.Matched, d.Peer)
	for _, r := range d.OnlyMine {
		fmt.Fprintf(w, "only in mine (%s lacks it): ", d.Peer)
		printRecord(w, r)
	}
	for _, r := range d.OnlyTheirs {
		fmt.Fprintf(w, "only in %s's: ", d.Peer)
		printRecord(w, r)
	}
	for _, mm := range d.Mismatched {
		fmt.Fprint(w, "differs, mine:   ")
		printRecord(w, mm.Mine)
		fmt.Fprintf(w, "differs, %s's: ", d.Peer)
		printRecord(w, mm.Theirs)
	}
}

// fromAPIDiff turns the API's answer back into the audit package's form,
// so both modes print alike.
func fromAPIDiff(ad api.AuditDiff) audit.Diff {
	rec := func(e api.AuditEntry) audit.Record {
		return audit.Record{Index: e.Index, Entry: audit.Entry{Kind: e.Kind, At: e.At, MessageID: e.MessageID, Digest: e.Digest,
			Peer: e.Peer, Channel: e.Channel, Decision: e.Decision, Reason: e.Reason, Actor: e.Actor}}
	}
	d := audit.Diff{Peer: ad.Peer, Matched: ad.Matched}
	for _, e := range ad.OnlyMine {
		d.OnlyMine = append(d.OnlyMine, rec(e))
	}
	for _, e := range ad.OnlyTheirs {
		d.OnlyTheirs = append(d.OnlyTheirs, rec(e))
	}
	for _, m := range ad.Mismatched {
		d.Mismatched = append(d.Mismatched, audit.Mismatch{Mine: rec(m.Mine), Theirs: rec(m.Theirs)})
	}
	return d
}
