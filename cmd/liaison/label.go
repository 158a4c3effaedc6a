package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"liaison/internal/label"
)

func init() {
	commands["label"] = command{
		summary: "check, translate and inspect security labels and policies",
		run: func(args []string, stdout, stderr io.Writer) error {
			return subcommands("label", map[string]command{
				"check":     {summary: "validity, markings and access decision for a label", run: labelCheck},
				"translate": {summary: "map a label to an equivalent policy (STANAG 4774 XML)", run: labelTranslate},
				"policy":    {summary: "summarise a security policy (SPIF)", run: labelPolicy},
			}, args, stdout, stderr)
		},
	}
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func loadPolicies(files []string) (*label.PolicySet, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: at least one --policy is required", errUsage)
	}
	set, _ := label.NewPolicySet()
	for _, f := range files {
		b, err := readBounded(f, label.MaxPolicySize)
		if err != nil {
			return nil, err
		}
		p, err := label.ParsePolicy(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if err := set.Add(p); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	return set, nil
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}

type checkResult struct {
	Policy           string `json:"policy"`
	Valid            bool   `json:"valid"`
	Invalid          string `json:"invalid,omitempty"`
	Marking          string `json:"marking,omitempty"`
	ClearanceMarking string `json:"clearance_marking,omitempty"`
	Grant            *bool  `json:"grant,omitempty"`
	Reason           string `json:"reason,omitempty"`
}

func labelCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("label check", "label check --policy FILE... --label FILE [--clearance FILE] [--lang LANG] [--json]",
		"Checks a label (STANAG 4774 XML, spiffy XML or ESS DER/base64) against its policy: validity with the\nbroken rule, display marking and, with --clearance, the access control decision and its reason.\nExits 1 when the label is invalid or access is denied.", stdout)
	var policies multiFlag
	fs.Var(&policies, "policy", "SPIF `file` (repeatable)")
	labelFile := fs.String("label", "", "label `file`")
	clrFile := fs.String("clearance", "", "clearance `file` (optional)")
	lang := fs.String("lang", "", "marking language, e.g. fr")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *labelFile == "" {
		return fmt.Errorf("%w: --label is required", errUsage)
	}
	set, err := loadPolicies(policies)
	if err != nil {
		return err
	}
	b, err := readBounded(*labelFile, label.MaxLabelSize)
	if err != nil {
		return err
	}
	l, err := label.ParseLabel(b)
	if err != nil {
		return fmt.Errorf("%s: %w", *labelFile, err)
	}
	res := checkResult{Policy: l.PolicyID()}
	if p, err := set.PolicyOf(l); err == nil {
		res.Policy = p.Name() + " (" + p.ID() + ")"
	}
	if err := set.Validate(l); err != nil {
		res.Invalid = err.Error()
		if !errors.Is(err, label.ErrInvalid) {
			return fmt.Errorf("%s: %w", *labelFile, err)
		}
	} else {
		res.Valid = true
	}
	if res.Marking, err = set.Marking(l, *lang); err != nil {
		return err
	}
	failed := !res.Valid
	if *clrFile != "" {
		cb, err := readBounded(*clrFile, label.MaxLabelSize)
		if err != nil {
			return err
		}
		c, err := label.ParseClearance(cb)
		if err != nil {
			return fmt.Errorf("%s: %w", *clrFile, err)
		}
		if m, err := set.ClearanceMarking(c, *lang); err == nil {
			res.ClearanceMarking = m
		}
		d := set.ACDF(l, c)
		res.Grant, res.Reason = &d.Grant, d.Reason
		failed = failed || !d.Grant
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "policy:     %s\n", res.Policy)
		if res.Valid {
			fmt.Fprintln(stdout, "valid:      yes")
		} else {
			fmt.Fprintf(stdout, "valid:      no: %s\n", res.Invalid)
		}
		fmt.Fprintf(stdout, "marking:    %s\n", res.Marking)
		if res.Grant != nil {
			fmt.Fprintf(stdout, "clearance:  %s\n", res.ClearanceMarking)
			verdict := "DENY"
			if *res.Grant {
				verdict = "GRANT"
			}
			fmt.Fprintf(stdout, "decision:   %s (%s)\n", verdict, res.Reason)
		}
	}
	if failed {
		return errSilent
	}
	return nil
}

func labelTranslate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("label translate", "label translate --policy FILE... --label FILE --to POLICY [--direction encrypt|decrypt] [--json]",
		"Maps a label to the equivalent policy POLICY (OID or name) by the policies' equivalences and prints\nthe alternative label as STANAG 4774 XML and its marking. encrypt uses the source policy's\nequivalences (the sender), decrypt the target policy's (the receiver).", stdout)
	var policies multiFlag
	fs.Var(&policies, "policy", "SPIF `file` (repeatable)")
	labelFile := fs.String("label", "", "label `file`")
	to := fs.String("to", "", "target policy OID or name")
	dirFlag := fs.String("direction", "encrypt", "encrypt or decrypt")
	lang := fs.String("lang", "", "marking language, e.g. fr")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *labelFile == "" || *to == "" {
		return fmt.Errorf("%w: --label and --to are required", errUsage)
	}
	dir, err := label.ParseDirection(*dirFlag)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	set, err := loadPolicies(policies)
	if err != nil {
		return err
	}
	b, err := readBounded(*labelFile, label.MaxLabelSize)
	if err != nil {
		return err
	}
	l, err := label.ParseLabel(b)
	if err != nil {
		return fmt.Errorf("%s: %w", *labelFile, err)
	}
	out, err := set.Translate(l, *to, dir)
	if err != nil {
		return err
	}
	if out.Created.IsZero() {
		out.Created = time.Now().UTC().Truncate(time.Second)
	}
	x, err := out.MarshalXML4774(label.Alternative)
	if err != nil {
		return err
	}
	m, err := set.Marking(out, *lang)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]string{"label": string(x), "marking": m})
	}
	fmt.Fprintf(stdout, "%s\nmarking: %s\n", x, m)
	return nil
}

type policySummary struct {
	Name            string             `json:"name"`
	ID              string             `json:"id"`
	SchemaVersion   string             `json:"schema_version,omitempty"`
	Digest          string             `json:"sha256"`
	Classifications []label.ClassInfo  `json:"classifications"`
	TagSets         []label.TagSetInfo `json:"tag_sets"`
	Equivalences    []label.EquivInfo  `json:"equivalent_policies"`
}

func labelPolicy(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("label policy", "label policy --policy FILE [--json]",
		"Prints a summary of a security policy: classifications, tag sets and equivalences.", stdout)
	var policies multiFlag
	fs.Var(&policies, "policy", "SPIF `file`")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set, err := loadPolicies(policies)
	if err != nil {
		return err
	}
	var all []policySummary
	for _, p := range set.Policies() {
		d := p.Digest()
		s := p.Summary()
		all = append(all, policySummary{Name: p.Name(), ID: p.ID(), SchemaVersion: p.SchemaVersion(), Digest: fmt.Sprintf("%x", d),
			Classifications: s.Classifications, TagSets: s.TagSets, Equivalences: s.Equivalences})
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(all) == 1 {
			return enc.Encode(all[0])
		}
		return enc.Encode(all)
	}
	for _, ps := range all {
		fmt.Fprintf(stdout, "policy %s (%s) schema %q sha256 %s\n", ps.Name, ps.ID, ps.SchemaVersion, ps.Digest)
		fmt.Fprintln(stdout, "classifications (lacv, hierarchy):")
		for _, c := range ps.Classifications {
			ob := ""
			if c.Obsolete {
				ob = " obsolete"
			}
			fmt.Fprintf(stdout, "  %-24s %4d %4d%s\n", c.Name, c.LACV, c.Hierarchy, ob)
		}
		fmt.Fprintln(stdout, "tag sets:")
		for _, ts := range ps.TagSets {
			fmt.Fprintf(stdout, "  %s (%s)\n", ts.Name, ts.ID)
			for _, t := range ts.Tags {
				fmt.Fprintf(stdout, "    %s [%s]: %s\n", t.Name, t.Type, strings.Join(t.Values, ", "))
			}
		}
		fmt.Fprintln(stdout, "equivalent policies:")
		if len(ps.Equivalences) == 0 {
			fmt.Fprintln(stdout, "  none")
		}
		for _, e := range ps.Equivalences {
			fmt.Fprintf(stdout, "  %s (%s): %d classification and %d category equivalences\n", e.Name, e.ID, e.Classifications, e.Categories)
		}
	}
	return nil
}
