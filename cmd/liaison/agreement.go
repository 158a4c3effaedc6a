package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/api"
)

func init() {
	commands["agreement"] = command{
		summary: "author, approve, sign, verify and inspect CIS agreements",
		run: func(args []string, stdout, stderr io.Writer) error {
			return subcommands("agreement", agreementCommands, args, stdout, stderr)
		},
	}
}

var agreementCommands = map[string]command{
	"keygen":    {summary: "create a party's Ed25519 signing key", run: agreementKeygen},
	"new":       {summary: "write an annotated agreement template", run: agreementNew},
	"validate":  {summary: "check an agreement's structure", run: agreementValidate},
	"approve":   {summary: "record a party's domestic approval (in place)", run: agreementApprove},
	"sign":      {summary: "sign an agreement as a party (in place)", run: agreementSign},
	"verify":    {summary: "verify every party's signature and every notice", run: agreementVerify},
	"status":    {summary: "print the lifecycle phase at a time", run: agreementStatus},
	"renew":     {summary: "write the next version, superseding this one", run: agreementRenew},
	"terminate": {summary: "add a signed termination notice (in place)", run: noticeCommand(agreement.NoticeTerminate)},
	"suspend":   {summary: "add a signed suspension notice (in place)", run: noticeCommand(agreement.NoticeSuspend)},
	"resume":    {summary: "add a signed resumption notice (in place)", run: noticeCommand(agreement.NoticeResume)},
	"show":      {summary: "print a readable summary", run: agreementShow},
	"install":   {summary: "install a signed agreement on a running node", run: agreementInstall},
}

// parseFileFlags parses flags that may come before or after the one FILE
// argument ("sign FILE --party P" and "sign --party P FILE" both work).
func parseFileFlags(fs *flag.FlagSet, args []string) (string, error) {
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	rest := fs.Args()
	if file == "" && len(rest) > 0 {
		file, rest = rest[0], rest[1:]
	}
	if file == "" {
		return "", fmt.Errorf("%w: missing agreement FILE", errUsage)
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("%w: unexpected arguments %q", errUsage, rest)
	}
	return file, nil
}

func loadAgreement(path string) (*agreement.Document, error) {
	b, err := readBounded(path, agreement.MaxSize)
	if err != nil {
		return nil, err
	}
	d, err := agreement.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s:\n%w", path, err)
	}
	return d, nil
}

// writeAgreement replaces path atomically with d's YAML.
func writeAgreement(path string, d *agreement.Document, exclusive bool) error {
	b, err := d.Marshal()
	if err != nil {
		return err
	}
	if exclusive {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s already exists; not overwriting", path)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".agreement-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func parseAt(s string) (time.Time, error) {
	if s == "" {
		return time.Now().UTC(), nil
	}
	t, err := agreement.ParseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: --at: %v", errUsage, err)
	}
	return t, nil
}

func loadSigningKey(path string) (ed25519.PrivateKey, error) {
	b, err := readBounded(path, 16<<10)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM \"PRIVATE KEY\" (PKCS#8) file", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, not an Ed25519 key", path, k)
	}
	return ek, nil
}

func agreementKeygen(args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("agreement keygen", "agreement keygen --out FILE",
		"Create an Ed25519 signing key for a party. The private key is written as PKCS#8 PEM\n"+
			"with mode 0600; the public key is printed in base64 for the party's keys in the YAML.", stdout)
	out := fs.String("out", "", "private key `file` to create (required; never overwritten)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: --out FILE is required and no arguments are taken", errUsage)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "alg: ed25519\npublic: %s\n", base64.StdEncoding.EncodeToString(pub))
	return nil
}

func agreementNew(args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("agreement new", "agreement new [--out FILE]", "Write an annotated agreement template to FILE or stdout.", stdout)
	out := fs.String("out", "", "`file` to create (default stdout; never overwritten)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		_, err := io.WriteString(stdout, agreement.Template)
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, agreement.Template); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func agreementValidate(args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("agreement validate", "agreement validate FILE", "Check an agreement's structure; every problem is listed with its field and rule.", stdout)
	file, err := parseFileFlags(fs, args)
	if err != nil {
		return err
	}
	d, err := loadAgreement(file)
	if err != nil {
		return err
	}
	dg, err := d.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: valid structure; digest %s\n", d.Key(), dg)
	return nil
}

func agreementApprove(args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("agreement approve", "agreement approve FILE --party P --authority A --method M --date YYYY-MM-DD [--ref R]",
		"Record a party's domestic approval in FILE (rewritten in place; comments are not kept).\n"+
			"Every party approves before anyone signs: approvals are part of the signed text.", stdout)
	party := fs.String("party", "", "approving party id, e.g. PAK (required)")
	authority := fs.String("authority", "", "approving authority, e.g. \"Federal Cabinet\" (required)")
	method := fs.String("method", "", "how it approved, e.g. \"federal cabinet, by circulation summary\" (required)")
	on := fs.String("date", "", "date of approval, YYYY-MM-DD (required)")
	ref := fs.String("ref", "", "reference of the approval decision")
	file, err := parseFileFlags(fs, args)
	if err != nil {
		return err
	}
	if *party == "" || *authority == "" || *method == "" || *on == "" {
		return fmt.Errorf("%w: --party, --authority, --method and --date are required", errUsage)
	}
	t, err := agreement.ParseTime(*on)
	if err != nil {
		return fmt.Errorf("%w: --date: %v", errUsage, err)
	}
	d, err := loadAgreement(file)
	if err != nil {
		return err
	}
	if err := d.Approve(agreement.Approval{Party: *party, Authority: *authority, Method: *method, Date: t, Reference: *ref}); err != nil {
		return err
	}
	if err := writeAgreement(file, d, false); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: approval by %s recorded; %s\n", d.Key(), *party, d.StatusAt(time.Now()))
	return nil
}

func agreementSign(args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("agreement sign", "agreement sign FILE --party P --key KEYFILE",
		"Sign FILE as a party with one of its listed keys (rewritten in place).", stdout)
	party := fs.String("party", "", "signing party id (required)")
	keyFile := fs.String("key", "", "PKCS#8 PEM private key `file` from 'agreement keygen' (required)")
	file, err := parseFileFlags(fs, args)
	if err != nil {
		return err
	}
	if *party == "" || *keyFile == "" {
		return fmt.Errorf("%w: --party and --key are required", errUsage)
	}
	key, err := loadSigningKey(*keyFile)
	if err != nil {
		return err
	}
	d, err := loadAgreement(file)
	if err != nil {
		return err
	}
	if err := d.Sign(*party, key); err != nil {
		return err
	}
	if err := writeAgreement(file, d, false); err != nil {
		return err
	}
	dg, _ := d.Digest()
	fmt.Fprintf(stdout, "%s: signed by %s over %s; %s\n", d.Key(), *party, dg, d.StatusAt(time.Now()))
	return nil
}

func agreementVerify(args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("agreement verify", "agreement verify FILE", "Verify that every party signed the current text with a listed key, and every notice.", stdout)
	file, err := parseFileFlags(fs, args)
	if err != nil {
		return err
	}
	d, err := loadAgreement(file)
	if err != nil {
		return err
	}
	if err := d.VerifySignatures(); err != nil {
		return fmt.Errorf("%s:\n%w", d.Key(), err)
	}
	dg, _ := d.Digest()
	fmt.Fprintf(stdout, "%s: all %d signatures and %d notices verify; digest %s\n", d.Key(), len(d.Signatures), len(d.Notices), dg)
	return nil
}

func agreementStatus(args []string, stdout, _ io.Writer) error {
	d, t, err := loadAgreementAt("agreement status", "Print the lifecycle phase at a time (default now).", args, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s at %s: %s\n", d.Key(), t.Format(time.RFC3339), d.StatusAt(t))
	return nil
}

func agreementShow(args []string, stdout, _ io.Writer) error {
	d, t, err := loadAgreementAt("agreement show", "Print a readable summary with the status at a time (default now).", args, stdout)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, d.Summary(t))
	return err
}

// loadAgreementAt parses "NAME FILE [--at TIME]" and loads FILE.
func loadAgreementAt(name, description string, args []string, stdout io.Writer) (*agreement.Document, time.Time, error) {
	fs := newFlagSet(name, name+" FILE [--at TIME]", description, stdout)
	at := fs.String("at", "", "time, YYYY-MM-DD or RFC 3339 (default now)")
	file, err := parseFileFlags(fs, args)
	if err != nil {
		return nil, time.Time{}, err
	}
	t, err := parseAt(*at)
	if err != nil {
		return nil, time.Time{}, err
	}
	d, err := loadAgreement(file)
	return d, t, err
}

func agreementRenew(args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("agreement renew", "agreement renew FILE --out NEW [--effective D] [--expiry D]",
		"Write the next version of FILE to NEW: version+1, supersedes = FILE's digest, approvals,\n"+
			"signatures and notices cleared. Edit NEW as agreed, then approve and sign it.", stdout)
	out := fs.String("out", "", "new agreement `file` (required; never overwritten)")
	eff := fs.String("effective", "", "new effective date (default: unchanged)")
	exp := fs.String("expiry", "", "new expiry date (default: unchanged)")
	file, err := parseFileFlags(fs, args)
	if err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	d, err := loadAgreement(file)
	if err != nil {
		return err
	}
	n, err := d.Renew()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		flag, val string
		dst       *time.Time
	}{{"effective", *eff, &n.Term.Effective}, {"expiry", *exp, &n.Term.Expiry}} {
		if f.val == "" {
			continue
		}
		t, err := agreement.ParseTime(f.val)
		if err != nil {
			return fmt.Errorf("%w: --%s: %v", errUsage, f.flag, err)
		}
		*f.dst = t
	}
	if err := n.Validate(); err != nil {
		return fmt.Errorf("%s:\n%w", n.Key(), err)
	}
	if err := writeAgreement(*out, n, true); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s written to %s; supersedes %s\n", n.Key(), *out, n.Supersedes)
	return nil
}

func noticeCommand(kind string) func(args []string, stdout, stderr io.Writer) error {
	return func(args []string, stdout, _ io.Writer) error {
		fs := newFlagSet("agreement "+kind, "agreement "+kind+" FILE --party P --key KEYFILE --date D",
			"Add a signed "+kind+" notice by a party to a fully signed agreement (rewritten in place).\n"+
				"A termination takes effect the agreement's notice period after its date; a suspension\n"+
				"lasts until the same party's resumption.", stdout)
		party := fs.String("party", "", "party giving notice (required)")
		keyFile := fs.String("key", "", "the party's PKCS#8 PEM private key `file` (required)")
		on := fs.String("date", "", "date of the notice, YYYY-MM-DD or RFC 3339 (required)")
		file, err := parseFileFlags(fs, args)
		if err != nil {
			return err
		}
		if *party == "" || *keyFile == "" || *on == "" {
			return fmt.Errorf("%w: --party, --key and --date are required", errUsage)
		}
		t, err := agreement.ParseTime(*on)
		if err != nil {
			return fmt.Errorf("%w: --date: %v", errUsage, err)
		}
		key, err := loadSigningKey(*keyFile)
		if err != nil {
			return err
		}
		d, err := loadAgreement(file)
		if err != nil {
			return err
		}
		if err := d.AddNotice(kind, *party, t, key); err != nil {
			return err
		}
		if err := writeAgreement(file, d, false); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s notice by %s dated %s added\n", d.Key(), kind, *party, *on)
		return nil
	}
}

func agreementInstall(args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("agreement install", "agreement install FILE [--dir DIR] [--token T] [--api HOST:PORT]", `
Install a signed agreement on the running node whose home is DIR (POST
/v1/agreements with the operator token). The node refuses it unless every
party signed, it names the node's party, and the node's loaded policies
have the digests the agreement pins.`, stdout)
	var dir, token, addr string
	addClientFlags(&dir, &token, &addr, fs)
	file, err := parseFileFlags(fs, args)
	if err != nil {
		return err
	}
	b, err := readBounded(file, agreement.MaxSize)
	if err != nil {
		return err
	}
	c, err := newClient(dir, token, addr)
	if err != nil {
		return err
	}
	var a api.Agreement
	if err := c.do(context.Background(), "POST", "/v1/agreements", b, &a); err != nil {
		return fmt.Errorf("install %s: %w", file, err)
	}
	fmt.Fprintf(stdout, "installed %s v%d on the node: %s (%s)\n", a.ID, a.Version, a.Status, a.Digest)
	return nil
}
