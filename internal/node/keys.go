package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"liaison/internal/audit"
	"liaison/internal/pki"
	"liaison/internal/store"
)

// Key lifecycle. The node's HPKE key (what partners seal envelopes to)
// rotates on a schedule (key_rotation in liaison.yaml, by the node's clock)
// and on demand. A rotation writes a new epoch, sends the new signed card
// to every connected partner over the link ("card" control message; a
// partner pins it only if it names the same CA and a newer epoch), and
// zeroises epochs older than keepEpochs, so that what was sealed to the
// previous keys still opens while it drains. When no agreement is in force
// with any partner, every epoch but the current one is zeroised: nothing
// more will be sealed to them.
const (
	ctlCard    = "card"
	keepEpochs = 3
	stateRotor = "hpke.rotated" // store state: unix nanos of the last rotation
)

// RotateKey makes a new HPKE key epoch now, tells connected partners and
// zeroises epochs older than the last keepEpochs. It returns the new epoch.
func (n *Node) RotateKey(ctx context.Context) (uint32, error) {
	if err := n.rotate(ctx); err != nil {
		return 0, err
	}
	epoch, _ := n.id.Current()
	return epoch, nil
}

func (n *Node) rotate(ctx context.Context) error {
	if err := n.id.Rotate(n.clock.Now()); err != nil {
		return fmt.Errorf("rotate hpke key: %w", err)
	}
	epoch, _ := n.id.Current()
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(n.clock.Now().UnixNano()))
	if err := n.store.PutState(ctx, stateRotor, ts[:]); err != nil {
		return err
	}
	n.record(ctx, audit.Entry{Kind: audit.KindKeyRotated, Decision: "rotated", Detail: map[string]string{"epoch": fmt.Sprint(epoch)}})
	n.log.Info("hpke key rotated", slog.Uint64("epoch", uint64(epoch)))
	for _, e := range n.id.Epochs() {
		if e+keepEpochs <= epoch {
			n.zeroise(ctx, e, "superseded")
		}
	}
	n.broadcastCard()
	return nil
}

func (n *Node) zeroise(ctx context.Context, epoch uint32, why string) {
	if err := n.id.Zeroise(epoch); err != nil {
		n.log.Error("zeroise hpke key", slog.Uint64("epoch", uint64(epoch)), slog.Any("error", err))
		return
	}
	n.record(ctx, audit.Entry{Kind: audit.KindKeyZeroised, Decision: "zeroised", Reason: why, Detail: map[string]string{"epoch": fmt.Sprint(epoch)}})
	n.log.Info("hpke key zeroised", slog.Uint64("epoch", uint64(epoch)), slog.String("why", why))
}

// zeroiseIdle zeroises every epoch but the current one when no agreement
// is in force with anyone.
func (n *Node) zeroiseIdle(ctx context.Context) {
	cur, _ := n.id.Current()
	for _, e := range n.id.Epochs() {
		if e != cur {
			n.zeroise(ctx, e, "no agreement in force")
		}
	}
}

// rotateIfDue rotates when key_rotation has passed since the last rotation.
func (n *Node) rotateIfDue(ctx context.Context) {
	every := time.Duration(*n.cfg.KeyRotation)
	if every <= 0 {
		return
	}
	now := n.clock.Now()
	b, err := n.store.GetState(ctx, stateRotor)
	if errors.Is(err, store.ErrNotFound) || (err == nil && len(b) != 8) {
		// First run: start the schedule now.
		var ts [8]byte
		binary.BigEndian.PutUint64(ts[:], uint64(now.UnixNano()))
		n.store.PutState(ctx, stateRotor, ts[:])
		return
	}
	if err != nil {
		return
	}
	last := time.Unix(0, int64(binary.BigEndian.Uint64(b)))
	if now.Sub(last) >= every {
		if err := n.rotate(ctx); err != nil {
			n.log.Error("scheduled key rotation", slog.Any("error", err))
		}
	}
}

// broadcastCard sends this node's current card to every connected partner.
func (n *Node) broadcastCard() {
	card, err := n.Card()
	if err != nil {
		n.log.Error("card for partners", slog.Any("error", err))
		return
	}
	n.mu.RLock()
	var up []string
	for p, l := range n.links {
		if l.State == "up" {
			up = append(up, p)
		}
	}
	n.mu.RUnlock()
	for _, p := range up {
		if err := n.fed.SendControl(p, ctlCard, card); err != nil {
			n.log.Debug("sending card", slog.String("peer", p), slog.Any("error", err))
		}
	}
}

// receiveCard pins a partner's newer card that arrived over its link. The
// card must be signed, name the partner, and keep the CA already pinned
// (ImportCard refuses another CA or an older epoch).
func (n *Node) receiveCard(party string, data []byte) {
	c, err := pki.ParseCard(data)
	if err != nil || c.Party != party {
		n.log.Warn("card over link refused", slog.String("from", party), slog.Any("error", err))
		return
	}
	if old, ok := n.card(party); ok && old.Epoch == c.Epoch {
		return
	}
	if err := n.ImportCard(context.Background(), data); err != nil {
		n.log.Warn("card over link refused", slog.String("from", party), slog.Any("error", err))
		return
	}
	n.log.Info("partner card updated", slog.String("peer", party), slog.Uint64("epoch", uint64(c.Epoch)))
}

// PinnedEpoch is the HPKE key epoch of party's pinned card (0 if none).
func (n *Node) PinnedEpoch(party string) uint32 {
	if c, ok := n.card(party); ok {
		return c.Epoch
	}
	return 0
}
