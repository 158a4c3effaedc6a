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
	who     string  // client, for audit records
	from    *client // for echo suppression; nil for UDP
}

// submitter is one user's path to the core, shared by the user's clients
// (and, for "anonymous", the UDP input): their readers queue parsed events
// and never wait for the store; the
// submitter takes everything pending, labels it, and submits one core
// message per run of events that share a channel, a label and a
// precedence; while that Submit is in flight the next events accumulate
// into the next batch. A run shorter than MinBatch goes event by event, so at low load
// nothing changes: batches form only when a backlog does. A full queue
// blocks the reader (TCP backpressure), never drops.
type submitter struct {
	g    *Gateway
	user string
	in   chan queued
	done chan struct{}
}

// submitterFor returns user's submitter, started on first use; g.mu must
// be held. Every client of one user (TCP and UDP clients are all
// "anonymous") shares it, so that their events batch together; it runs
// until Close.
func (g *Gateway) submitterFor(user string) *submitter {
	s := g.subs[user]
	if s == nil {
		s = g.newSubmitter(user)
		g.subs[user] = s
	}
	return s
}

// newSubmitter starts a submitter; stop it with close once its readers
// are done: it submits what is queued and returns.
func (g *Gateway) newSubmitter(user string) *submitter {
	s := &submitter{g: g, user: user, in: make(chan queued, g.cfg.BatchQueue), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *submitter) close() {
	close(s.in)
	<-s.done
}

func (s *submitter) run() {
	defer close(s.done)
	var (
		pending []item
		memo    = map[string]labelled{}
		loaded  bool
	)
	for q := range s.in {
		pending = s.label(q, memo, pending[:0])
		n := 1 // events taken this round
	more:
		for ; n < cap(s.in); n++ {
			select {
			case q, ok := <-s.in:
				if !ok {
					break more
				}
				pending = s.label(q, memo, pending)
			default:
				break more
			}
		}
		clear(memo)
		// A backlog of MinBatch events means load: from then on any run
		// of two or more is one batch, until a round finds one event.
		switch {
		case n >= s.g.cfg.MinBatch:
			loaded = true
		case n <= 1:
			loaded = false
		}
		least := s.g.cfg.MinBatch
		if loaded {
			least = min(least, 2)
		}
		for _, gr := range s.group(pending) {
			if len(gr) >= least {
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
	if slices.ContainsFunc(gr, func(it item) bool { return it.from != nil }) {
		from := make([]*client, len(gr))
		for i, it := range gr {
			from[i] = it.from
		}
		g.remember(m.ID, from)
	}
	if err := g.core.Submit(g.ctx, m); err != nil {
		for _, it := range gr {
			g.audit(Record{Kind: "error", Client: it.who, Channel: it.channel, UID: it.uid, Detail: "submit: " + err.Error()})
		}
	}
}

// submit queues an event for s, which labels it on each channel.
func (g *Gateway) submit(s *submitter, from *client, who string, channels []string, e *Event) {
	raw := append([]byte(nil), e.Raw...)
	bare := bareEvent(raw)
	if bare != nil && xmlDepth(bare) >= maxXMLDepth {
		bare = nil
	}
	s.in <- queued{raw: raw, bare: bare, uid: e.UID, who: who, from: from, channels: channels,
		access: e.Access, caveat: e.Caveat, relTo: e.ReleasableTo}
}

// queued is an event waiting for its submitter: copies of what labelling
// and submitting need.
type queued struct {
	raw, bare             []byte
	uid, who              string
	from                  *client
	channels              []string
	access, caveat, relTo string
}

// labelled is the outcome of labelling one marking on one channel.
type labelled struct {
	label  []byte // nil: refused
	detail string
}

// label labels q on each channel and appends the results to items. memo
// holds the outcomes of this round: a client's events mostly repeat one
// marking, and the label of a marking does not change within a round.
func (s *submitter) label(q queued, memo map[string]labelled, items []item) []item {
	g := s.g
	original := q.access + "//" + q.caveat + "//" + q.relTo
	for _, ch := range q.channels {
		key := original + "\x00" + ch
		l, ok := memo[key]
		if !ok {
			l = g.labelFor(q.access, q.caveat, q.relTo, ch)
			memo[key] = l
		}
		if l.label == nil {
			g.audit(Record{Kind: "refused", Client: q.who, Channel: ch, UID: q.uid, Original: original, Detail: l.detail})
			continue
		}
		g.audit(Record{Kind: "label", Client: q.who, Channel: ch, UID: q.uid, Original: original, Effective: l.label, Detail: l.detail})
		items = append(items, item{channel: ch, label: l.label, prec: g.prec, raw: q.raw, bare: q.bare, uid: q.uid, who: q.who, from: q.from})
	}
	return items
}

// labelFor maps a marking to its label on channel ch, or to the
// channel's default label; neither: refused.
func (g *Gateway) labelFor(access, caveat, relTo, ch string) labelled {
	label, err := g.labeler.FromCoT(access, caveat, strings.Fields(relTo), ch)
	if err == nil {
		return labelled{label: label, detail: "marking mapped"}
	}
	if g.cfg.DefaultLabel != nil {
		label = g.cfg.DefaultLabel(ch)
	} else {
		label = g.cfg.DefaultLabels[ch]
	}
	if label == nil {
		return labelled{detail: "no default label: " + err.Error()}
	}
	return labelled{label: label, detail: "default label: " + err.Error()}
}
