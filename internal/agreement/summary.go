package agreement

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Summary returns a readable multi-line account of d: parties, term,
// scope, channels, labels, approvals, signatures (each verified or not),
// notices, equipment and the status at at.
func (d *Document) Summary(at time.Time) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("%s: %s", d.Key(), d.Title)
	if dg, err := d.Digest(); err == nil {
		w("  digest:     %s", dg)
	}
	if d.Supersedes != "" {
		w("  supersedes: %s", d.Supersedes)
	}
	w("  status at %s: %s", at.UTC().Format(time.RFC3339), d.StatusAt(at))
	w("  term:       %s to %s (expiry exclusive), termination notice %s", formatTime(d.Term.Effective), formatTime(d.Term.Expiry), d.Term.Notice)
	w("  scope:      %s", strings.Join(d.Scope, ", "))
	w("Parties:")
	for _, p := range d.Parties {
		w("  %-6s %s; signing authority: %s; %d key(s); CA %s", p.ID, p.Name, p.SigningAuthority, len(p.Keys), p.CAFingerprint)
	}
	w("Channels:")
	for _, c := range d.Channels {
		prec := "all precedences"
		if len(c.Precedences) > 0 {
			var ps []string
			for _, p := range c.Precedences {
				ps = append(ps, p.String())
			}
			prec = strings.Join(ps, ", ")
		}
		w("  %s (%s): %s; %s", c.Name, c.Scope, strings.Join(c.Members, ", "), prec)
		for _, m := range slices.Sorted(maps.Keys(c.Ceiling)) {
			w("    ceiling %s: %s", m, c.Ceiling[m])
		}
		if c.Content.MaxSize > 0 || len(c.Content.Types) > 0 || c.Content.DirtyWords != "" {
			w("    content: max %d bytes; types %s; dirty words %q", c.Content.MaxSize, strings.Join(c.Content.Types, ", "), c.Content.DirtyWords)
		}
	}
	w("Labels:")
	for _, p := range d.Labels.Policies {
		w("  %s policy %s (%s)", p.Party, p.Name, p.PolicyID)
	}
	for _, e := range d.Labels.Equivalences {
		w("  equivalence %s -> %s", e.From, e.To)
	}
	w("Approvals:")
	for _, p := range d.Parties {
		found := false
		for _, a := range d.Approvals {
			if a.Party == p.ID {
				found = true
				w("  %-6s %s, %s, %s (%s)", a.Party, a.Authority, a.Method, formatTime(a.Date), a.Reference)
			}
		}
		if !found {
			w("  %-6s not yet approved", p.ID)
		}
	}
	w("Signatures:")
	msg, _ := d.SigningBytes()
	for _, p := range d.Parties {
		found := false
		for _, s := range d.Signatures {
			if s.Party != p.ID {
				continue
			}
			found = true
			if err := d.verifySignature(s, msg); err != nil {
				w("  %-6s NOT VERIFIED: %v", p.ID, err)
			} else {
				w("  %-6s verified (key %s)", p.ID, s.Key)
			}
		}
		if !found {
			w("  %-6s not yet signed", p.ID)
		}
	}
	if len(d.Notices) > 0 {
		w("Notices:")
		dg, _ := d.Digest()
		for _, n := range d.Notices {
			ok := "verified"
			if err := d.verifyNotice(n, dg); err != nil {
				ok = "NOT VERIFIED"
			}
			w("  %s by %s dated %s: %s", n.Kind, n.Party, formatTime(n.Date), ok)
		}
	}
	if len(d.Equipment) > 0 {
		w("Equipment:")
		for _, e := range d.Equipment {
			w("  %s %s held by %s; serials %s", e.Type, e.Designation, e.Holder, strings.Join(e.Serials, ", "))
		}
	}
	return b.String()
}
