// Package guard decides, at the boundary, whether one message may be
// released to one partner party.
//
// The whole guard is one pure function, [Decide]: (message, agreements,
// policies, recipient, time) → release, deny or quarantine, with a stable
// code and a reason. It does no I/O and keeps no state, so the same
// function runs at the sending node (per recipient) and again at the
// receiving node (with itself as the recipient), and it can be tested
// exhaustively. A caller that decides often passes a [Cache] in the
// rules, which remembers parsed and translated labels and compiled
// dirty-word lists between decisions; it never changes a decision.
//
// The guard fails closed: anything it cannot establish — no agreement in
// force, a channel outside the agreement, an unparsable or invalid label, a
// policy the agreement does not name, a category without an accepted
// equivalence — is a denial that says why. Content that might be sensitive
// (a dirty word) is quarantined for human review rather than denied, so that
// nothing is silently dropped.
package guard

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"liaison/internal/agreement"
	"liaison/internal/label"
	"liaison/internal/message"
)

// Verdict is what the guard decided.
type Verdict uint8

const (
	// Deny means the message must not be released to the recipient.
	Deny Verdict = iota
	// Release means the message may go to the recipient.
	Release
	// Quarantine means the message waits for two reviewers.
	Quarantine
)

func (v Verdict) String() string {
	switch v {
	case Release:
		return "release"
	case Quarantine:
		return "quarantine"
	default:
		return "deny"
	}
}

// Codes are stable: partners' software branches on them. Never renumber or
// rename one; add new codes instead.
const (
	CodeReleased        = "released"
	CodeMalformed       = "malformed-message"
	CodeNoAgreement     = "no-agreement"
	CodePrecedence      = "precedence-not-allowed"
	CodeNoLabel         = "no-label"
	CodeLabelUnparsable = "label-unparsable"
	CodePolicyMismatch  = "policy-not-agreed"
	CodeLabelInvalid    = "label-invalid"
	CodeAboveCeiling    = "above-ceiling"
	CodeNotReleasable   = "not-releasable"
	CodeUnmapped        = "no-equivalence"
	CodeTooLarge        = "too-large"
	CodeContentType     = "content-type-not-allowed"
	CodeSchema          = "schema-invalid"
	CodeDirtyWord       = "dirty-word"
)

// Decision is the guard's answer for one message and one recipient.
type Decision struct {
	Verdict Verdict
	Code    string
	Reason  string
	// Agreement is "id v<version>" of the agreement that governed, if one did.
	Agreement string
	// Alternative is the label translated into the recipient's policy, as
	// STANAG 4774 alternativeConfidentialityLabel XML, when the recipient
	// uses another policy than the originator and the message is released
	// or quarantined. It may be shared with other decisions: do not
	// modify it.
	Alternative []byte
}

func deny(code, format string, args ...any) Decision {
	return Decision{Verdict: Deny, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Rules are what the guard decides against. They are read, never changed.
type Rules struct {
	Agreements *agreement.Set
	Policies   *label.PolicySet
	// DirtyWords maps a list name (as a channel's content rules refer to
	// it) to its words. A channel naming a list that is absent here is
	// denied: the agreement asked for a check that cannot be made.
	DirtyWords map[string][]string
	// Cache, if not nil, remembers work between decisions; see [Cache].
	Cache *Cache
}

// Decide decides whether m may be released to recipient at time at.
func Decide(m *message.Message, recipient string, at time.Time, r Rules) Decision {
	if m == nil {
		return deny(CodeMalformed, "no message")
	}
	if err := m.Validate(); err != nil {
		return deny(CodeMalformed, "%v", err)
	}
	if r.Agreements == nil || r.Policies == nil {
		return deny(CodeNoAgreement, "no agreements or policies are loaded")
	}
	doc, ch, ok := r.Agreements.Governs(m.Origin, recipient, m.Channel, at)
	if !ok {
		return deny(CodeNoAgreement, "%s", r.Agreements.May(m.Origin, recipient, m.Channel, at).Reason)
	}
	d := decide(m, recipient, doc, ch, r)
	d.Agreement = doc.ID + " v" + strconv.Itoa(doc.Version)
	return d
}

func decide(m *message.Message, recipient string, doc *agreement.Document, ch *agreement.Channel, r Rules) Decision {
	if !precedenceAllowed(ch, m.Precedence) {
		return deny(CodePrecedence, "channel %q does not carry %s traffic", ch.Name, m.Precedence)
	}

	// Label: parse, check it is under the originator's agreed policy,
	// validate, and hold it to the originator's ceiling.
	if len(m.Label) == 0 {
		return deny(CodeNoLabel, "message has no label")
	}
	lbl, err := r.Cache.parseLabel(m.Label)
	if err != nil {
		return deny(CodeLabelUnparsable, "label: %v", err)
	}
	originPolicy, ok := partyPolicy(doc, m.Origin)
	if !ok {
		return deny(CodePolicyMismatch, "agreement names no security policy for %s", m.Origin)
	}
	pol := r.Policies.Policy(lbl.PolicyID())
	if pol == nil {
		return deny(CodeLabelInvalid, "label policy %q is not loaded", lbl.PolicyID())
	}
	if pol.ID() != originPolicy {
		return deny(CodePolicyMismatch, "label is under policy %s (%s) but the agreement gives %s policy %s", pol.Name(), pol.ID(), m.Origin, originPolicy)
	}
	if err := r.Policies.Validate(lbl); err != nil {
		return deny(CodeLabelInvalid, "label is not valid under %s: %v", pol.Name(), err)
	}
	gen := r.Policies.Generation() // before anything is derived from the set
	own := labelRef{r.Cache, r.Cache.derivedFrom(m.Label), r.Policies, gen, lbl, m.Label, ""}
	if d, ok := ceiling(own, ch, m.Origin); !ok {
		return d
	}
	groups := doc.Labels.Groups[recipient]
	if dec := own.releasableTo(recipient, groups); !dec.Grant {
		return deny(CodeNotReleasable, "not releasable to %s under %s: %s", recipient, pol.Name(), dec.Reason)
	}

	// Translate into the recipient's policy when it differs, by an
	// equivalence the agreement accepts, and check the result there too.
	var alt []byte
	recipientPolicy, ok := partyPolicy(doc, recipient)
	if !ok {
		return deny(CodePolicyMismatch, "agreement names no security policy for %s", recipient)
	}
	if recipientPolicy != originPolicy {
		if !equivalenceAccepted(doc, originPolicy, recipientPolicy) {
			return deny(CodeUnmapped, "the agreement accepts no equivalence from %s to %s", originPolicy, recipientPolicy)
		}
		t := own.translate(recipientPolicy)
		if t.err != nil {
			return deny(CodeUnmapped, "cannot translate the label into %s policy %s: %v", recipient, recipientPolicy, t.err)
		}
		tr := t.tr
		if err := r.Policies.Validate(tr); err != nil {
			return deny(CodeUnmapped, "translated label is not valid under %s: %v", recipientPolicy, err)
		}
		alien := own
		alien.l, alien.to = tr, recipientPolicy
		if d, ok := ceiling(alien, ch, recipient); !ok {
			return d
		}
		if dec := alien.releasableTo(recipient, groups); !dec.Grant {
			return deny(CodeNotReleasable, "not releasable to %s under its own policy: %s", recipient, dec.Reason)
		}
		if t.altErr != nil {
			return deny(CodeUnmapped, "cannot encode the translated label: %v", t.altErr)
		}
		alt = t.alt
	}

	// Content rules of the channel.
	rules := ch.Content
	if rules.MaxSize > 0 && int64(len(m.Body)) > rules.MaxSize {
		return deny(CodeTooLarge, "body is %d bytes; channel %q allows %d", len(m.Body), ch.Name, rules.MaxSize)
	}
	if len(rules.Types) > 0 && !slices.Contains(rules.Types, baseType(m.ContentType)) {
		return deny(CodeContentType, "content type %q is not allowed on channel %q (allowed: %s)", m.ContentType, ch.Name, strings.Join(rules.Types, ", "))
	}
	if err := checkSchema(m.ContentType, m.Body); err != nil {
		return deny(CodeSchema, "%s body: %v", baseType(m.ContentType), err)
	}
	if rules.DirtyWords != "" {
		words, ok := r.DirtyWords[rules.DirtyWords]
		if !ok {
			return deny(CodeDirtyWord, "channel %q requires dirty-word list %q, which this node does not hold", ch.Name, rules.DirtyWords)
		}
		if w, found := r.Cache.wordList(words).find(m.Body); found {
			return Decision{Verdict: Quarantine, Code: CodeDirtyWord, Alternative: alt,
				Reason: fmt.Sprintf("body contains %q from list %q: held for two reviewers", w, rules.DirtyWords)}
		}
	}
	return Decision{Verdict: Release, Code: CodeReleased, Reason: "released to " + recipient, Alternative: alt}
}

func precedenceAllowed(ch *agreement.Channel, p message.Precedence) bool {
	if len(ch.Precedences) == 0 {
		return true
	}
	return slices.Contains(ch.Precedences, p)
}

// ceiling holds a label to the channel's ceiling for party. A channel
// without a ceiling for a party carries nothing of that party's: the
// agreement did not accredit it.
func ceiling(l labelRef, ch *agreement.Channel, party string) (Decision, bool) {
	max, ok := ch.Ceiling[party]
	if !ok || max == "" {
		return deny(CodeAboveCeiling, "channel %q sets no classification ceiling for %s", ch.Name, party), false
	}
	cmp, err := l.compare(max)
	if err != nil {
		return deny(CodeAboveCeiling, "cannot compare the label with the ceiling %q: %v", max, err), false
	}
	if cmp > 0 {
		return deny(CodeAboveCeiling, "%s is above channel %q's ceiling %s for %s", l.l.Classification(), ch.Name, max, party), false
	}
	return Decision{}, true
}

func partyPolicy(doc *agreement.Document, party string) (string, bool) {
	for _, p := range doc.Labels.Policies {
		if p.Party == party {
			return p.PolicyID, true
		}
	}
	return "", false
}

func equivalenceAccepted(doc *agreement.Document, from, to string) bool {
	for _, e := range doc.Labels.Equivalences {
		if e.From == from && e.To == to {
			return true
		}
	}
	return false
}

func baseType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// checkSchema checks structured bodies: JSON must be one well-formed value,
// XML one well-formed element with no DTD.
func checkSchema(contentType string, body []byte) error {
	ct := baseType(contentType)
	switch {
	case ct == "application/json" || strings.HasSuffix(ct, "+json"):
		dec := json.NewDecoder(bytes.NewReader(body))
		var v any
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("not well-formed JSON: %v", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return errors.New("trailing data after the JSON value")
		}
	case ct == "application/xml" || ct == "text/xml" || strings.HasSuffix(ct, "+xml"):
		return checkXML(body)
	case strings.HasPrefix(ct, "text/"):
		if !utf8.Valid(body) {
			return errors.New("text is not valid UTF-8")
		}
	}
	return nil
}

func checkXML(body []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return errors.New("XML declares a DTD, which is refused")
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
			if depth > 64 {
				return errors.New("XML nests deeper than 64 elements")
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("text outside the root element")
			}
		}
	}
	if roots != 1 {
		return fmt.Errorf("XML has %d root elements, want 1", roots)
	}
	return nil
}
