package xmpp

import (
	"strings"
	"sync"

	"liaison/internal/gateway/xmpp/stream"
	"liaison/internal/message"
)

type occupant struct {
	nick string
	sess *session
}

type room struct {
	Room
	mu        sync.Mutex           // guards occupants
	occupants map[string]*occupant // by nick
}

func (r *room) isOccupant(ss *session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.occupants {
		if o.sess == ss {
			return true
		}
	}
	return false
}

func (r *room) snapshot() []*occupant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*occupant, 0, len(r.occupants))
	for _, o := range r.occupants {
		out = append(out, o)
	}
	return out
}

func (r *room) nickOf(bare string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.occupants {
		if o.sess.jid.Bare() == bare {
			return o.nick
		}
	}
	if i := strings.IndexByte(bare, '@'); i > 0 {
		return bare[:i]
	}
	return bare
}

// fanout delivers a room message to each occupant cleared for its label
// (XEP-0258 §5.2.4); others are skipped and the withholding audited.
func (r *room) fanout(s *Server, m *message.Message, label []byte) {
	from := r.Name + "@" + s.cfg.MUCDomain + "/" + r.nickOf(m.Originator)
	for _, o := range r.snapshot() {
		if ok, why := s.cfg.Labels.ACDF(label, o.sess.user.Clearance); !ok {
			s.audit(AuditWithheld, m.ID.String(), "occupant "+o.sess.jid.Bare()+" not cleared: "+why)
			continue
		}
		st, err := s.stanza(m, label, from, o.sess, "groupchat")
		if err != nil {
			s.audit(AuditWithheld, m.ID.String(), err.Error())
			continue
		}
		o.sess.send(st)
	}
}

func presenceXML(from, to, typ string, self bool, jidAttr string) []byte {
	t := ""
	if typ != "" {
		t = " type='" + typ + "'"
	}
	x := "<x xmlns='" + nsMUCUser + "'><item affiliation='member' role='participant'"
	if typ == "unavailable" {
		x = "<x xmlns='" + nsMUCUser + "'><item affiliation='member' role='none'"
	}
	if jidAttr != "" {
		x += " jid='" + esc(jidAttr) + "'"
	}
	x += "/>"
	if self {
		x += "<status code='110'/>"
	}
	x += "</x>"
	return []byte("<presence from='" + esc(from) + "' to='" + esc(to) + "'" + t + ">" + x + "</presence>")
}

// handlePresence serves room joins and leaves; other presence is accepted
// and not broadcast (no roster subscriptions yet).
func (ss *session) handlePresence(e *stream.Element, raw []byte) {
	if e.Child(nsSecLabel, "securitylabel") != nil {
		// XEP-0258 §5: presence MUST NOT carry labels.
		ss.send([]byte("<presence type='error' from='" + esc(e.AttrValue("to")) + "' to='" + esc(ss.jid.String()) +
			"'><error type='modify'><bad-request xmlns='" + nsStanzas + "'/><text xmlns='" + nsStanzas +
			"'>presence must not carry a security label</text></error></presence>"))
		return
	}
	toS := e.AttrValue("to")
	if toS == "" {
		return
	}
	to, err := parseJID(toS)
	if err != nil || to.Domain != ss.srv.cfg.MUCDomain {
		return
	}
	rm := ss.srv.rooms[to.Local]
	errPres := func(cond, typ string) {
		ss.send([]byte("<presence type='error' from='" + esc(toS) + "' to='" + esc(ss.jid.String()) +
			"'><error type='" + typ + "'><" + cond + " xmlns='" + nsStanzas + "'/></error></presence>"))
	}
	if rm == nil {
		errPres("item-not-found", "cancel")
		return
	}
	if to.Resource == "" {
		errPres("jid-malformed", "modify")
		return
	}
	roomJID := rm.Name + "@" + ss.srv.cfg.MUCDomain
	switch e.AttrValue("type") {
	case "":
		rm.mu.Lock()
		if o := rm.occupants[to.Resource]; o != nil && o.sess != ss {
			rm.mu.Unlock()
			errPres("conflict", "cancel")
			return
		}
		var others []*occupant
		for _, o := range rm.occupants {
			if o.sess != ss {
				others = append(others, o)
			}
		}
		// One nick per session: a nick change replaces the old one.
		for n, o := range rm.occupants {
			if o.sess == ss {
				delete(rm.occupants, n)
			}
		}
		rm.occupants[to.Resource] = &occupant{nick: to.Resource, sess: ss}
		rm.mu.Unlock()
		for _, o := range others {
			ss.send(presenceXML(roomJID+"/"+o.nick, ss.jid.String(), "", false, o.sess.jid.String()))
			o.sess.send(presenceXML(roomJID+"/"+to.Resource, o.sess.jid.String(), "", false, ss.jid.String()))
		}
		ss.send(presenceXML(roomJID+"/"+to.Resource, ss.jid.String(), "", true, ss.jid.String()))
		ss.send([]byte("<message type='groupchat' from='" + esc(roomJID) + "' to='" + esc(ss.jid.String()) +
			"' id='" + randomID() + "'><subject/></message>"))
	case "unavailable":
		ss.srv.leave(rm, ss)
	}
}

func (s *Server) leave(rm *room, ss *session) {
	roomJID := rm.Name + "@" + s.cfg.MUCDomain
	rm.mu.Lock()
	nick := ""
	for n, o := range rm.occupants {
		if o.sess == ss {
			nick = n
			delete(rm.occupants, n)
		}
	}
	rest := make([]*occupant, 0, len(rm.occupants))
	for _, o := range rm.occupants {
		rest = append(rest, o)
	}
	rm.mu.Unlock()
	if nick == "" {
		return
	}
	ss.send(presenceXML(roomJID+"/"+nick, ss.jid.String(), "unavailable", true, ss.jid.String()))
	for _, o := range rest {
		o.sess.send(presenceXML(roomJID+"/"+nick, o.sess.jid.String(), "unavailable", false, ss.jid.String()))
	}
}

func (s *Server) leaveAll(ss *session) {
	for _, rm := range s.rooms {
		s.leave(rm, ss)
	}
}
