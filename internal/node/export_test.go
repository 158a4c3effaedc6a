package node

import (
	"context"

	"liaison/internal/message"
	"liaison/internal/store"
)

// SetReconcileChunks makes reconciliation scan at most scan entries and
// answer at most budget bytes of records per request, until restore.
func SetReconcileChunks(scan uint64, budget int) (restore func()) {
	oldScan, oldBudget := recordsScan, recordsBudget
	recordsScan, recordsBudget = scan, budget
	return func() { recordsScan, recordsBudget = oldScan, oldBudget }
}

// SubmitLeasedFlash accepts m as Submit does, but with its queued routes
// stored leased whether or not their links are up, then hands it over:
// the path where a link goes down between Submit's check and the hand-over.
func SubmitLeasedFlash(ctx context.Context, n *Node, m *message.Message) error {
	p, err := n.prepare(ctx, m, n.guardRules(), n.clock.Now())
	if err != nil {
		return err
	}
	for i := range p.Routes {
		if p.Routes[i].State == store.Queued {
			p.Routes[i].LeaseFor = n.leaseFor()
		}
	}
	seq, dup, err := n.store.Accept(ctx, m, p.Routes, p.Audit...)
	if err != nil {
		return err
	}
	n.handOverLeased(ctx, p, store.AcceptResult{Seq: seq, Dup: dup})
	return nil
}
