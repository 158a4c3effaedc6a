package agreement

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Set holds every installed version of every agreement. The zero value is
// an empty set. Reads are safe concurrently with each other and with Add.
type Set struct {
	mu    sync.RWMutex
	byID  map[string][]entry // sorted by version
	order []string           // agreement ids, sorted
}

type entry struct {
	doc     *Document
	digest  Digest
	notices []Notice // verified, by date
	// last is the most recently computed state and the span of time it
	// holds for, so that the guard's per-message question does not
	// rebuild the state (and its reason text) every time.
	last *atomic.Pointer[stateSpan]
}

func newEntry(d *Document, dg Digest) entry {
	return entry{doc: d, digest: dg, notices: d.verifiedNotices(dg), last: new(atomic.Pointer[stateSpan])}
}

// stateSpan is a state that holds at every instant in [from, until).
type stateSpan struct {
	from, until time.Time
	open        bool // no instant after from changes the state
	st          State
}

// status is doc.StatusAt without verifying signatures again: Add did.
func (e entry) status(at time.Time) State {
	if sp := e.last.Load(); sp != nil && !at.Before(sp.from) && (sp.open || at.Before(sp.until)) {
		return sp.st
	}
	st := e.doc.status(at, nil, e.notices)
	sp := &stateSpan{st: st, open: true}
	for _, b := range e.instants() {
		switch {
		case !b.After(at):
			if b.After(sp.from) {
				sp.from = b
			}
		case sp.open || b.Before(sp.until):
			sp.until, sp.open = b, false
		}
	}
	e.last.Store(sp)
	return st
}

// instants lists every time at which the entry's state can change: a
// document's state depends on the time only by comparisons with these
// (see Document.status), each of which flips at the instant itself.
func (e entry) instants() []time.Time {
	t := e.doc.Term
	out := []time.Time{t.Effective, t.Expiry}
	for _, n := range e.notices {
		out = append(out, n.Date, n.Date.Add(time.Duration(t.Notice)))
	}
	return out
}

// Permit is the answer of [Set.May].
type Permit struct {
	Allowed   bool
	Reason    string
	Agreement *Document
	Channel   *Channel
}

// NewSet returns a set holding docs, added in order.
func NewSet(docs ...*Document) (*Set, error) {
	s := &Set{}
	for _, d := range docs {
		if err := s.Add(d); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Add installs one version. It refuses a document that fails validation or
// whose signatures (and notices) do not all verify, a renewal whose
// Supersedes digest names no installed version of the same agreement, and
// a second, different document with the same id and version. Adding the
// same signed content again replaces the stored copy when the new copy
// keeps every earlier notice (so notices can be delivered later).
func (s *Set) Add(d *Document) error {
	if d == nil {
		return fmt.Errorf("agreement set: nil document")
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("agreement %s: %w", d.Key(), err)
	}
	if err := d.VerifySignatures(); err != nil {
		return fmt.Errorf("agreement %s: %w", d.Key(), err)
	}
	dg, err := d.Digest()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[string][]entry{}
	}
	versions := s.byID[d.ID]
	if d.Supersedes != "" {
		found := false
		for _, e := range versions {
			if e.digest.String() == d.Supersedes && e.doc.Version < d.Version {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("agreement %s: supersedes %s, which matches no installed earlier version of %q", d.Key(), d.Supersedes, d.ID)
		}
	}
	for i, e := range versions {
		if e.doc.Version != d.Version {
			continue
		}
		if e.digest != dg {
			return fmt.Errorf("agreement %s: a different document with the same id and version is installed (%s, not %s)", d.Key(), e.digest, dg)
		}
		for _, n := range e.doc.Notices {
			if !slices.Contains(d.Notices, n) {
				return fmt.Errorf("agreement %s: drops the %s notice by %s dated %s held by the installed copy", d.Key(), n.Kind, n.Party, formatTime(n.Date))
			}
		}
		versions[i] = newEntry(d, dg)
		return nil
	}
	if len(versions) == 0 {
		s.order = append(s.order, d.ID)
		sort.Strings(s.order)
	}
	versions = append(versions, newEntry(d, dg))
	sort.Slice(versions, func(i, j int) bool { return versions[i].doc.Version < versions[j].doc.Version })
	s.byID[d.ID] = versions
	return nil
}

// Clone returns a set holding the same documents; adding to either leaves
// the other unchanged. Documents are shared and must not be mutated.
func (s *Set) Clone() *Set {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := &Set{byID: make(map[string][]entry, len(s.byID)), order: slices.Clone(s.order)}
	for id, v := range s.byID {
		c.byID[id] = slices.Clone(v)
	}
	return c
}

func (s *Set) ids() []string { return s.order }

// All returns every installed version, sorted by id then version.
func (s *Set) All() []*Document {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Document
	for _, id := range s.ids() {
		for _, e := range s.byID[id] {
			out = append(out, e.doc)
		}
	}
	return out
}

// governing returns, per agreement id, the version that governs at at:
// the highest version that has entered into force (signed, effective at or
// before at). Once a renewal takes effect its predecessors no longer govern,
// even if the renewal is later suspended or terminated. The result may be
// a version that is not in force (expired, suspended, terminated).
func (s *Set) governing(at time.Time) []governed {
	var out []governed
	for _, id := range s.ids() {
		v := s.byID[id]
		for i := len(v) - 1; i >= 0; i-- {
			if st := v[i].status(at); st.Phase != NotYetEffective {
				out = append(out, governed{v[i].doc, st})
				break
			}
		}
	}
	return out
}

type governed struct {
	doc   *Document
	state State
}

// InForce returns the governing version of each agreement that is in force
// at at, sorted by id. A version superseded by a newer version that has
// entered into force no longer governs.
func (s *Set) InForce(at time.Time) []*Document {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Document
	for _, g := range s.governing(at) {
		if g.state.Phase == InForce {
			out = append(out, g.doc)
		}
	}
	return out
}

// May reports whether from may send to to on channel at time at: only if
// an agreement in force governs and has the channel with both as members.
func (s *Set) May(from, to, channel string, at time.Time) Permit {
	if from == to {
		return Permit{Reason: fmt.Sprintf("sender and recipient are both %q", from)}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var why []string
	for _, g := range s.governing(at) {
		d, st := g.doc, g.state
		c := d.Channel(channel)
		if c == nil || !c.HasMember(from) || !c.HasMember(to) {
			if d.HasParty(from) && d.HasParty(to) && c != nil {
				why = append(why, fmt.Sprintf("%s: channel %q does not have both %s and %s as members", d.Key(), channel, from, to))
			}
			continue
		}
		if st.Phase != InForce {
			why = append(why, fmt.Sprintf("%s is %s", d.Key(), st))
			continue
		}
		return Permit{Allowed: true, Reason: fmt.Sprintf("%s in force; channel %q joins %s and %s", d.Key(), channel, from, to), Agreement: d, Channel: c}
	}
	if len(why) == 0 {
		return Permit{Reason: fmt.Sprintf("no agreement in force has a channel %q joining %s and %s", channel, from, to)}
	}
	return Permit{Reason: strings.Join(why, "; ")}
}

// Governs is May without the reason: the agreement and channel that allow
// from to send to to on channel at at, or ok false. It allocates nothing;
// call May for the reason of a refusal.
func (s *Set) Governs(from, to, channel string, at time.Time) (d *Document, c *Channel, ok bool) {
	if from == to {
		return nil, nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range s.ids() {
		v := s.byID[id]
		for i := len(v) - 1; i >= 0; i-- {
			st := v[i].status(at)
			if st.Phase == NotYetEffective {
				continue
			}
			if st.Phase == InForce {
				d := v[i].doc
				if c := d.Channel(channel); c != nil && c.HasMember(from) && c.HasMember(to) {
					return d, c, true
				}
			}
			break
		}
	}
	return nil, nil, false
}

// Partners returns, sorted, the parties sharing an agreement in force with
// party at at.
func (s *Set) Partners(party string, at time.Time) []string {
	seen := map[string]bool{}
	for _, d := range s.InForce(at) {
		if !d.HasParty(party) {
			continue
		}
		for _, p := range d.Parties {
			if p.ID != party {
				seen[p.ID] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
