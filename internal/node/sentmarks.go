package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"liaison/internal/federation"
	"liaison/internal/message"
)

// sentMarks writes the "sent" marks of messages a link has put on the
// wire, off the link's write loop (Delivery must not block). "Sent" is
// status only, not a durability step, and most marks are overtaken by the
// message's custody ACK within a round trip: so a mark waits markLinger
// before it is written, and a delivery meanwhile cancels it (a mark that
// still loses the race changes nothing: it only moves queued to sent). One
// goroutine at a time writes what is queued, one store write per peer per
// round. Close waits for it (wg) after the links have stopped.
type sentMarks struct {
	wg     *sync.WaitGroup
	write  func(ctx context.Context, peer string, ids []message.ID) // one peer's marks
	wrote  func()                                                   // after a round that wrote some
	linger func()                                                   // before each round

	mu      sync.Mutex
	pending map[string]map[message.ID]struct{} // by peer
	running bool
}

// newSentMarks writes the marks to n's store.
func (n *Node) newSentMarks() sentMarks {
	return sentMarks{
		wg: &n.wg,
		write: func(ctx context.Context, peer string, ids []message.ID) {
			if err := n.store.MarkSentBatch(ctx, peer, ids...); err != nil {
				n.log.Debug("mark sent", slog.Any("error", err))
			}
		},
		wrote:  func() { n.status.fire() }, // per-recipient status shows on live pages
		linger: func() { time.Sleep(markLinger) },
	}
}

// markLinger is how long a sent mark waits for the custody ACK that makes
// it needless: a few round trips of a loaded link.
const markLinger = 50 * time.Millisecond

// add queues the marks of sent and cancels those of delivered.
func (m *sentMarks) add(sent map[string][]message.ID, delivered []federation.Delivery) {
	m.mu.Lock()
	for peer, ids := range sent {
		if m.pending == nil {
			m.pending = map[string]map[message.ID]struct{}{}
		}
		if m.pending[peer] == nil {
			m.pending[peer] = map[message.ID]struct{}{}
		}
		for _, id := range ids {
			m.pending[peer][id] = struct{}{}
		}
	}
	for _, d := range delivered {
		delete(m.pending[d.Party], d.ID)
	}
	start := len(m.pending) > 0 && !m.running
	m.running = m.running || start
	m.mu.Unlock()
	if !start {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for m.round() {
		}
	}()
}

// round waits markLinger, then writes what is pending. It reports false,
// and ends the goroutine's turn, when nothing was.
func (m *sentMarks) round() bool {
	m.linger()
	m.mu.Lock()
	batch := m.pending
	m.pending = nil
	if len(batch) == 0 {
		m.running = false
		m.mu.Unlock()
		return false
	}
	m.mu.Unlock()
	wrote := false
	for peer, set := range batch {
		if len(set) == 0 {
			continue
		}
		ids := make([]message.ID, 0, len(set))
		for id := range set {
			ids = append(ids, id)
		}
		m.write(context.Background(), peer, ids)
		wrote = true
	}
	if wrote {
		m.wrote()
	}
	return true
}
