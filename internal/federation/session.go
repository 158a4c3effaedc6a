package federation

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"liaison/internal/federation/linkproto"
	"liaison/internal/message"
)

// session is one established link to a peer over one TLS connection. It
// runs three kinds of goroutine: the reader (decodes frames, never writes
// to the connection, so two peers both writing bulk data cannot deadlock),
// the writer (the only one writing: queued control frames and acks first,
// then the most urgent fragment) and one accepter passing whole messages
// to Inbox.AcceptBatch in arrival order.
//
// Lock order: Manager.mu before session.mu before inbound.mu.
type session struct {
	m       *Manager
	p       *peer
	conn    *tls.Conn
	dc      *deadlineConn
	dialer  string // party that dialed this connection
	since   time.Time
	hello   linkproto.Hello // the peer's
	ctx     context.Context
	cancel  context.CancelCauseFunc
	wake    chan struct{} // pokes the writer; capacity 1
	ackWake chan struct{} // pokes the acker; capacity 1
	done    chan struct{} // closed when the session has ended and settled
	acceptQ *acceptQueue
	interns linkproto.Interner // the writer's: shared strings sent
	refBuf  []byte             // the writer's: a DATAREF frame
	table   linkproto.Table    // the reader's: shared strings received

	notified atomic.Bool  // Outbox signalled new work
	inflight atomic.Int64 // for Status

	mu        sync.Mutex        // guards below
	ctl       []linkproto.Frame // frames for the writer to send before any data
	acks      map[message.ID]linkproto.AckEntry
	ackOrder  []message.ID
	custody   []message.ID // custody ACKs received, for the acker to pass to Outbox.Ack
	refusals  []linkproto.Refuse
	out       map[message.ID]*outMsg
	fresh     []*outMsg                // leased, for the writer to take into its order
	leasing   bool                     // the leaser is at work
	peeking   bool                     // the peeker is at work
	leaseSeq  uint64                   // leased messages so far: their order within a precedence
	drained   bool                     // the last lease came back short: wait for news or the poll
	forgotten uint64                   // messages forget removed from out, so far
	pipe      [message.Routine + 1]int // data bytes written and not yet acknowledged as received, by precedence
	closing   string                   // reason, once shutdown was called
	closeSent bool
}

// outMsg is a leased message in this session. next and recv are guarded
// by session.mu; the rest belongs to the writer.
type outMsg struct {
	Outgoing
	tag     linkproto.Tag
	seq     uint64
	next    uint64 // offset of the next byte to send
	recv    uint64 // bytes the peer reported holding
	started bool
	sent    bool // last fragment written
	done    bool // custody or refusal received
}

// runSession exchanges HELLOs on tc and, if the peer is accepted, runs the
// session until it ends. ctx bounds only the HELLO exchange.
func (m *Manager) runSession(ctx context.Context, tc *tls.Conn, party, dialer string) {
	remote := tc.RemoteAddr().String()
	p := m.lookup(party)
	if p == nil {
		tc.Close()
		return
	}
	if dl, ok := ctx.Deadline(); ok {
		tc.SetDeadline(dl)
	}
	dc := &deadlineConn{Conn: tc}
	br, bw := bufio.NewReaderSize(dc, 64<<10), bufio.NewWriterSize(dc, 64<<10)
	b, err := linkproto.AppendFrame(nil, &linkproto.Frame{Type: linkproto.FrameHello, Hello: linkproto.Hello{Party: m.cfg.Self, Epoch: m.epoch, Resume: p.in.resume()}})
	if err == nil {
		_, err = bw.Write(b)
	}
	if err == nil {
		err = bw.Flush()
	}
	var f linkproto.Frame
	if err == nil {
		_, err = linkproto.ReadFrame(br, &f, nil)
	}
	if err == nil && f.Type != linkproto.FrameHello {
		err = fmt.Errorf("%w: first frame is %s, want HELLO", linkproto.ErrProtocol, f.Type)
	}
	if err == nil && f.Hello.Party != party {
		err = fmt.Errorf("%w: HELLO names party %q, certificate %q", linkproto.ErrProtocol, f.Hello.Party, party)
	}
	if err != nil {
		tc.Close()
		m.event(Event{Kind: LinkDown, Party: party, Remote: remote, Err: fmt.Errorf("hello: %w", err)})
		return
	}
	tc.SetDeadline(time.Time{})
	dc.idle.Store(int64(3 * m.cfg.Heartbeat)) // from now on, before every read and write
	dc.widle.Store(int64(3 * m.cfg.Heartbeat))
	s := &session{
		m: m, p: p, conn: tc, dc: dc, dialer: dialer, since: time.Now(), hello: f.Hello,
		wake: make(chan struct{}, 1), ackWake: make(chan struct{}, 1), done: make(chan struct{}), acceptQ: newAcceptQueue(2*m.cfg.AcceptBatch, acceptQueueBytes),
		acks: map[message.ID]linkproto.AckEntry{}, out: map[message.ID]*outMsg{},
	}
	s.ctx, s.cancel = context.WithCancelCause(m.ctx)
	context.AfterFunc(s.ctx, func() { tc.Close() }) // unblocks a writer stuck on a dead link
	if old, ok := m.register(s); !ok {
		s.writeClose(bw, "duplicate link")
		s.cancel(errors.New("duplicate link"))
		return
	} else if old != nil {
		old.shutdown("replaced by a newer link")
	}
	m.event(Event{Kind: LinkUp, Party: party, Remote: remote})
	cause := s.run(br, bw)
	m.unregister(s)
	close(s.done)
	m.event(Event{Kind: LinkDown, Party: party, Remote: remote, Err: cause})
	poke(p.wake)
}

func (m *Manager) lookup(party string) *peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peers[party]
}

// register makes s the peer's session. When a session already exists, the
// one dialed by the party with the smaller name wins, so that two peers
// dialing each other at once keep the same connection; between two dialed
// by the same party the newer wins (the older is likely dead).
func (m *Manager) register(s *session) (old *session, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || !s.p.allowed {
		return nil, false
	}
	old = s.p.sess
	if old != nil && old.dialer < s.dialer {
		return nil, false
	}
	s.p.sess = s
	s.p.lastErr = ""
	if s.p.epoch != 0 && s.p.epoch != s.hello.Epoch {
		m.cfg.Logger.Info("federation peer restarted", "party", s.p.party)
	}
	s.p.epoch = s.hello.Epoch
	return old, true
}

func (m *Manager) unregister(s *session) {
	m.mu.Lock()
	if s.p.sess == s {
		s.p.sess = nil
	}
	m.mu.Unlock()
}

// shutdown asks the session to send CLOSE with reason and end.
func (s *session) shutdown(reason string) {
	s.mu.Lock()
	if s.closing == "" {
		s.closing = reason
	}
	s.mu.Unlock()
	poke(s.wake)
	// A writer stuck on a dead or very slow link must not hold Close up.
	time.AfterFunc(2*time.Second, func() { s.cancel(fmt.Errorf("closed: %s", reason)) })
}

func (s *session) queueFrame(f linkproto.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing != "" {
		return fmt.Errorf("link to %q is closing: %w", s.p.party, ErrNoLink)
	}
	s.ctl = append(s.ctl, f)
	poke(s.wake)
	return nil
}

func (s *session) queueAck(a linkproto.AckEntry) { s.queueAcks([]linkproto.AckEntry{a}) }

func (s *session) queueAcks(as []linkproto.AckEntry) {
	if len(as) == 0 {
		return
	}
	s.mu.Lock()
	for _, a := range as {
		if prev, ok := s.acks[a.ID]; !ok {
			s.ackOrder = append(s.ackOrder, a.ID)
		} else if prev.Kind == linkproto.AckCustody || (prev.Kind == linkproto.AckRewind && a.Kind == linkproto.AckProgress) {
			a = prev // custody and rewind outrank progress
		}
		s.acks[a.ID] = a
	}
	s.mu.Unlock()
	poke(s.wake)
}

// deadlineConn moves the connection's deadline forward before every read
// and write, so a link is dead after idle without progress, however long a
// frame takes to cross a slow link.
type deadlineConn struct {
	*tls.Conn
	idle  atomic.Int64 // read idle limit, ns; 0: leave deadlines alone
	widle atomic.Int64 // write idle limit, ns
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	if d := c.idle.Load(); d > 0 {
		c.Conn.SetReadDeadline(time.Now().Add(time.Duration(d)))
	}
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if d := c.widle.Load(); d > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(time.Duration(d)))
	}
	return c.Conn.Write(b)
}

func (s *session) writeClose(bw *bufio.Writer, reason string) {
	if s.dc != nil {
		s.dc.widle.Store(int64(time.Second))
	}
	s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	if b, err := linkproto.AppendFrame(nil, &linkproto.Frame{Type: linkproto.FrameClose, Reason: reason}); err == nil {
		bw.Write(b)
		bw.Flush()
	}
}

// run drives the session until it ends and returns why.
func (s *session) run(br *bufio.Reader, bw *bufio.Writer) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.cancel(s.read(br))
		s.conn.Close()
	}()
	var acc sync.WaitGroup
	acc.Go(s.accepter)
	acc.Go(s.flashAccepter)
	leases, peeks := make(chan int, 1), make(chan int, 1)
	stopAcker := make(chan struct{})
	resume := map[message.ID]linkproto.Resume{}
	for _, r := range s.hello.Resume {
		resume[r.ID] = r
	}
	var aux sync.WaitGroup
	aux.Go(func() { s.leaser(leases, resume, false) })
	aux.Go(func() { s.leaser(peeks, resume, true) })
	aux.Go(func() { s.acker(stopAcker) })
	s.cancel(s.write(bw, leases, peeks))
	s.conn.Close()
	close(leases)
	close(peeks)
	close(stopAcker)
	wg.Wait()
	s.acceptQ.close()
	acc.Wait()
	aux.Wait()
	s.settle()
	return context.Cause(s.ctx)
}

// read decodes frames until the connection fails or the peer closes.
func (s *session) read(br *bufio.Reader) error {
	var f linkproto.Frame
	var buf []byte
	var err error
	for {
		buf, err = linkproto.ReadFrame(br, &f, buf)
		if err != nil {
			if s.ctx.Err() != nil {
				return context.Cause(s.ctx)
			}
			return fmt.Errorf("read: %w", err)
		}
		switch f.Type {
		case linkproto.FrameData:
			s.onData(&f.Data)
		case linkproto.FrameDataRef:
			wire, err := s.table.Rebuild(&f.DataRef)
			if err != nil {
				return fmt.Errorf("read: %w", err)
			}
			r := &f.DataRef
			s.onData(&linkproto.Data{ID: r.ID, Tag: r.Tag, Precedence: r.Precedence, Total: r.Total, Chunk: wire})
		case linkproto.FrameAck:
			s.onAcks(f.Acks)
		case linkproto.FrameRefuse:
			s.mu.Lock()
			s.refusals = append(s.refusals, f.Refuse)
			s.mu.Unlock()
			poke(s.ackWake)
		case linkproto.FramePing:
			s.queueFrame(linkproto.Frame{Type: linkproto.FramePong, Nonce: f.Nonce})
		case linkproto.FramePong:
		case linkproto.FrameClose:
			return fmt.Errorf("closed by peer: %s", f.Reason)
		case linkproto.FrameControl:
			if s.m.cfg.Control != nil {
				s.m.cfg.Control(s.p.party, f.Control.Kind, append([]byte(nil), f.Control.Data...))
			}
		default:
			return fmt.Errorf("%w: unexpected %s", linkproto.ErrProtocol, f.Type)
		}
	}
}

// onData is the receiving side: reassemble, then queue whole messages for
// the accepter (blocking when the queue is full: backpressure).
func (s *session) onData(d *linkproto.Data) {
	whole, have, rewind := s.p.in.add(d)
	switch {
	case rewind:
		s.queueAck(linkproto.AckEntry{ID: d.ID, Kind: linkproto.AckRewind, Offset: have})
	case d.Offset == 0 && whole != nil:
		// A single-fragment message: its custody ACK will free the pipe;
		// a progress entry would only cost airtime.
	default:
		s.queueAck(linkproto.AckEntry{ID: d.ID, Kind: linkproto.AckProgress, Offset: have})
	}
	if whole != nil {
		s.acceptQ.push(s.ctx, acceptJob{id: d.ID, prec: d.Precedence, wire: whole})
	}
}

// acceptQueueBytes bounds the bytes of whole messages waiting for the
// Inbox (one message always fits).
const acceptQueueBytes = 16 << 20

// accepter passes the whole messages received other than FLASH, as many
// as are waiting (up to Config.AcceptBatch) and in the acceptQueue's
// order, to the Inbox, then acknowledges custody, refuses, or ends the
// link, per message. With a PreparingInbox it checks the next batch while
// the last one commits: the accepter prepares, a committer stores, both in
// order. Before checking a batch, and (pipelined) again before storing
// it, it waits for the FLASH messages received so far, which
// flashAccepter stores beside it.
func (s *session) accepter() {
	type prepared struct {
		jobs   []acceptJob
		commit func() []error
	}
	pi, pipelined := s.m.cfg.Inbox.(PreparingInbox)
	var ready chan prepared
	var committer sync.WaitGroup
	if pipelined {
		ready = make(chan prepared, 1)
		committer.Go(func() {
			for p := range ready {
				<-s.acceptQ.flashWait()
				s.accepted(p.jobs, p.commit())
			}
		})
		defer committer.Wait()
		defer close(ready)
	}
	for {
		jobs := s.acceptQ.take(s.m.cfg.AcceptBatch, false)
		if jobs == nil {
			return
		}
		wires := wiresOf(jobs)
		// Not begun while a FLASH received before it is being stored:
		// checking a batch (signatures, decryption, the guard) takes the
		// CPU the FLASH's accepter needs.
		<-s.acceptQ.flashWait()
		// The Manager's context, not the session's: a store commit that
		// has begun is allowed to finish when the link drops.
		if pipelined {
			ready <- prepared{jobs, pi.PrepareBatch(s.m.ctx, s.p.party, wires)}
			continue
		}
		s.accepted(jobs, s.m.cfg.Inbox.AcceptBatch(s.m.ctx, s.p.party, wires))
	}
}

// flashAccepter stores FLASH messages as they arrive, beside the accepter,
// so that a FLASH waits neither for the batch the accepter is checking nor
// for those the committer has yet to store (they wait for it instead).
func (s *session) flashAccepter() {
	pi, pipelined := s.m.cfg.Inbox.(PreparingInbox)
	for {
		jobs := s.acceptQ.take(s.m.cfg.AcceptBatch, true)
		if jobs == nil {
			return
		}
		wires := wiresOf(jobs)
		var errs []error
		if pipelined {
			errs = pi.PrepareBatch(s.m.ctx, s.p.party, wires)()
		} else {
			errs = s.m.cfg.Inbox.AcceptBatch(s.m.ctx, s.p.party, wires)
		}
		s.accepted(jobs, errs)
		s.acceptQ.flashStored(len(jobs))
		// Their custody ACKs (the writer), the node's readers of the
		// channel and the batch waiting for them are runnable now: let
		// them run first.
		runtime.Gosched()
	}
}

func wiresOf(jobs []acceptJob) [][]byte {
	wires := make([][]byte, len(jobs))
	for i, j := range jobs {
		wires[i] = j.wire
	}
	return wires
}

// accepted answers the Inbox's results for jobs.
func (s *session) accepted(jobs []acceptJob, errs []error) {
	if len(errs) != len(jobs) {
		s.m.cfg.Logger.Error("federation inbox answered the wrong number of results", "party", s.p.party, "n", len(jobs), "results", len(errs))
		s.shutdown("receiver could not store a message")
		return
	}
	acks := make([]linkproto.AckEntry, 0, len(jobs))
	failed := false
	for i, j := range jobs {
		err := errs[i]
		var ref *RefusalError
		switch {
		case err == nil:
			acks = append(acks, linkproto.AckEntry{ID: j.id, Kind: linkproto.AckCustody})
		case errors.As(err, &ref):
			detail := ref.Detail
			if len(detail) > linkproto.MaxDetailLen {
				detail = nil // the peer would reject the frame and the link
			}
			s.queueFrame(linkproto.Frame{Type: linkproto.FrameRefuse, Refuse: linkproto.Refuse{ID: j.id, Code: trunc(ref.Code, linkproto.MaxCodeLen), Reason: trunc(ref.Reason, linkproto.MaxReasonLen), Detail: detail}})
		default:
			// The node could not store it (store down, shutting down):
			// end the link so the sender retries after its backoff.
			s.m.cfg.Logger.Warn("federation inbox failed", "party", s.p.party, "id", j.id, "err", err)
			failed = true
		}
	}
	s.queueAcks(acks)
	if failed {
		s.shutdown("receiver could not store a message")
	}
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// onAcks applies the peer's acknowledgements of our data.
func (s *session) onAcks(acks []linkproto.AckEntry) {
	custody := false
	s.mu.Lock()
	for _, a := range acks {
		m := s.out[a.ID]
		if m == nil || m.done {
			continue
		}
		switch a.Kind {
		case linkproto.AckCustody:
			s.pipe[m.Precedence] -= int(m.next - m.recv)
			m.recv = m.next
			// Done now, so that the window has room before the acker has
			// written it to the queue (it undoes this if that fails).
			m.done = true
			s.custody = append(s.custody, a.ID)
			custody = true
		case linkproto.AckProgress:
			if a.Offset > m.recv && a.Offset <= m.next {
				s.pipe[m.Precedence] -= int(a.Offset - m.recv)
				m.recv = a.Offset
			}
		case linkproto.AckRewind:
			if a.Offset <= uint64(len(m.Wire)) {
				s.pipe[m.Precedence] -= int(m.next - m.recv)
				m.next, m.recv, m.sent = a.Offset, a.Offset, false
			}
		}
	}
	s.mu.Unlock()
	if custody {
		poke(s.ackWake)
	}
	poke(s.wake)
}

// settle runs after the connection is gone: it applies custody and
// refusals that arrived, and releases every other leased message.
func (s *session) settle() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.applyAcks(ctx)
	var ids []message.ID
	s.mu.Lock()
	for id, m := range s.out {
		if !m.done {
			ids = append(ids, id)
		}
	}
	s.out = nil
	s.mu.Unlock()
	s.inflight.Store(0)
	if len(ids) > 0 {
		if err := s.m.cfg.Outbox.Release(ctx, s.p.party, ids...); err != nil {
			s.m.cfg.Logger.Warn("federation release failed", "party", s.p.party, "n", len(ids), "err", err)
		}
	}
}

// applyAcks passes received custody ACKs and refusals to the Outbox.
func (s *session) applyAcks(ctx context.Context) {
	s.mu.Lock()
	custody, refusals := s.custody, s.refusals
	s.custody, s.refusals = nil, nil
	for _, id := range custody {
		if m := s.out[id]; m != nil {
			m.done = true
		}
	}
	s.mu.Unlock()
	party := s.p.party
	if len(custody) > 0 {
		if err := s.m.cfg.Outbox.Ack(ctx, party, custody...); err != nil {
			// Not deleted from the queue: it will be sent again and the
			// receiver's de-duplication absorbs it.
			s.m.cfg.Logger.Warn("federation outbox ack failed", "party", party, "n", len(custody), "err", err)
			s.mu.Lock()
			for _, id := range custody {
				if m := s.out[id]; m != nil {
					if m.started {
						s.inflight.Add(-1)
					}
					m.done = false
					m.next, m.recv, m.sent, m.started = 0, 0, false, false
				}
			}
			s.mu.Unlock()
			return
		}
		s.forget(custody)
		if s.m.cfg.Delivery != nil {
			ds := make([]Delivery, len(custody))
			for i, id := range custody {
				ds[i] = Delivery{Kind: Delivered, Party: party, ID: id}
			}
			s.m.cfg.Delivery(ds)
		}
	}
	for _, r := range refusals {
		s.mu.Lock()
		m := s.out[r.ID]
		if m != nil && !m.done {
			m.done = true
			s.pipe[m.Precedence] -= int(m.next - m.recv)
		}
		s.mu.Unlock()
		if m == nil {
			continue
		}
		if err := s.m.cfg.Outbox.Refused(ctx, party, r.ID, r.Code, r.Reason); err != nil {
			s.m.cfg.Logger.Warn("federation outbox refused failed", "party", party, "id", r.ID, "err", err)
			continue
		}
		s.forget([]message.ID{r.ID})
		if s.m.cfg.Delivery != nil {
			s.m.cfg.Delivery([]Delivery{{Kind: Refused, Party: party, ID: r.ID, Code: r.Code, Reason: r.Reason}})
		}
	}
}

func (s *session) forget(ids []message.ID) {
	s.mu.Lock()
	for _, id := range ids {
		if s.out != nil {
			if m := s.out[id]; m != nil {
				if m.started {
					s.inflight.Add(-1)
				}
				s.forgotten++
			}
			delete(s.out, id)
		}
	}
	s.mu.Unlock()
}
