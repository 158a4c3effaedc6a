package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"liaison/internal/api"
	"liaison/internal/audit"
)

// Control messages ride the federation link beside messages. Partners use
// them to witness each other's audit logs:
//
//	audit.vkey        our witness's cosignature verifier key (on link up)
//	audit.checkpoint  our latest signed checkpoint, offered for cosigning
//	audit.get         a request for a checkpoint or hash tile of our log
//	audit.file        the answer to audit.get
//	audit.cosig       the partner's cosignature on one of our checkpoints
//	audit.records     a request for the partner's records of crossings with us
//	audit.recs        the answer to audit.records (see reconcile.go)
//
// Every payload is JSON and bounded by the link's control frame limit.
// The link is mutually authenticated, so the sending party is known; the
// checkpoint and cosignature are signed and verified on their own.
const (
	ctlVKey       = "audit.vkey"
	ctlCheckpoint = "audit.checkpoint"
	ctlGet        = "audit.get"
	ctlFile       = "audit.file"
	ctlCosig      = "audit.cosig"
)

type ctlPayload struct {
	ID         uint64 `json:"id,omitempty"`
	Path       string `json:"path,omitempty"`
	Data       []byte `json:"data,omitempty"`
	Err        string `json:"err,omitempty"`
	Checkpoint []byte `json:"checkpoint,omitempty"`
	VKey       string `json:"vkey,omitempty"`
	// audit.records and its answer (see reconcile.go)
	From    uint64            `json:"from,omitempty"`
	To      uint64            `json:"to,omitempty"`
	Next    uint64            `json:"next,omitempty"`
	Size    uint64            `json:"size,omitempty"`
	Records []json.RawMessage `json:"records,omitempty"`
}

// controlMux sends control messages and matches answers to requests.
type controlMux struct {
	n      *Node
	nextID atomic.Uint64

	mu      sync.Mutex // guards pending
	pending map[string]chan ctlPayload

	// Offered checkpoints are witnessed one at a time per partner, in the
	// order they came: witnessing two at once could check an older one
	// after a newer one and take a stale offer for a rollback.
	offerMu    sync.Mutex // guards offers and witnessing
	offers     map[string][][]byte
	witnessing map[string]bool
	witnessFn  func(party string, cp []byte) // c.witness; a test may replace it

	sendMu sync.Mutex // offers go out in the order their checkpoints were read
}

// maxQueuedOffers bounds the checkpoints a partner may have waiting to be
// witnessed; more are dropped (it offers again on its next round).
const maxQueuedOffers = 8

func newControlMux(n *Node) *controlMux {
	c := &controlMux{n: n, pending: map[string]chan ctlPayload{}, offers: map[string][][]byte{}, witnessing: map[string]bool{}}
	c.witnessFn = c.witness
	return c
}

// queueOffer queues a partner's offered checkpoint for witnessing and
// starts the partner's witnessing goroutine if none runs.
func (c *controlMux) queueOffer(party string, cp []byte) {
	c.offerMu.Lock()
	if len(c.offers[party]) >= maxQueuedOffers {
		c.offerMu.Unlock()
		c.n.log.Warn("partner checkpoint offer dropped: too many waiting", slog.String("from", party), slog.Int("waiting", maxQueuedOffers))
		return
	}
	c.offers[party] = append(c.offers[party], cp)
	start := !c.witnessing[party]
	c.witnessing[party] = true
	c.offerMu.Unlock()
	if start {
		go c.witnessOffers(party)
	}
}

// witnessOffers witnesses party's queued checkpoints in order until none
// are left.
func (c *controlMux) witnessOffers(party string) {
	for {
		c.offerMu.Lock()
		q := c.offers[party]
		if len(q) == 0 {
			delete(c.offers, party)
			delete(c.witnessing, party)
			c.offerMu.Unlock()
			return
		}
		cp := q[0]
		c.offers[party] = q[1:]
		c.offerMu.Unlock()
		c.witnessFn(party, cp)
	}
}

func (c *controlMux) send(party, kind string, p ctlPayload) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return c.n.fed.SendControl(party, kind, b)
}

// receive is the federation's Control callback. It must not block, so the
// work runs in its own goroutine.
func (c *controlMux) receive(party, kind string, data []byte) {
	if kind == ctlCard { // a signed CBOR card, not JSON
		go c.n.receiveCard(party, append([]byte(nil), data...))
		return
	}
	var p ctlPayload
	if err := json.Unmarshal(data, &p); err != nil {
		c.n.log.Warn("malformed control message", slog.String("from", party), slog.String("kind", kind), slog.Any("error", err))
		return
	}
	switch kind {
	case ctlFile, ctlRecordsAns:
		c.mu.Lock()
		ch := c.pending[party+"/"+strconv.FormatUint(p.ID, 10)]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- p:
			default:
			}
		}
	case ctlGet:
		go func() {
			data, err := c.n.audit.ServeFile(p.Path)
			ans := ctlPayload{ID: p.ID, Path: p.Path, Data: data}
			if err != nil {
				ans.Err = err.Error()
			}
			c.send(party, ctlFile, ans)
		}()
	case ctlRecords:
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c.send(party, ctlRecordsAns, c.serveRecords(ctx, party, p))
		}()
	case ctlVKey:
		if err := c.n.audit.TrustWitness(party, p.VKey); err != nil {
			c.n.log.Warn("partner witness key refused", slog.String("from", party), slog.Any("error", err))
		}
	case ctlCheckpoint:
		c.queueOffer(party, p.Checkpoint)
	case ctlCosig:
		go func() {
			ctx := context.Background()
			if err := c.n.audit.AddCosignature(ctx, party, p.Checkpoint, p.Data); err != nil {
				c.n.log.Warn("partner cosignature refused", slog.String("from", party), slog.Any("error", err))
				return
			}
			c.n.log.Debug("checkpoint cosigned by partner", slog.String("partner", party))
		}()
	default:
		c.n.log.Debug("unknown control message", slog.String("from", party), slog.String("kind", kind))
	}
}

// fetch asks party for a file of its audit log and waits for the answer.
func (c *controlMux) fetch(ctx context.Context, party, path string) ([]byte, error) {
	p, err := c.request(ctx, party, ctlGet, ctlPayload{Path: path})
	if err != nil {
		return nil, fmt.Errorf("fetching %s from %s: %w", path, party, err)
	}
	return p.Data, nil
}

// request sends a control message of kind to party with a fresh id and
// waits for the answer carrying that id.
func (c *controlMux) request(ctx context.Context, party, kind string, p ctlPayload) (ctlPayload, error) {
	p.ID = c.nextID.Add(1)
	key := party + "/" + strconv.FormatUint(p.ID, 10)
	ch := make(chan ctlPayload, 1)
	c.mu.Lock()
	c.pending[key] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, key)
		c.mu.Unlock()
	}()
	if err := c.send(party, kind, p); err != nil {
		return ctlPayload{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case ans := <-ch:
		if ans.Err != "" {
			return ctlPayload{}, errors.New(ans.Err)
		}
		return ans, nil
	case <-ctx.Done():
		return ctlPayload{}, fmt.Errorf("%s to %s: %w", kind, party, ctx.Err())
	}
}

// linkDown fails the requests waiting on party's answers: they went out
// on a session that ended, so no answer will come. Without this a witness
// would wait out the request timeout, holding up every later offer.
func (c *controlMux) linkDown(party string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, ch := range c.pending {
		if strings.HasPrefix(key, party+"/") {
			select {
			case ch <- ctlPayload{Err: "link to " + party + " went down"}:
			default:
			}
		}
	}
}

// hello runs when a link comes up: send our current card (the partner may
// have missed a key rotation), our witness key, and offer our checkpoint.
func (c *controlMux) hello(party string) {
	if card, err := c.n.Card(); err == nil {
		if err := c.n.fed.SendControl(party, ctlCard, card); err != nil {
			c.n.log.Debug("sending card", slog.String("peer", party), slog.Any("error", err))
		}
	}
	if err := c.send(party, ctlVKey, ctlPayload{VKey: c.n.witness.VerifierKey()}); err != nil {
		c.n.log.Debug("sending witness key", slog.String("peer", party), slog.Any("error", err))
	}
	c.offer(context.Background(), party)
}

// offer sends our latest checkpoint to party for cosigning.
func (c *controlMux) offer(ctx context.Context, party string) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	cp, err := c.n.audit.Checkpoint(ctx)
	if err != nil || len(cp) == 0 {
		return
	}
	if err := c.send(party, ctlCheckpoint, ctlPayload{Checkpoint: cp}); err != nil {
		c.n.log.Debug("offering checkpoint", slog.String("peer", party), slog.Any("error", err))
	}
}

// witness checks a partner's checkpoint for consistency with the last one
// we accepted (fetching its hash tiles over the link), cosigns it and
// sends the cosignature back. A fork or rollback raises an alarm.
func (c *controlMux) witness(party string, cp []byte) {
	ctx := context.Background()
	fetch := func(ctx context.Context, path string) ([]byte, error) { return c.fetch(ctx, party, path) }
	cosig, err := c.n.witness.Witness(ctx, AuditOrigin(party), cp, fetch)
	if err != nil {
		var fe *audit.ForkError
		if !errors.As(err, &fe) {
			c.n.log.Warn("witnessing partner checkpoint", slog.String("partner", party), slog.Any("error", err))
		}
		return
	}
	if err := c.send(party, ctlCosig, ctlPayload{Checkpoint: cp, Data: cosig}); err != nil {
		c.n.log.Debug("returning cosignature", slog.String("peer", party), slog.Any("error", err))
	}
}

// Witness offers this node's latest checkpoint to every connected partner
// now (the witness loop does it periodically).
func (n *Node) Witness(ctx context.Context) {
	n.mu.RLock()
	var up []string
	for p, l := range n.links {
		if l.State == "up" {
			up = append(up, p)
		}
	}
	n.mu.RUnlock()
	for _, p := range up {
		n.control.offer(ctx, p)
	}
}

func (n *Node) witnessLoop(ctx context.Context) {
	t := time.NewTicker(n.opts.WitnessInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.Witness(ctx)
		}
	}
}

func (n *Node) onFork(fe *audit.ForkError) {
	what := "fork"
	if fe.Rollback {
		what = "rollback"
	}
	n.alarm("audit %s detected in %s: evidence kept in %s", what, fe.Origin, fe.Evidence)
}

// auditStatus summarises our log and what partners witnessed.
func (n *Node) auditStatus(ctx context.Context) *api.AuditStatus {
	cp, _ := n.audit.Checkpoint(ctx)
	st := &api.AuditStatus{Size: checkpointSize(cp), Checkpoint: string(cp)}
	for _, ps := range n.witness.Status() {
		party := strings.ToUpper(strings.TrimSuffix(strings.TrimPrefix(ps.Origin, "liaison."), "/audit"))
		pa := api.PartnerAudit{Party: party, TheirSize: ps.Size, LastWitnessed: ps.WitnessedAt}
		if cs, err := n.audit.Cosigned(party); err == nil && cs != nil {
			pa.OurCosignedSize = checkpointSize(cs)
		}
		st.Partners = append(st.Partners, pa)
		if ps.Forks > 0 {
			st.Forks = append(st.Forks, fmt.Sprintf("%s: %d fork(s) or rollback(s); evidence in %s", party, ps.Forks, ps.LastFork))
		}
	}
	return st
}

// checkpointSize reads the tree size (second line) of a checkpoint.
func checkpointSize(cp []byte) uint64 {
	lines := strings.SplitN(string(cp), "\n", 3)
	if len(lines) < 2 {
		return 0
	}
	n, _ := strconv.ParseUint(lines[1], 10, 64)
	return n
}
