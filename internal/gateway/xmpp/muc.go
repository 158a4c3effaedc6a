package xmpp

import (
	"strings"
	"sync"

	"liaison/internal/gateway/xmpp/stream"
	"liaison/internal/message"
)

// occupant is a room member: a local session, or a partner user reached
// over S2S (remote set, clearance = the agreement's peer clearance).
type occupant struct {
	nick   string
	sess   *session
	remote *partner
	rjid   jid // full JID of a remote occupant
}

func (o *occupant) full() string {
	if o.sess != nil {
		return o.sess.jid.String()
	}
	return o.rjid.String()
}

func (o *occupant) bare() string {
	if o.sess != nil {
		return o.sess.jid.Bare()
	}
	return o.rjid.Bare()
}

func (o *occupant) clearance() []byte {
	if o.sess != nil {
		return o.sess.user.Clearance
	}
	return o.remote.Clearance
}

func (o *occupant) lang() string {
	if o.sess != nil {
		return o.sess.lang
	}
	return ""
}

// sendTo writes a stanza from the room service to an occupant.
func (s *Server) sendTo(o *occupant, b []byte) {
	if o.sess != nil {
		o.sess.send(b)
		return
	}
	if err := s.sendPartner(o.remote, s.cfg.MUCDomain, b); err != nil {
		s.log.Debug("xmpp: room delivery to partner failed", "partner", o.remote.Domain, "err", err)
	}
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

func (r *room) remoteOccupant(full jid) *occupant {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.occupants {
		if o.sess == nil && o.rjid == full {
			return o
		}
	}
	return nil
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
		if o.bare() == bare {
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
// Remote occupants are judged by their partner's peer clearance.
func (r *room) fanout(s *Server, m *message.Message, label []byte) {
	from := r.Name + "@" + s.cfg.MUCDomain + "/" + r.nickOf(m.Originator)
	for _, o := range r.snapshot() {
		if o.remote != nil && !o.remote.inForce(s.cfg.Now()) {
			s.audit(AuditWithheld, m.ID.String(), "agreement with "+o.remote.Domain+" not in force")
			continue
		}
		if ok, why := s.cfg.Labels.ACDF(label, o.clearance()); !ok {
			s.audit(AuditWithheld, m.ID.String(), "occupant "+o.bare()+" not cleared: "+why)
			continue
		}
		st, err := s.stanza(m, label, from, o.full(), o.lang(), "groupchat")
		if err != nil {
			s.audit(AuditWithheld, m.ID.String(), err.Error())
			continue
		}
		s.sendTo(o, st)
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
	ss.srv.roomPresence(&occupant{sess: ss}, to, e.AttrValue("type"))
}

// roomPresence joins or leaves a room for a local or remote occupant.
func (s *Server) roomPresence(who *occupant, to jid, typ string) {
	rm := s.rooms[to.Local]
	errPres := func(cond, etyp string) {
		s.sendTo(who, []byte("<presence type='error' from='"+esc(to.String())+"' to='"+esc(who.full())+
			"'><error type='"+etyp+"'><"+cond+" xmlns='"+nsStanzas+"'/></error></presence>"))
	}
	if rm == nil {
		errPres("item-not-found", "cancel")
		return
	}
	if to.Resource == "" {
		errPres("jid-malformed", "modify")
		return
	}
	if typ == "unavailable" {
		s.leave(rm, who)
		return
	}
	if typ != "" {
		return
	}
	roomJID := rm.Name + "@" + s.cfg.MUCDomain
	same := func(o *occupant) bool { return o.full() == who.full() }
	rm.mu.Lock()
	if o := rm.occupants[to.Resource]; o != nil && !same(o) {
		rm.mu.Unlock()
		errPres("conflict", "cancel")
		return
	}
	var others []*occupant
	for n, o := range rm.occupants {
		if same(o) {
			delete(rm.occupants, n) // one nick per occupant: a nick change replaces it
		} else {
			others = append(others, o)
		}
	}
	who.nick = to.Resource
	rm.occupants[to.Resource] = who
	rm.mu.Unlock()
	for _, o := range others {
		s.sendTo(who, presenceXML(roomJID+"/"+o.nick, who.full(), "", false, o.full()))
		s.sendTo(o, presenceXML(roomJID+"/"+who.nick, o.full(), "", false, who.full()))
	}
	s.sendTo(who, presenceXML(roomJID+"/"+who.nick, who.full(), "", true, who.full()))
	s.sendTo(who, []byte("<message type='groupchat' from='"+esc(roomJID)+"' to='"+esc(who.full())+
		"' id='"+randomID()+"'><subject/></message>"))
}

// leave removes an occupant (matched by full JID) and tells the room.
func (s *Server) leave(rm *room, who *occupant) {
	roomJID := rm.Name + "@" + s.cfg.MUCDomain
	rm.mu.Lock()
	var gone *occupant
	for n, o := range rm.occupants {
		if (who.sess != nil && o.sess == who.sess) || (who.sess == nil && o.sess == nil && o.rjid == who.rjid) {
			gone = o
			delete(rm.occupants, n)
		}
	}
	rest := make([]*occupant, 0, len(rm.occupants))
	for _, o := range rm.occupants {
		rest = append(rest, o)
	}
	rm.mu.Unlock()
	if gone == nil {
		return
	}
	s.sendTo(gone, presenceXML(roomJID+"/"+gone.nick, gone.full(), "unavailable", true, gone.full()))
	for _, o := range rest {
		s.sendTo(o, presenceXML(roomJID+"/"+gone.nick, o.full(), "unavailable", false, gone.full()))
	}
}

func (s *Server) leaveAll(ss *session) {
	for _, rm := range s.rooms {
		s.leave(rm, &occupant{sess: ss})
	}
}
