package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"liaison/internal/api"
	"liaison/internal/audit"
	"liaison/internal/federation"
	"liaison/internal/federation/linkproto"
)

// Reconciliation asks a partner, over the link, for the entries of its
// audit log that record messages crossing between the two nodes:
//
//	audit.records   a request: {id, from, to} (to 0: the partner's checkpoint size)
//	audit.recs      the answer: {id, records, next, size} or {id, err}
//
// The partner answers only with entries that concern the asking party
// ([audit.Crossed] with it as the peer), which the asking party already
// knows of, and scans at most recordsScan entries per request so that an
// answer stays well under the link's control frame limit. The asking node
// repeats the request from next until it reaches size.
const (
	ctlRecords    = "audit.records"
	ctlRecordsAns = "audit.recs"
)

// Bounds of reconciliation; variables so that tests can force chunking.
var (
	// recordsScan bounds the log entries the partner reads for one request.
	recordsScan uint64 = 4096
	// recordsBudget bounds the JSON of the records in one answer: half a
	// control frame, leaving room for the envelope.
	recordsBudget = (linkproto.MaxFramePayload - linkproto.MaxKindLen - 8) / 2
)

// maxReconcileRounds bounds the requests of one reconciliation.
const maxReconcileRounds = 1 << 16

var _ api.AuditReconciler = (*Node)(nil)

var errNotPartner = errors.New("not a partner")

// serveRecords answers an audit.records request from party.
func (c *controlMux) serveRecords(ctx context.Context, party string, p ctlPayload) ctlPayload {
	ans := ctlPayload{ID: p.ID}
	cp, err := c.n.audit.Checkpoint(ctx)
	if err != nil {
		ans.Err = err.Error()
		return ans
	}
	size := checkpointSize(cp)
	to := p.To
	if to == 0 || to > size {
		to = size
	}
	ans.Size = to
	from := min(p.From, to)
	end := min(to, from+recordsScan)
	recs, err := c.n.audit.Entries(ctx, from, end)
	if err != nil {
		ans.Err = err.Error()
		return ans
	}
	ans.Records, ans.Next, err = pageRecords(recs, party, recordsBudget, end)
	if err != nil {
		ans.Err = err.Error()
	}
	return ans
}

// pageRecords encodes the records of recs (leaves up to end) that concern
// party, at most budget bytes of them unless the first leaf alone is more,
// and returns the leaf index the next answer starts from: end, or the
// first leaf left out. An answer ends at a leaf's boundary, so that a leaf
// grouping several entries is never split between two answers (the next
// one starts from a leaf index).
func pageRecords(recs []audit.Record, party string, budget int, end uint64) (out []json.RawMessage, next uint64, err error) {
	used, leafStart, leaf := 0, 0, uint64(0)
	for i, r := range recs {
		if i == 0 || r.Index != leaf {
			leaf, leafStart = r.Index, len(out)
		}
		if !audit.Crossed(r.Entry, party) {
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, 0, err
		}
		if used+len(b) > budget && leafStart > 0 {
			return out[:leafStart], r.Index, nil // the rest, from this leaf, in the next answer
		}
		used += len(b)
		out = append(out, b)
	}
	return out, end, nil
}

// partnerRecords fetches the partner's records of crossings with us.
func (c *controlMux) partnerRecords(ctx context.Context, party string) ([]audit.Record, error) {
	var out []audit.Record
	var from, to uint64
	for range maxReconcileRounds {
		ans, err := c.request(ctx, party, ctlRecords, ctlPayload{From: from, To: to})
		if err != nil {
			return nil, err
		}
		if to == 0 {
			to = ans.Size
		}
		if ans.Size != to || ans.Next > to || (ans.Next <= from && from < to) {
			return nil, fmt.Errorf("%s answered records %d..%d of %d, asked for %d..%d", party, from, ans.Next, ans.Size, from, to)
		}
		for _, raw := range ans.Records {
			r, err := decodeRecord(raw)
			if err != nil {
				return nil, fmt.Errorf("record from %s: %v", party, err)
			}
			if r.Index < from || r.Index >= ans.Next {
				return nil, fmt.Errorf("record %d from %s is outside %d..%d", r.Index, party, from, ans.Next)
			}
			out = append(out, r)
		}
		from = ans.Next
		if from >= to {
			return out, nil
		}
	}
	return nil, fmt.Errorf("reconciling with %s: more than %d requests", party, maxReconcileRounds)
}

// decodeRecord reads one record of a partner's answer: strict JSON, at
// most one control frame, and an entry that passes [audit.Entry.Validate].
func decodeRecord(raw []byte) (audit.Record, error) {
	var r audit.Record
	if len(raw) > linkproto.MaxFramePayload {
		return r, fmt.Errorf("record of %d bytes exceeds %d", len(raw), linkproto.MaxFramePayload)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return audit.Record{}, err
	}
	if dec.More() {
		return audit.Record{}, errors.New("trailing data after the record")
	}
	if err := r.Entry.Validate(); err != nil {
		return audit.Record{}, fmt.Errorf("record %d: %v", r.Index, err)
	}
	return r, nil
}

// Reconcile compares the messages that crossed between this node and
// peer as the two audit logs record them: it asks peer over the link for
// its records of crossings with this node and compares them with ours.
// Only what each log's latest checkpoint covers is compared, so a message
// that crossed in the last moments may appear on one side only until the
// next checkpoint.
func (n *Node) Reconcile(ctx context.Context, peer string) (audit.Diff, error) {
	if _, ok := n.card(peer); !ok {
		return audit.Diff{}, fmt.Errorf("%q: %w of %s (no pinned card)", peer, errNotPartner, n.party)
	}
	theirs, err := n.control.partnerRecords(ctx, peer)
	if err != nil {
		return audit.Diff{}, err
	}
	cp, err := n.audit.Checkpoint(ctx)
	if err != nil {
		return audit.Diff{}, err
	}
	var mine []audit.Record
	size := checkpointSize(cp)
	for from := uint64(0); from < size; from += recordsScan {
		recs, err := n.audit.Entries(ctx, from, min(size, from+recordsScan))
		if err != nil {
			return audit.Diff{}, err
		}
		for _, r := range recs {
			if audit.Crossed(r.Entry, peer) {
				mine = append(mine, r)
			}
		}
	}
	return audit.Reconcile(mine, theirs, n.party, peer), nil
}

// ReconcileAudit serves GET /v1/audit/reconcile.
func (n *Node) ReconcileAudit(ctx context.Context, peer string) (*api.AuditDiff, error) {
	d, err := n.Reconcile(ctx, peer)
	switch {
	case errors.Is(err, federation.ErrNoLink):
		return nil, api.Errorf(http.StatusConflict, "no-link", "no link to %s is up: %v", peer, err)
	case errors.Is(err, errNotPartner):
		return nil, api.Errorf(http.StatusNotFound, "not-partner", "%v", err)
	case err != nil:
		return nil, err
	}
	out := &api.AuditDiff{Peer: d.Peer, Matched: d.Matched}
	for _, r := range d.OnlyMine {
		out.OnlyMine = append(out.OnlyMine, auditEntry(r))
	}
	for _, r := range d.OnlyTheirs {
		out.OnlyTheirs = append(out.OnlyTheirs, auditEntry(r))
	}
	for _, m := range d.Mismatched {
		out.Mismatched = append(out.Mismatched, api.AuditMismatch{Mine: auditEntry(m.Mine), Theirs: auditEntry(m.Theirs)})
	}
	return out, nil
}

func auditEntry(r audit.Record) api.AuditEntry {
	e := r.Entry
	return api.AuditEntry{Index: r.Index, Pos: r.Pos, Kind: e.Kind, At: e.At, MessageID: e.MessageID, Digest: e.Digest, Peer: e.Peer,
		Channel: e.Channel, Decision: e.Decision, Reason: e.Reason, Actor: e.Actor}
}
