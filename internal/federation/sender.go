package federation

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"liaison/internal/federation/linkproto"
	"liaison/internal/message"
)

// write is the session's writer goroutine: the only one that writes to the
// connection. Each pass writes queued control frames and acks, takes in
// what the leaser leased, asks it for more when running low, then writes
// at most one fragment of the most urgent sendable message. A FLASH leased
// while a ROUTINE transfer runs is therefore on the wire after at most one
// fragment (plus what the pipe already holds: see Config.PipeBytes). The
// writer never waits on the store: leasing (the leaser) and applying
// custody ACKs (the acker) run beside it.
func (s *session) write(bw *bufio.Writer, leases, peeks chan<- int) error {
	cfg := &s.m.cfg
	party := s.p.party
	hb := time.NewTicker(cfg.Heartbeat)
	defer hb.Stop()
	poll := time.NewTicker(cfg.Poll)
	defer poll.Stop()
	var (
		order     []*outMsg // leased and not settled, most urgent first
		peek      bool      // told of new work: lease one more as soon as we may
		lastWrite = time.Now()
		scratch   []byte
		sent      []Delivery // fully written since the last flush
		forgotten uint64     // s.forgotten when order was last pruned
	)
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if len(sent) > 0 && cfg.Delivery != nil {
			cfg.Delivery(sent)
		}
		sent = nil
		return nil
	}
	for {
		if s.ctx.Err() != nil {
			return context.Cause(s.ctx)
		}
		polled := false
		select {
		case <-poll.C:
			polled = true
		default:
		}
		woke := s.notified.Swap(false)
		peek = peek || woke

		s.mu.Lock()
		ctl := s.ctl
		s.ctl = nil
		var acks []linkproto.AckEntry
		for _, id := range s.ackOrder {
			acks = append(acks, s.acks[id])
		}
		clear(s.acks)
		s.ackOrder = s.ackOrder[:0]
		closing := s.closing
		// Take in what the leaser leased; drop what the acker settled.
		fresh := s.fresh
		s.fresh = nil
		if woke || polled {
			s.drained = false
		}
		if s.forgotten != forgotten {
			forgotten = s.forgotten
			order = slices.DeleteFunc(order, func(m *outMsg) bool { return s.out[m.ID] == nil })
		}
		leasing, peeking, drained := s.leasing, s.peeking, s.drained
		s.mu.Unlock()

		wrote := false
		for i := range ctl {
			b, err := linkproto.AppendFrame(scratch[:0], &ctl[i])
			if err != nil {
				s.m.cfg.Logger.Warn("federation frame dropped", "party", party, "type", ctl[i].Type, "err", err)
				continue
			}
			scratch = b
			if _, err := bw.Write(b); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			wrote = true
		}
		for len(acks) > 0 {
			n := min(len(acks), linkproto.MaxAckEntries)
			b, _ := linkproto.AppendFrame(scratch[:0], &linkproto.Frame{Type: linkproto.FrameAck, Acks: acks[:n]})
			scratch = b
			if _, err := bw.Write(b); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			acks = acks[n:]
			wrote = true
		}
		if closing != "" {
			s.writeClose(bw, closing)
			return fmt.Errorf("closed: %s", closing)
		}
		if len(fresh) > 0 {
			order = append(order, fresh...)
			slices.SortStableFunc(order, sendOrder)
		}

		// Lease ahead: keep up to LeaseBatch unstarted messages at hand,
		// asking for more once half is used, so that each lease (a store
		// write) carries half a batch or more and the next one arrives
		// while this one is still being sent. When told of new work,
		// lease more so a new FLASH is seen now: with the next lease, or
		// with a small one of its own beside a lease under way.
		unsent := 0
		if !leasing || (peek && !peeking) {
			for _, m := range order {
				if !m.started {
					unsent++
				}
			}
		}
		switch {
		case leasing && peek && !peeking && unsent < 2*cfg.LeaseBatch:
			peek = false
			s.mu.Lock()
			s.peeking = true
			s.mu.Unlock()
			peeks <- peekLease // the peeker is idle: never blocks
		case !leasing:
			n := 0
			switch {
			case unsent <= cfg.LeaseBatch/2 && !drained:
				n = cfg.LeaseBatch - unsent
			case peek && unsent < 2*cfg.LeaseBatch:
				// Up to a batch more, not just one: under a stream of
				// submissions the news never stops, and leases of one
				// would each cost a store write.
				n = min(cfg.LeaseBatch, 2*cfg.LeaseBatch-unsent)
			}
			if n > 0 {
				peek = false
				s.mu.Lock()
				s.leasing = true
				s.mu.Unlock()
				leases <- n // the leaser is idle: never blocks
			}
		}

		m, off, end := s.pick(order)
		if m != nil {
			if err := s.writeData(bw, m, off, end); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			wrote = true
			if end == uint64(len(m.Wire)) {
				sent = append(sent, Delivery{Kind: Sent, Party: party, ID: m.ID})
			}
		}
		if wrote {
			lastWrite = time.Now()
			// Flush once a fragment's worth is buffered, or at once
			// after a FLASH message's last bytes.
			if m == nil || bw.Buffered() >= cfg.FragmentSize || (m.Precedence == message.Flash && m.sent) {
				if err := flush(); err != nil {
					return err
				}
			}
			continue
		}
		if bw.Buffered() > 0 || len(sent) > 0 {
			if err := flush(); err != nil {
				return err
			}
		}
		select {
		case <-s.ctx.Done():
		case <-s.wake:
		case <-poll.C:
			s.mu.Lock()
			s.drained = false
			s.mu.Unlock()
		case <-hb.C:
			if time.Since(lastWrite) >= cfg.Heartbeat/2 {
				s.queueFrame(linkproto.Frame{Type: linkproto.FramePing, Nonce: randNonce()})
			}
		}
	}
}

// sendOrder is the order in which leased messages go out: most urgent
// precedence first, then the outbox's queue order (Outgoing.Seq), then the
// order they were leased in. Queue order matters because the peeker's
// small lease can return before a larger lease made just before it.
func sendOrder(a, b *outMsg) int {
	return cmp.Or(cmp.Compare(a.Precedence, b.Precedence), cmp.Compare(a.Outgoing.Seq, b.Outgoing.Seq), cmp.Compare(a.seq, b.seq))
}

// peekLease is the size of a lease made beside a lease under way when the
// queue signals new work: enough for a few FLASH.
const peekLease = 4

// leaser runs Outbox.Lease for the writer, one request at a time: each
// request is how many messages to lease. What it leases goes into s.out
// at once (so that settle releases it whatever happens next) and into
// s.fresh for the writer to take in. A session has two: the leaser
// proper, and the peeker (peek=true) for small leases beside it.
func (s *session) leaser(reqs <-chan int, resume map[message.ID]linkproto.Resume, peek bool) {
	cfg := &s.m.cfg
	party := s.p.party
	ctx := s.ctx
	if peek {
		ctx = context.WithValue(ctx, newsKey{}, true)
	}
	streaming, _ := cfg.Outbox.(StreamingOutbox)
	for n := range reqs {
		got := 0
		// With a StreamingOutbox the writer may send the first part
		// while the rest is sealed.
		take := func(part []Outgoing) {
			got += len(part)
			s.takeLeased(part, resume)
		}
		var err error
		if streaming != nil {
			err = streaming.LeaseStream(ctx, party, n, take)
		} else {
			var part []Outgoing
			part, err = cfg.Outbox.Lease(ctx, party, n)
			take(part)
		}
		if err != nil && s.ctx.Err() == nil {
			cfg.Logger.Warn("federation lease failed", "party", party, "err", err)
		}
		s.mu.Lock()
		if peek {
			s.peeking = false
		} else {
			s.leasing = false
			s.drained = got < n
		}
		s.mu.Unlock()
		poke(s.wake)
	}
}

// takeLeased puts leased messages in s.out (so that settle releases them
// whatever happens next) and in s.fresh for the writer, and wakes it. It
// reports false, taking nothing, once the session has settled: the caller
// still owns them then.
func (s *session) takeLeased(part []Outgoing, resume map[message.ID]linkproto.Resume) bool {
	s.mu.Lock()
	if s.out == nil {
		s.mu.Unlock()
		return false
	}
	for _, g := range part {
		if len(g.Wire) == 0 || len(g.Wire) > linkproto.MaxMessage || !g.Precedence.Valid() || s.out[g.ID] != nil {
			continue // the node's bug, or one we hold already; never put it on the wire twice
		}
		m := &outMsg{Outgoing: g, tag: linkproto.TagOf(g.Wire), seq: s.leaseSeq}
		s.leaseSeq++
		if r, ok := resume[g.ID]; ok && r.Tag == m.tag && r.Offset < uint64(len(g.Wire)) {
			m.next, m.recv = r.Offset, r.Offset
		}
		s.out[g.ID] = m
		s.fresh = append(s.fresh, m)
	}
	s.mu.Unlock()
	poke(s.wake)
	return true
}

// Connected reports whether a link session with party is up now.
func (m *Manager) Connected(party string) bool { return m.session(party) != nil }

// Hand gives the link session with party messages that the Outbox leased
// for it outside the link's own leases (a FLASH leased in the transaction
// that accepted it), to go out now, most urgent first, without waiting
// for a lease. It reports false when no session is up or it has ended;
// the caller then still owns the lease and should release it. Once Hand
// returns true, the session owns them as if it had leased them.
func (m *Manager) Hand(party string, msgs []Outgoing) bool {
	s := m.session(party)
	return s != nil && s.ctx.Err() == nil && s.takeLeased(msgs, nil)
}

type newsKey struct{}

// LeaseOnNews reports whether an Outbox.Lease call is the small lease a
// link makes beside its others when the Outbox signalled new work, so that
// a FLASH queued behind a backlog need not wait for a large lease: the
// Outbox may give it priority over its other work.
func LeaseOnNews(ctx context.Context) bool { return ctx.Value(newsKey{}) != nil }

// acker applies the custody ACKs and refusals the reader received (store
// writes: Outbox.Ack, Outbox.Refused) off the writer's path, until stop.
//
// The window has room as soon as a custody ACK is read (onAcks); what the
// acker writes is the queue's bookkeeping. So it lets ACKs gather, up to
// Config.AckGather of them or for Config.AckLinger, and writes them in one
// call: under load that is one store write for several ACK frames instead
// of one each. A refusal is written at once. What is still gathering when
// the session ends is written by settle.
func (s *session) acker(stop <-chan struct{}) {
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.ackWake:
		}
		if s.m.cfg.AckLinger > 0 && !s.acksDue() {
			linger.Reset(s.m.cfg.AckLinger)
		gather:
			for {
				select {
				case <-stop:
					linger.Stop()
					return
				case <-linger.C:
					break gather
				case <-s.ackWake:
					if s.acksDue() {
						linger.Stop()
						break gather
					}
				}
			}
		}
		s.applyAcks(s.m.ctx)
		poke(s.wake)
	}
}

// acksDue reports whether the ACKs received should be written now.
func (s *session) acksDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.custody) >= s.m.cfg.AckGather || len(s.refusals) > 0
}

// pick chooses the next fragment: the most urgent message that is under
// way or may start. A message may start while the window has room, or
// when it is more urgent than everything in flight (so a full window of
// ROUTINE never holds a FLASH back). The pipe is counted per precedence:
// a message waits only for the unacknowledged bytes of messages at least
// as urgent as itself, so a pipe full of ROUTINE does not hold a FLASH
// back either (the FLASH follows those bytes on the wire, not their ACKs).
func (s *session) pick(order []*outMsg) (*outMsg, uint64, uint64) {
	cfg := &s.m.cfg
	s.mu.Lock()
	defer s.mu.Unlock()
	n, bytes, urgent := 0, 0, message.Precedence(255)
	for _, m := range order {
		if m.started && !m.done {
			n++
			bytes += len(m.Wire)
			urgent = min(urgent, m.Precedence)
		}
	}
	room := n < cfg.Window && bytes < cfg.WindowBytes
	ahead, counted := 0, 0 // pipe bytes of precedences < counted
	for _, m := range order {
		if m.done || m.sent {
			continue
		}
		for ; counted <= int(m.Precedence); counted++ {
			ahead += s.pipe[counted]
		}
		if ahead >= cfg.PipeBytes {
			return nil, 0, 0 // order is most urgent first: no later message has less ahead
		}
		if !m.started && !room && m.Precedence >= urgent {
			continue
		}
		off := m.next
		end := min(off+uint64(cfg.FragmentSize), uint64(len(m.Wire)))
		m.next = end
		s.pipe[m.Precedence] += int(end - off)
		if !m.started {
			m.started = true
			s.inflight.Add(1)
		}
		m.sent = end == uint64(len(m.Wire))
		return m, off, end
	}
	return nil, 0, 0
}

// writeData writes one DATA frame without copying the chunk, or, for a
// message with shared ranges sent whole in this frame, a DATAREF frame.
func (s *session) writeData(bw *bufio.Writer, m *outMsg, off, end uint64) error {
	if off == 0 && end == uint64(len(m.Wire)) && len(m.Shared) > 0 && len(m.Wire) <= linkproto.MaxRefMessage {
		var err error
		if s.refBuf, err = s.interns.AppendDataRef(s.refBuf[:0], m.ID, m.tag, m.Precedence, m.Wire, m.Shared); err != nil {
			return err
		}
		_, err = bw.Write(s.refBuf)
		s.m.dataBytes.Add(int64(end - off))
		return err
	}
	var h [linkproto.MaxDataHeader]byte
	b := linkproto.AppendDataHeader(h[:0], m.ID, m.tag, m.Precedence, off, uint64(len(m.Wire)), int(end-off))
	if _, err := bw.Write(b); err != nil {
		return err
	}
	_, err := bw.Write(m.Wire[off:end])
	s.m.dataBytes.Add(int64(end - off))
	return err
}
