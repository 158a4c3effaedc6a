package cot

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// maxContacts bounds the contact table against a flood of uids.
const maxContacts = 1 << 16

// fanout subscribes to one channel and copies each delivery to the
// channel's clients. A full client queue blocks it: backpressure on the
// node's subscription, which keeps the history, so nothing is lost.
type fanout struct {
	g       *Gateway
	channel string

	mu      sync.Mutex // guards clients
	clients map[*client]struct{}
}

// subscribe starts a fanout for every configured channel, so that the
// subscription exists before any client joins.
func (g *Gateway) subscribe() error {
	for _, ch := range g.cfg.Channels {
		if g.channels[ch] != nil {
			continue
		}
		ds, err := g.core.Subscribe(g.ctx, ch, g.cfg.StartAfter[ch])
		if err != nil {
			return fmt.Errorf("subscribe to channel %q: %w", ch, err)
		}
		f := &fanout{g: g, channel: ch, clients: map[*client]struct{}{}}
		g.channels[ch] = f
		g.wg.Go(func() { f.run(ds) })
	}
	return nil
}

func (f *fanout) add(c *client) {
	f.mu.Lock()
	f.clients[c] = struct{}{}
	f.mu.Unlock()
}

func (f *fanout) remove(c *client) {
	f.mu.Lock()
	delete(f.clients, c)
	f.mu.Unlock()
}

func (f *fanout) run(ds <-chan Delivery) {
	g := f.g
	t := time.NewTimer(time.Hour)
	t.Stop()
	var (
		targets []*client
		raws    [][]byte
		err     error
	)
	for {
		var d Delivery
		var ok bool
		select {
		case d, ok = <-ds:
			if !ok {
				return
			}
		case <-g.ctx.Done():
			return
		}
		if d.Msg == nil {
			continue
		}
		switch d.Msg.ContentType {
		case ContentType:
			raws = append(raws[:0], d.Msg.Body)
		case BatchContentType:
			if raws, err = ParseBatch(d.Msg.Body); err != nil {
				g.audit(Record{Kind: "error", Channel: f.channel, Detail: "delivered batch: " + err.Error()})
				continue
			}
		default:
			continue
		}
		g.mu.Lock()
		senders := g.sent[d.Msg.ID]
		g.mu.Unlock()
		access, caveat, rel, markErr := g.labeler.ToCoT(d.LocalLabel)
		relTo := strings.Join(rel, " ")
		targets = targets[:0]
		f.mu.Lock()
		for c := range f.clients {
			targets = append(targets, c)
		}
		f.mu.Unlock()
		// Each event of a batch is delivered as a single event would be.
		for i, raw := range raws {
			e, err := ParseEvent(raw)
			if err != nil {
				g.audit(Record{Kind: "error", Channel: f.channel, Detail: "delivered event: " + err.Error()})
				continue
			}
			if e.Callsign != "" && d.Msg.Origin != g.cfg.Origin {
				g.mu.Lock()
				if _, ok := g.contacts[e.UID]; !ok && len(g.contacts) < maxContacts {
					g.contacts[e.UID] = Contact{UID: e.UID, Callsign: e.Callsign, Endpoint: e.Endpoint, Party: d.Msg.Origin}
				}
				g.mu.Unlock()
			}
			if markErr != nil {
				g.audit(Record{Kind: "refused", Channel: f.channel, UID: e.UID, Effective: d.LocalLabel, Detail: "no local marking for label: " + markErr.Error()})
				continue
			}
			out := e.WithMarkings(access, caveat, relTo)
			v1 := &v1Frame{}
			var from *client
			if i < len(senders) {
				from = senders[i]
			}
			for _, c := range targets {
				if c != from {
					c.send(outItem{xml: out, v1: v1}, t)
				}
			}
		}
	}
}
