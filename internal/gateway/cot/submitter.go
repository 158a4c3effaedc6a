package cot

import (
	"bytes"
	"slices"
	"strings"

	"liaison/internal/message"
)

// item is one labelled event waiting to be submitted on one channel.
type item struct {
	channel string
	label   []byte
	prec    message.Precedence
	raw     []byte // the event as received (the submitter's own copy)
	bare    []byte // raw from its <event> tag; nil: never batched
	uid     string
	who     string // client, for audit records
}

// submitter is one input's (a client's, or UDP's) path to the core: the
// reader queues labelled events and never waits for the store; the
// submitter takes everything pending, submits one core message per run
// of events that share a channel, a label and a precedence, and while
// that Submit is in flight the next events accumulate into the next
// batch. A run shorter than MinBatch goes event by event, so at low load
// nothing changes: batches form only when a backlog does. A full queue
// blocks the reader (TCP backpressure), never drops.
type submitter struct {
	g    *Gateway
	from *client // for echo suppression; nil for UDP
	user string
	in   chan item
	done chan struct{}
}

// newSubmitter starts a submitter; stop it with close once its reader is
// done: it submits what is queued and returns.
func (g *Gateway) newSubmitter(from *client, user string) *submitter {
	s := &submitter{g: g, from: from, user: user, in: make(chan item, g.cfg.BatchQueue), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *submitter) close() {
	close(s.in)
	<-s.done
}

func (s *submitter) run() {
	defer close(s.done)
	var pending []item
	for it := range s.in {
		pending = append(pending[:0], it)
	more:
		for len(pending) < cap(s.in) {
			select {
			case it, ok := <-s.in:
				if !ok {
					break more
				}
				pending = append(pending, it)
			default:
				break more
			}
		}
		for _, gr := range s.group(pending) {
			if len(gr) >= s.g.cfg.MinBatch {
				s.submit(gr)
				continue
			}
			for i := range gr {
				s.submit(gr[i : i+1])
			}
		}
		clear(pending)
	}
}

// group splits pending into batches: consecutive events of one channel
// with equal label and precedence, within the batch bounds, in order per
// channel. Higher precedences go first; equal ones keep arrival order.
func (s *submitter) group(pending []item) [][]item {
	var (
		groups [][]item
		sizes  []int
		open   = map[string]int{} // channel -> index of its open group
	)
	maxN, maxB := s.g.cfg.MaxBatch, s.g.cfg.MaxBatchBytes
	for _, it := range pending {
		if i, ok := open[it.channel]; ok {
			gr := groups[i]
			first := gr[0]
			if it.bare != nil && first.bare != nil && it.prec == first.prec && len(gr) < maxN &&
				batchSize(sizes[i]+len(it.bare)) <= maxB && bytes.Equal(it.label, first.label) {
				groups[i] = append(gr, it)
				sizes[i] += len(it.bare)
				continue
			}
		}
		open[it.channel] = len(groups)
		groups = append(groups, []item{it})
		sizes = append(sizes, len(it.bare))
	}
	// Lower precedence values are more urgent.
	slices.SortStableFunc(groups, func(a, b []item) int { return int(a[0].prec) - int(b[0].prec) })
	return groups
}

// submit hands one batch to the core as one message: a single event
// unchanged as [ContentType], several as [BatchContentType].
func (s *submitter) submit(gr []item) {
	g := s.g
	first := gr[0]
	m := &message.Message{
		ID: message.NewID(), Channel: first.channel, Origin: g.cfg.Origin, Originator: s.user,
		Precedence: first.prec, Created: g.cfg.Now(), Label: first.label,
		ContentType: ContentType, Body: first.raw,
	}
	if len(gr) > 1 {
		evs := make([][]byte, len(gr))
		n := 0
		for i, it := range gr {
			evs[i] = it.bare
			n += len(it.bare)
		}
		m.ContentType, m.Body = BatchContentType, appendBatch(make([]byte, 0, batchSize(n)), evs)
	}
	if s.from != nil {
		g.remember(m.ID, s.from)
	}
	if err := g.core.Submit(g.ctx, m); err != nil {
		for _, it := range gr {
			g.audit(Record{Kind: "error", Client: it.who, Channel: it.channel, UID: it.uid, Detail: "submit: " + err.Error()})
		}
	}
}

// submit labels an event on each channel and queues it for s.
func (g *Gateway) submit(s *submitter, who string, channels []string, e *Event) {
	raw := append([]byte(nil), e.Raw...)
	bare := bareEvent(raw)
	if bare != nil && xmlDepth(bare) >= maxXMLDepth {
		bare = nil
	}
	original := e.Access + "//" + e.Caveat + "//" + e.ReleasableTo
	for _, ch := range channels {
		label, err := g.labeler.FromCoT(e.Access, e.Caveat, strings.Fields(e.ReleasableTo), ch)
		detail := "marking mapped"
		if err != nil {
			if g.cfg.DefaultLabel != nil {
				label = g.cfg.DefaultLabel(ch)
			} else {
				label = g.cfg.DefaultLabels[ch]
			}
			detail = "default label: " + err.Error()
			if label == nil {
				g.audit(Record{Kind: "refused", Client: who, Channel: ch, UID: e.UID, Original: original, Detail: "no default label: " + err.Error()})
				continue
			}
		}
		g.audit(Record{Kind: "label", Client: who, Channel: ch, UID: e.UID, Original: original, Effective: label, Detail: detail})
		s.in <- item{channel: ch, label: label, prec: g.prec, raw: raw, bare: bare, uid: e.UID, who: who}
	}
}
