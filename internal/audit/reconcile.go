package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// Crossed reports whether e records a message crossing the federation link
// with peer: on the sending side [KindDelivered] (the partner acknowledged)
// or [KindRefused] (it returned a signed denial); on the receiving side
// [KindReceived] or [KindRejected]. Both sides record the outcome in
// Decision ([DecisionAccepted] or [DecisionRefused]) so that a crossing
// leaves matching entries (MessageID, Digest, Decision) in both logs.
func Crossed(e Entry, peer string) bool {
	if e.MessageID == "" || e.Peer != peer {
		return false
	}
	switch e.Kind {
	case KindDelivered, KindRefused, KindReceived, KindRejected:
		return true
	}
	return false
}

// Diff is what two logs disagree on about the messages that crossed
// between them.
type Diff struct {
	Peer       string     `json:"peer"`
	Matched    int        `json:"matched"`
	OnlyMine   []Record   `json:"only_mine,omitempty"`   // crossings the partner's log lacks
	OnlyTheirs []Record   `json:"only_theirs,omitempty"` // crossings this log lacks
	Mismatched []Mismatch `json:"mismatched,omitempty"`  // same message, different digest or decision
}

// Mismatch pairs two entries about one message that disagree.
type Mismatch struct {
	Mine   Record `json:"mine"`
	Theirs Record `json:"theirs"`
}

// Empty reports whether the two logs agree.
func (d Diff) Empty() bool {
	return len(d.OnlyMine) == 0 && len(d.OnlyTheirs) == 0 && len(d.Mismatched) == 0
}

// Reconcile compares the crossings with peer in this node's records
// (mine) with those the partner exported (theirs, whose own peer is the
// party this node acts for, self). Records of other kinds or peers are
// ignored.
func Reconcile(mine, theirs []Record, self, peer string) Diff {
	d := Diff{Peer: peer}
	type key struct{ id, digest, decision string }
	theirsByID := map[string][]Record{}
	for _, r := range theirs {
		if Crossed(r.Entry, self) {
			theirsByID[r.Entry.MessageID] = append(theirsByID[r.Entry.MessageID], r)
		}
	}
	type place struct {
		index uint64
		pos   int
	}
	used := map[place]bool{}
	at := func(r Record) place { return place{r.Index, r.Pos} }
	for _, m := range mine {
		if !Crossed(m.Entry, peer) {
			continue
		}
		cands := theirsByID[m.Entry.MessageID]
		i := slices.IndexFunc(cands, func(t Record) bool {
			return !used[at(t)] && t.Entry.Digest == m.Entry.Digest && t.Entry.Decision == m.Entry.Decision
		})
		if i >= 0 {
			used[at(cands[i])] = true
			d.Matched++
			continue
		}
		j := slices.IndexFunc(cands, func(t Record) bool { return !used[at(t)] })
		if j >= 0 {
			used[at(cands[j])] = true
			d.Mismatched = append(d.Mismatched, Mismatch{Mine: m, Theirs: cands[j]})
			continue
		}
		d.OnlyMine = append(d.OnlyMine, m)
	}
	for _, r := range theirs {
		if Crossed(r.Entry, self) && !used[at(r)] {
			d.OnlyTheirs = append(d.OnlyTheirs, r)
		}
	}
	return d
}

// WriteRecords writes records as JSON lines, the export format partners
// exchange for reconciliation.
func WriteRecords(w io.Writer, recs []Record) error {
	enc := json.NewEncoder(w)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// maxExportLine bounds one line of an export file.
const maxExportLine = 4 * MaxEntrySize

// ReadRecords reads records written by [WriteRecords]. Each entry must be
// valid; lines are at most 64 KiB.
func ReadRecords(r io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxExportLine)
	var out []Record
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		if err := rec.Entry.Validate(); err != nil {
			return nil, fmt.Errorf("line %d: %v", line, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading records: %v", err)
	}
	return out, nil
}
