package agreement

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Scopes lists the scopes an agreement or channel may name.
var Scopes = []string{"exercise", "operation", "training", "basing", "equipment"}

// Key algorithms.
const (
	AlgEd25519  = "ed25519"
	AlgMLDSA65  = "ml-dsa-65" // reserved: listed keys are accepted, signatures are not yet
	mldsa65Size = 1952
)

var (
	idRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	partyRE = regexp.MustCompile(`^[A-Z][A-Z0-9]{2,15}$`)
)

// problems collects validation errors, each naming a field and a rule.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
}

// Validate checks the structure of d and returns every problem found,
// joined; each names the field and the rule it breaks. It does not verify
// signatures (see [Document.VerifySignatures]).
func (d *Document) Validate() error {
	var p problems
	if !idRE.MatchString(d.ID) {
		p.add("id", "%q must be 1-128 letters, digits, '.', '_' or '-'", d.ID)
	}
	if d.Version < 1 {
		p.add("version", "%d must be 1 or more", d.Version)
	}
	if strings.TrimSpace(d.Title) == "" {
		p.add("title", "is required")
	}
	if d.Supersedes != "" {
		if _, err := ParseDigest(d.Supersedes); err != nil {
			p.add("supersedes", "%v", err)
		}
		if d.Version < 2 {
			p.add("supersedes", "a renewal must have version 2 or more, not %d", d.Version)
		}
	}
	d.validateParties(&p)
	scopes := map[string]bool{}
	if len(d.Scope) == 0 {
		p.add("scope", "at least one of %s is required", strings.Join(Scopes, ", "))
	}
	for i, s := range d.Scope {
		if !known(Scopes, s) {
			p.add(fmt.Sprintf("scope[%d]", i), "unknown scope %q (want one of %s)", s, strings.Join(Scopes, ", "))
		}
		if scopes[s] {
			p.add(fmt.Sprintf("scope[%d]", i), "scope %q listed twice", s)
		}
		scopes[s] = true
	}
	d.validateChannels(&p, scopes)
	d.validateLabels(&p)
	d.validateTerm(&p)
	for i, e := range d.Equipment {
		f := fmt.Sprintf("equipment[%d]", i)
		if e.Type == "" || e.Designation == "" {
			p.add(f, "type and designation are required")
		}
		if e.Holder != "" && !d.HasParty(e.Holder) {
			p.add(f+".holder", "%q is not a party", e.Holder)
		}
	}
	d.validateRecords(&p)
	return errors.Join(p...)
}

// unset reports whether t is absent. Times are signed as Unix seconds with
// 0 meaning absent, so the epoch itself and earlier are not valid dates.
func unset(t time.Time) bool { return t.Unix() <= 0 }

func known(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (d *Document) validateParties(p *problems) {
	if len(d.Parties) < 2 {
		p.add("parties", "an agreement needs at least two parties, has %d", len(d.Parties))
	}
	seen := map[string]bool{}
	keys := map[string]string{}
	for i, pt := range d.Parties {
		f := fmt.Sprintf("parties[%d]", i)
		if !partyRE.MatchString(pt.ID) {
			p.add(f+".id", "%q must be an ISO 3166 alpha-3 code or a coalition code (3-16 capitals and digits)", pt.ID)
		}
		if seen[pt.ID] {
			p.add(f+".id", "duplicate party %q", pt.ID)
		}
		seen[pt.ID] = true
		if strings.TrimSpace(pt.Name) == "" {
			p.add(f+".name", "is required")
		}
		if strings.TrimSpace(pt.SigningAuthority) == "" {
			p.add(f+".signing_authority", "is required")
		}
		if len(pt.Keys) == 0 {
			p.add(f+".keys", "party %s needs at least one signing key", pt.ID)
		}
		for j, k := range pt.Keys {
			kf := fmt.Sprintf("%s.keys[%d]", f, j)
			if err := checkKey(k); err != nil {
				p.add(kf, "%v", err)
				continue
			}
			if other, ok := keys[k.Public]; ok {
				p.add(kf, "key already listed for party %s", other)
			}
			keys[k.Public] = pt.ID
		}
		if _, err := ParseDigest(pt.CAFingerprint); err != nil {
			p.add(f+".ca_fingerprint", "%v", err)
		}
	}
}

// checkKey checks the algorithm and encoding of a public key.
func checkKey(k Key) error {
	b, err := base64.StdEncoding.Strict().DecodeString(k.Public)
	if err != nil {
		return fmt.Errorf("public key %q is not standard base64", k.Public)
	}
	switch k.Alg {
	case AlgEd25519:
		if len(b) != ed25519.PublicKeySize {
			return fmt.Errorf("ed25519 public key is %d bytes, want %d", len(b), ed25519.PublicKeySize)
		}
	case AlgMLDSA65:
		if len(b) != mldsa65Size {
			return fmt.Errorf("ml-dsa-65 public key is %d bytes, want %d", len(b), mldsa65Size)
		}
	default:
		return fmt.Errorf("unknown key algorithm %q (want %s or %s)", k.Alg, AlgEd25519, AlgMLDSA65)
	}
	return nil
}

func (d *Document) validateChannels(p *problems, scopes map[string]bool) {
	seen := map[string]bool{}
	for i, c := range d.Channels {
		f := fmt.Sprintf("channels[%d]", i)
		if !idRE.MatchString(c.Name) {
			p.add(f+".name", "%q must be 1-128 letters, digits, '.', '_' or '-'", c.Name)
		}
		if seen[c.Name] {
			p.add(f+".name", "duplicate channel %q", c.Name)
		}
		seen[c.Name] = true
		if !scopes[c.Scope] {
			p.add(f+".scope", "%q is not in the agreement's scope", c.Scope)
		}
		if len(c.Members) < 2 {
			p.add(f+".members", "a channel needs at least two members, has %d", len(c.Members))
		}
		members := map[string]bool{}
		for j, m := range c.Members {
			if !d.HasParty(m) {
				p.add(fmt.Sprintf("%s.members[%d]", f, j), "%q is not a party", m)
			}
			if members[m] {
				p.add(fmt.Sprintf("%s.members[%d]", f, j), "%q listed twice", m)
			}
			members[m] = true
		}
		for _, party := range slices.Sorted(maps.Keys(c.Ceiling)) {
			class := c.Ceiling[party]
			if !members[party] {
				p.add(f+".ceiling."+party, "%q is not a member of the channel", party)
			}
			if strings.TrimSpace(class) == "" {
				p.add(f+".ceiling."+party, "classification is empty")
			}
		}
		for _, m := range c.Members {
			if _, ok := c.Ceiling[m]; !ok && d.HasParty(m) {
				p.add(f+".ceiling", "no ceiling for member %s", m)
			}
		}
		if err := checkLabelXML(c.DefaultLabel); err != nil {
			p.add(f+".default_label", "%v", err)
		}
		prec := map[string]bool{}
		for j, pr := range c.Precedences {
			if !pr.Valid() {
				p.add(fmt.Sprintf("%s.precedences[%d]", f, j), "%v is not FLASH, IMMEDIATE, PRIORITY or ROUTINE", pr)
			}
			if prec[pr.String()] {
				p.add(fmt.Sprintf("%s.precedences[%d]", f, j), "%v listed twice", pr)
			}
			prec[pr.String()] = true
		}
		if c.Content.MaxSize < 0 {
			p.add(f+".content.max_size", "%d must not be negative", c.Content.MaxSize)
		}
		for j, t := range c.Content.Types {
			if strings.TrimSpace(t) == "" {
				p.add(fmt.Sprintf("%s.content.types[%d]", f, j), "is empty")
			}
		}
	}
}

// checkLabelXML is a shallow check of a default label: the label package
// parses it properly when the node loads the agreement.
func checkLabelXML(s string) error {
	t := strings.TrimSpace(s)
	if t == "" {
		return errors.New("is required (a STANAG 4774 XML label)")
	}
	if !strings.HasPrefix(t, "<") || !strings.HasSuffix(t, ">") {
		return errors.New("must be a STANAG 4774 XML label")
	}
	if strings.Contains(t, "<!") {
		return errors.New("must not contain a DTD, entity declaration or CDATA section")
	}
	return nil
}

func (d *Document) validateLabels(p *problems) {
	ids := map[string]bool{}
	has := map[string]bool{}
	for i, pol := range d.Labels.Policies {
		f := fmt.Sprintf("labels.policies[%d]", i)
		if !d.HasParty(pol.Party) {
			p.add(f+".party", "%q is not a party", pol.Party)
		}
		has[pol.Party] = true
		if strings.TrimSpace(pol.PolicyID) == "" {
			p.add(f+".policy_id", "is required")
		} else if ids[pol.PolicyID] {
			p.add(f+".policy_id", "duplicate policy %q", pol.PolicyID)
		}
		ids[pol.PolicyID] = true
		if strings.TrimSpace(pol.Name) == "" {
			p.add(f+".name", "is required")
		}
		if pol.Digest != "" {
			if _, err := ParseDigest(pol.Digest); err != nil {
				p.add(f+".digest", "%v", err)
			}
		}
	}
	for _, pt := range d.Parties {
		if !has[pt.ID] {
			p.add("labels.policies", "no security policy for party %s", pt.ID)
		}
	}
	for i, e := range d.Labels.Equivalences {
		f := fmt.Sprintf("labels.equivalences[%d]", i)
		if !ids[e.From] {
			p.add(f+".from", "%q is not a listed policy", e.From)
		}
		if !ids[e.To] {
			p.add(f+".to", "%q is not a listed policy", e.To)
		}
		if e.From == e.To {
			p.add(f, "maps policy %q to itself", e.From)
		}
	}
	for _, party := range slices.Sorted(maps.Keys(d.Labels.Groups)) {
		groups := d.Labels.Groups[party]
		if !d.HasParty(party) {
			p.add("labels.groups."+party, "%q is not a party", party)
		}
		for j, g := range groups {
			if strings.TrimSpace(g) == "" {
				p.add(fmt.Sprintf("labels.groups.%s[%d]", party, j), "is empty")
			}
		}
	}
}

func (d *Document) validateTerm(p *problems) {
	t := d.Term
	if unset(t.Effective) {
		p.add("term.effective", "is required (a date after 1970-01-01)")
	}
	if unset(t.Expiry) {
		p.add("term.expiry", "is required (a date after 1970-01-01)")
	}
	if !unset(t.Effective) && !unset(t.Expiry) && !t.Expiry.After(t.Effective) {
		p.add("term", "expiry %s must be after effective %s", formatTime(t.Expiry), formatTime(t.Effective))
	}
	if t.Notice < 0 {
		p.add("term.notice", "%v must not be negative", t.Notice)
	}
}

func (d *Document) validateRecords(p *problems) {
	seen := map[string]bool{}
	for i, a := range d.Approvals {
		f := fmt.Sprintf("approvals[%d]", i)
		if !d.HasParty(a.Party) {
			p.add(f+".party", "%q is not a party", a.Party)
		}
		if seen[a.Party] {
			p.add(f+".party", "party %s approved twice", a.Party)
		}
		seen[a.Party] = true
		if strings.TrimSpace(a.Authority) == "" {
			p.add(f+".authority", "is required")
		}
		if strings.TrimSpace(a.Method) == "" {
			p.add(f+".method", "is required")
		}
		if unset(a.Date) {
			p.add(f+".date", "is required (a date after 1970-01-01)")
		}
	}
	signed := map[string]bool{}
	for i, s := range d.Signatures {
		f := fmt.Sprintf("signatures[%d]", i)
		if !d.HasParty(s.Party) {
			p.add(f+".party", "%q is not a party", s.Party)
		}
		if signed[s.Party] {
			p.add(f+".party", "party %s signed twice", s.Party)
		}
		signed[s.Party] = true
		if err := checkKey(Key{Alg: s.Alg, Public: s.Key}); err != nil {
			p.add(f+".key", "%v", err)
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(s.Signature); err != nil || s.Signature == "" {
			p.add(f+".signature", "must be standard base64")
		}
	}
	for i, n := range d.Notices {
		f := fmt.Sprintf("notices[%d]", i)
		if n.Kind != NoticeTerminate && n.Kind != NoticeSuspend && n.Kind != NoticeResume {
			p.add(f+".kind", "unknown kind %q (want terminate, suspend or resume)", n.Kind)
		}
		if !d.HasParty(n.Party) {
			p.add(f+".party", "%q is not a party", n.Party)
		}
		if unset(n.Date) {
			p.add(f+".date", "is required (a date after 1970-01-01)")
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(n.Signature); err != nil || n.Signature == "" {
			p.add(f+".signature", "must be standard base64")
		}
	}
}
