package xmpp

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"liaison/internal/gateway/xmpp/stream"
)

// XEP-0198 stream management: acks and resumption for poor links. Stanzas
// sent after <enable/> stay queued until the client acknowledges them; a
// resumable session that loses its connection stays registered (deliveries
// keep queueing) for Config.ResumeTimeout, and a <resume/> on a new
// connection retransmits whatever was not acknowledged.
const (
	nsSM       = "urn:xmpp:sm:3"
	maxUnacked = 10000
	ackEvery   = 32
)

type sm struct {
	smOn     atomic.Bool
	smResume bool
	smID     string
	hIn      uint32 // stanzas handled from the client (reader goroutine only)

	smMu     sync.Mutex // guards the fields below
	outSeq   uint32     // stanzas sent since enable
	unacked  [][]byte   // the last len(unacked) stanzas sent
	detached bool       // connection lost, waiting for resumption
	taken    bool       // resumed by another connection
}

func isStanza(b []byte) bool {
	return bytes.HasPrefix(b, []byte("<message")) || bytes.HasPrefix(b, []byte("<presence")) || bytes.HasPrefix(b, []byte("<iq"))
}

func (ss *session) smTrack(b []byte) {
	ss.smMu.Lock()
	if len(ss.unacked) >= maxUnacked {
		ss.smMu.Unlock()
		ss.srv.log.Warn("xmpp: too many unacknowledged stanzas, closing", "jid", ss.jid.String())
		ss.close()
		return
	}
	ss.unacked = append(ss.unacked, b)
	ss.outSeq++
	req := ss.outSeq%ackEvery == 0
	detached := ss.detached
	ss.smMu.Unlock()
	if detached {
		return
	}
	ss.enqueue(b)
	if req {
		ss.enqueue([]byte("<r xmlns='" + nsSM + "'/>"))
	}
}

// ack drops the stanzas the client has handled (h counts from enable).
func (ss *session) ack(h uint32) {
	ss.smMu.Lock()
	defer ss.smMu.Unlock()
	first := ss.outSeq - uint32(len(ss.unacked)) // seq of unacked[0] minus one
	n := int(h - first)
	if n < 0 || n > len(ss.unacked) {
		return
	}
	ss.unacked = ss.unacked[n:]
}

func (ss *session) handleSM(e *stream.Element) {
	switch e.Name.Local {
	case "enable":
		if ss.smOn.Load() {
			ss.enqueue([]byte("<failed xmlns='" + nsSM + "'><unexpected-request xmlns='" + nsStanzas + "'/></failed>"))
			return
		}
		res := ""
		if r := e.AttrValue("resume"); r == "true" || r == "1" {
			ss.smResume = true
			ss.smID = randomID()
			ss.srv.mu.Lock()
			ss.srv.smIDs[ss.smID] = ss
			ss.srv.mu.Unlock()
			res = " id='" + ss.smID + "' resume='true' max='" + strconv.Itoa(int(ss.srv.cfg.ResumeTimeout.Seconds())) + "'"
		}
		ss.smOn.Store(true)
		ss.enqueue([]byte("<enabled xmlns='" + nsSM + "'" + res + "/>"))
	case "r":
		ss.enqueue([]byte("<a xmlns='" + nsSM + "' h='" + strconv.FormatUint(uint64(ss.hIn), 10) + "'/>"))
	case "a":
		if h, err := strconv.ParseUint(e.AttrValue("h"), 10, 32); err == nil {
			ss.ack(uint32(h))
		}
	}
}

// detach keeps a resumable session registered after its connection is
// lost. It reports false when the session is not resumable.
func (ss *session) detach() bool {
	if !ss.smResume {
		return false
	}
	ss.smMu.Lock()
	ss.detached = true
	ss.smMu.Unlock()
	time.AfterFunc(ss.srv.cfg.ResumeTimeout, func() {
		ss.smMu.Lock()
		expired := ss.detached && !ss.taken
		ss.taken = true
		ss.smMu.Unlock()
		if expired {
			ss.srv.mu.Lock()
			delete(ss.srv.smIDs, ss.smID)
			ss.srv.mu.Unlock()
			ss.srv.unregister(ss)
		}
	})
	return true
}

// resume attaches a new, authenticated connection to a detached session.
func (s *Server) resume(ns *session, e *stream.Element) bool {
	h, err := strconv.ParseUint(e.AttrValue("h"), 10, 32)
	if err != nil {
		return false
	}
	s.mu.Lock()
	old := s.smIDs[e.AttrValue("previd")]
	s.mu.Unlock()
	if old == nil || old.user.Name != ns.user.Name {
		return false
	}
	old.smMu.Lock()
	if !old.detached || old.taken {
		old.smMu.Unlock()
		return false
	}
	old.taken = true
	old.smMu.Unlock()
	old.ack(uint32(h))
	old.smMu.Lock()
	ns.outSeq, ns.unacked = old.outSeq, old.unacked
	old.smMu.Unlock()
	ns.jid, ns.lang = old.jid, old.lang
	ns.smResume, ns.smID, ns.hIn = true, old.smID, old.hIn
	ns.smOn.Store(true)
	ns.resumed = true
	// Swap the new session in everywhere the old one was referenced.
	s.mu.Lock()
	s.smIDs[ns.smID] = ns
	if m := s.sessions[ns.jid.Bare()]; m != nil && m[ns.jid.Resource] == old {
		m[ns.jid.Resource] = ns
	} else {
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	for _, rm := range s.rooms {
		rm.mu.Lock()
		for _, o := range rm.occupants {
			if o.sess == old {
				o.sess = ns
			}
		}
		rm.mu.Unlock()
	}
	ns.writeNow("<resumed xmlns='" + nsSM + "' previd='" + esc(ns.smID) + "' h='" + strconv.FormatUint(uint64(ns.hIn), 10) + "'/>")
	return true
}

// retransmit resends every unacknowledged stanza after a resumption.
func (ss *session) retransmit() {
	ss.smMu.Lock()
	q := append([][]byte(nil), ss.unacked...)
	ss.smMu.Unlock()
	for _, b := range q {
		ss.enqueue(b)
	}
	ss.enqueue([]byte("<r xmlns='" + nsSM + "'/>"))
}
