package federation

import (
	"slices"
	"testing"

	"liaison/internal/message"
)

// Leased messages go out most urgent first, then in the outbox's queue
// order, even when a small lease made beside a larger one returned first;
// without queue positions (Seq zero) the lease order stands.
func TestSendOrder(t *testing.T) {
	type leased struct {
		prec message.Precedence
		seq  uint64 // queue position
	}
	// Arrival order: the peeker's lease (queue positions 4, 5 and a FLASH
	// at 6) came back before the main lease of positions 1-3.
	arrivals := []leased{
		{message.Routine, 4}, {message.Routine, 5}, {message.Flash, 6},
		{message.Routine, 1}, {message.Routine, 2}, {message.Routine, 3},
	}
	var order []*outMsg
	for i, a := range arrivals {
		order = append(order, &outMsg{Outgoing: Outgoing{ID: message.NewID(), Precedence: a.prec, Seq: a.seq}, seq: uint64(i)})
	}
	slices.SortStableFunc(order, sendOrder)
	var got []uint64
	for _, m := range order {
		got = append(got, m.Outgoing.Seq)
	}
	if want := []uint64{6, 1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("send order by queue position %v, want %v", got, want)
	}

	// An outbox that gives no positions: lease order within a precedence.
	order = order[:0]
	for i, a := range arrivals {
		order = append(order, &outMsg{Outgoing: Outgoing{ID: message.NewID(), Precedence: a.prec}, seq: uint64(i)})
	}
	slices.SortStableFunc(order, sendOrder)
	got = got[:0]
	for _, m := range order {
		got = append(got, m.seq)
	}
	if want := []uint64{2, 0, 1, 3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("send order by lease %v, want %v", got, want)
	}
}
