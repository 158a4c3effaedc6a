package node

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"

	"liaison/internal/message"
	"liaison/internal/store"
)

// leaseJournal remembers, in the store, which messages this node has
// leased to each peer and not yet settled, so that after a crash the next
// incarnation releases them at once instead of waiting out leaseTTL (two
// minutes during which even a FLASH leased at the moment of the crash
// would not move). Only a SQLite store, which one process owns, keeps the
// journal: with several instances sharing PostgreSQL a lease may belong
// to a live instance, and expiry is the only safe release.
type leaseJournal struct {
	mu        sync.Mutex
	decided   bool
	on        bool
	recovered map[string]bool
	held      map[string]map[message.ID]bool
}

func journalKey(peer string) string { return "leases/" + peer }

func (j *leaseJournal) enabled(n *Node) bool {
	if !j.decided {
		url := n.cfg.Store
		if n.opts.StoreURL != "" {
			url = n.opts.StoreURL
		}
		j.on = strings.HasPrefix(url, "sqlite:")
		j.decided = true
		j.recovered = map[string]bool{}
		j.held = map[string]map[message.ID]bool{}
	}
	return j.on
}

// recover releases, once per peer and incarnation, the leases a previous
// incarnation left. Call it before the first Lease for peer.
func (j *leaseJournal) recover(ctx context.Context, n *Node, peer string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.enabled(n) || j.recovered[peer] {
		return
	}
	raw, err := n.store.GetState(ctx, journalKey(peer))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			n.log.Warn("read lease journal", slog.String("peer", peer), slog.Any("error", err))
		}
		j.recovered[peer] = errors.Is(err, store.ErrNotFound)
		return
	}
	var ids []message.ID
	for _, s := range strings.Fields(string(raw)) {
		if id, err := message.ParseID(s); err == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		if err := n.store.Release(ctx, peer, ids...); err != nil {
			n.log.Warn("release leases of a previous run", slog.String("peer", peer), slog.Any("error", err))
			return
		}
		n.log.Info("released leases a previous run left", slog.String("peer", peer), slog.Int("messages", len(ids)))
	}
	j.recovered[peer] = true
}

// leased records ids as leased to peer and writes the journal.
func (j *leaseJournal) leased(ctx context.Context, n *Node, peer string, ids []message.ID) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.enabled(n) {
		return
	}
	h := j.held[peer]
	if h == nil {
		h = map[message.ID]bool{}
		j.held[peer] = h
	}
	for _, id := range ids {
		h[id] = true
	}
	var b strings.Builder
	for id := range h {
		b.WriteString(id.String())
		b.WriteByte('\n')
	}
	if err := n.store.PutState(ctx, journalKey(peer), []byte(b.String())); err != nil {
		n.log.Warn("write lease journal", slog.String("peer", peer), slog.Any("error", err))
	}
}

// settled forgets ids; the journal on disk catches up at the next lease
// (releasing a settled message is harmless).
func (j *leaseJournal) settled(peer string, ids ...message.ID) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, id := range ids {
		delete(j.held[peer], id)
	}
}
