package agreement

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Phase is where an agreement stands in its lifecycle at some time.
type Phase int

const (
	Draft           Phase = iota // not every party has recorded its approval
	Approved                     // approved by all, not yet signed (and verified) by all
	Signed                       // signed by all; the term has not been evaluated (see NotYetEffective)
	InForce                      // signed and within [effective, expiry), not suspended or terminated
	Expired                      // signed, and the expiry has passed
	Terminated                   // a signed termination notice has taken effect
	Suspended                    // a signed suspension has not been lifted
	NotYetEffective              // signed, before the effective date
)

var phaseNames = [...]string{"draft", "approved", "signed", "in force", "expired", "terminated", "suspended", "not yet in force"}

func (p Phase) String() string {
	if p >= 0 && int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// State is the computed status of an agreement at a time. Since and Until
// bound the phase where known (zero when open-ended or unknown).
type State struct {
	Phase  Phase
	Reason string
	Since  time.Time
	Until  time.Time
}

func (s State) String() string {
	if s.Reason == "" {
		return s.Phase.String()
	}
	return s.Phase.String() + ": " + s.Reason
}

// Status is [Document.StatusAt].
func Status(d *Document, at time.Time) State { return d.StatusAt(at) }

// StatusAt computes the phase of d at time at from the document alone.
//
// Notices that do not verify are ignored. A termination takes effect its
// notice period after its date; a suspension by a party takes effect on its
// date and lasts until a later resumption by the same party. Expiry and
// termination are final; suspension only pauses an agreement in force.
func (d *Document) StatusAt(at time.Time) State {
	signErr := d.verifyAllSigned()
	var notices []Notice
	if signErr == nil {
		dg, _ := d.Digest()
		notices = d.verifiedNotices(dg)
	}
	return d.status(at, signErr, notices)
}

// status is StatusAt with the signature check and verified notices given,
// so that a Set, which verified them once, need not verify them per call.
func (d *Document) status(at time.Time, signErr error, notices []Notice) State {
	var missing []string
	approved := map[string]bool{}
	var lastApproval time.Time
	for _, a := range d.Approvals {
		approved[a.Party] = true
		if a.Date.After(lastApproval) {
			lastApproval = a.Date
		}
	}
	for _, p := range d.Parties {
		if !approved[p.ID] {
			missing = append(missing, p.ID)
		}
	}
	if len(missing) > 0 || len(d.Parties) == 0 {
		return State{Phase: Draft, Reason: "awaiting domestic approval by " + strings.Join(missing, ", ")}
	}
	if signErr != nil {
		return State{Phase: Approved, Since: lastApproval, Reason: signErr.Error()}
	}
	t := d.Term
	end, endPhase, endReason := t.Expiry, Expired, "expiry reached on "+formatTime(t.Expiry)
	for _, n := range notices {
		if n.Kind != NoticeTerminate {
			continue
		}
		eff := n.Date.Add(time.Duration(t.Notice))
		if eff.Before(end) {
			end, endPhase = eff, Terminated
			endReason = fmt.Sprintf("terminated by %s by notice of %s, effective %s", n.Party, formatTime(n.Date), formatTime(eff))
		}
	}
	if !at.Before(end) {
		return State{Phase: endPhase, Reason: endReason, Since: end}
	}
	if at.Before(t.Effective) {
		return State{Phase: NotYetEffective, Reason: "signed; enters into force on " + formatTime(t.Effective), Until: t.Effective}
	}
	// Suspension: per party, the latest suspend/resume notice dated at or
	// before at decides.
	latest := map[string]Notice{}
	for _, n := range notices {
		if (n.Kind == NoticeSuspend || n.Kind == NoticeResume) && !n.Date.After(at) {
			if cur, ok := latest[n.Party]; !ok || !n.Date.Before(cur.Date) {
				latest[n.Party] = n
			}
		}
	}
	var by []string
	var since time.Time
	for party, n := range latest {
		if n.Kind == NoticeSuspend {
			by = append(by, party)
			if n.Date.After(since) {
				since = n.Date
			}
		}
	}
	if len(by) > 0 {
		sort.Strings(by)
		return State{Phase: Suspended, Reason: "suspended by " + strings.Join(by, ", "), Since: since}
	}
	since = t.Effective
	for _, n := range latest {
		if n.Kind == NoticeResume && n.Date.After(since) {
			since = n.Date
		}
	}
	reason := "until " + formatTime(end)
	if endPhase == Terminated {
		reason = endReason
	}
	return State{Phase: InForce, Reason: reason, Since: since, Until: end}
}

// verifyAllSigned is VerifySignatures without the notices.
func (d *Document) verifyAllSigned() error {
	msg, err := d.SigningBytes()
	if err != nil {
		return err
	}
	signed := map[string]bool{}
	for _, s := range d.Signatures {
		if !d.HasParty(s.Party) || signed[s.Party] {
			return fmt.Errorf("signature by %q is not valid", s.Party)
		}
		signed[s.Party] = true
		if err := d.verifySignature(s, msg); err != nil {
			return err
		}
	}
	var missing []string
	for _, p := range d.Parties {
		if !signed[p.ID] {
			missing = append(missing, p.ID)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("awaiting signature by %s", strings.Join(missing, ", "))
	}
	return nil
}

// verifiedNotices returns the notices whose signatures verify, by date.
func (d *Document) verifiedNotices(dg Digest) []Notice {
	var out []Notice
	for _, n := range d.Notices {
		if d.verifyNotice(n, dg) == nil {
			out = append(out, n)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Date.Before(out[j].Date) })
	return out
}
