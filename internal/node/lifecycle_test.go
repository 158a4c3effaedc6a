package node_test

import (
	"context"
	"testing"
	"time"

	"liaison/internal/clock"
	"liaison/internal/guard"
	"liaison/internal/message"
	"liaison/internal/node"
	"liaison/internal/node/nodetest"
)

// A message on a channel whose agreement is not yet in force is held, goes
// to the queue when the agreement comes into force, and after the
// agreement expires new messages are held again.
func TestAgreementLifecycleHoldsAndReleases(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2030, time.March, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewSim(start)
	usa, pak := nodetest.NewHome(t, "USA", nodetest.Config{}), nodetest.NewHome(t, "PAK", nodetest.Config{})
	n := nodetest.Start(t, usa, node.Options{Clock: clk})
	d := nodetest.Document(t, start.Add(48*time.Hour), usa, pak) // effective start+24h
	nodetest.Install(t, n, nodetest.Sign(t, d, usa, pak))
	if p := n.May(ctx, "USA", "PAK", "exercise"); p.Allowed {
		t.Fatalf("May before the effective date: %+v", p)
	}
	m := msg("exercise", message.Immediate, nodetest.Label(t, "USA", "CONFIDENTIAL", "USA", "PAK"), "early")
	m.Created = clk.Now()
	rc, err := n.Submit(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if r := recipient(rc, "PAK"); r.State != "held" || r.Code != guard.CodeNoAgreement {
		t.Fatalf("before the agreement is in force: PAK %+v, want held %s", r, guard.CodeNoAgreement)
	}

	clk.Set(d.Term.Effective.Add(time.Hour))
	poll(t, 10*time.Second, "the held message never went to the queue", func() bool {
		st, err := n.MessageStatus(ctx, rc.ID)
		return err == nil && st.Recipients[0].State == "queued"
	})
	if p := n.May(ctx, "USA", "PAK", "exercise"); !p.Allowed {
		t.Fatalf("May in force: %+v", p)
	}

	clk.Set(d.Term.Expiry.Add(time.Hour))
	poll(t, 10*time.Second, "the link to PAK was never held after expiry", func() bool {
		st, err := n.Status(ctx)
		if err != nil {
			return false
		}
		for _, l := range st.Links {
			if l.Party == "PAK" && l.State == "held" {
				return true
			}
		}
		return false
	})
	late := msg("exercise", message.Flash, nodetest.Label(t, "USA", "CONFIDENTIAL", "USA", "PAK"), "late")
	late.Created = clk.Now()
	rc, err = n.Submit(ctx, late)
	if err != nil {
		t.Fatal(err)
	}
	if r := recipient(rc, "PAK"); r.State != "held" {
		t.Fatalf("after expiry: PAK %+v, want held", r)
	}
}
