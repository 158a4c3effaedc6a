package xmpp

import (
	"errors"
	"mime"
	"strings"

	"liaison/internal/gateway/xmpp/stream"
	"liaison/internal/message"
)

// Content type of XMPP bodies; the "to" parameter names the recipient's
// bare JID on the 1:1 channel.
const contentType = "text/plain"

// handleMessage takes a client's message: chat to a user or groupchat to a
// room. The label is decided before anything leaves the session.
func (ss *session) handleMessage(e *stream.Element, raw []byte) {
	typ := e.AttrValue("type")
	if typ == "error" {
		return
	}
	toS := e.AttrValue("to")
	to, err := parseJID(toS)
	if err != nil {
		ss.bounce(e, ss.srv.cfg.Domain, "modify", "jid-malformed", "", "malformed to")
		return
	}
	body := e.Child(stream.NSClient, "body")
	if body == nil {
		return // chat states, receipts: not carried across the boundary
	}
	cfg := &ss.srv.cfg
	var channel, roomName string
	var rm *room
	var p *partner
	switch {
	case typ == "groupchat":
		if to.Domain != cfg.MUCDomain || to.Resource != "" {
			ss.bounce(e, toS, "modify", "bad-request", "", "groupchat must go to a room")
			return
		}
		if rm = ss.srv.rooms[to.Local]; rm == nil {
			ss.bounce(e, toS, "cancel", "item-not-found", "", "no such room")
			return
		}
		if !rm.isOccupant(ss) {
			ss.bounce(e, toS, "modify", "not-acceptable", "", "not an occupant")
			return
		}
		channel, roomName = rm.Channel, rm.Name
	case to.Domain == cfg.MUCDomain:
		ss.bounce(e, toS, "cancel", "feature-not-implemented", "", "private room messages are not supported")
		return
	default:
		if to.Local == "" {
			ss.bounce(e, toS, "cancel", "service-unavailable", "", "")
			return
		}
		channel = cfg.DirectChannel
		if to.Domain == cfg.Domain {
			if _, ok := cfg.Users.User(to.Local); !ok {
				ss.bounce(e, toS, "cancel", "service-unavailable", "", "") // RFC 6121 §8.5.2.2.1
				return
			}
		} else {
			p = ss.srv.partnerFor(to.Domain)
			if p == nil {
				ss.bounce(e, toS, "cancel", "remote-server-not-found", "", "no agreement with "+to.Domain)
				return
			}
			channel = p.Channel
		}
	}
	id := message.NewID()
	label, reason := ss.ingressLabel(e, raw, channel)
	if label == nil {
		ss.srv.audit(AuditBounced, id.String(), reason)
		ss.bounce(e, toS, "modify", "not-acceptable", "", reason)
		return
	}
	if ok, why := cfg.Labels.ACDF(label, ss.user.Clearance); !ok {
		reason := "label above sender clearance: " + why
		ss.srv.audit(AuditBounced, id.String(), reason)
		ss.bounce(e, toS, "auth", "forbidden", "", reason)
		return
	}
	if rm != nil {
		if ok, why := cfg.Labels.Permit(label, roomName); !ok {
			reason := "label not permitted in room " + roomName + ": " + why
			ss.srv.audit(AuditBounced, id.String(), reason)
			ss.bounce(e, toS, "auth", "forbidden", "", reason)
			return
		}
	}
	if p != nil {
		if !p.inForce(cfg.Now()) {
			reason := "agreement with " + p.Domain + " not in force"
			ss.srv.audit(AuditBounced, id.String(), reason)
			ss.bounce(e, toS, "cancel", "remote-server-not-found", "", reason)
			return
		}
		if ok, why := cfg.Labels.ACDF(label, p.Clearance); !ok {
			reason := "label not releasable to " + p.Domain + ": " + why
			ss.srv.audit(AuditBounced, id.String(), reason)
			ss.bounce(e, toS, "auth", "forbidden", "", reason)
			return
		}
	}
	ct := contentType
	if rm == nil {
		ct = mime.FormatMediaType(contentType, map[string]string{"to": to.Bare()})
		if len(ct) > message.MaxContentType || ct == "" {
			ss.bounce(e, toS, "modify", "jid-malformed", "", "recipient too long")
			return
		}
	}
	m := &message.Message{
		ID: id, Channel: channel, Origin: cfg.Party, Originator: ss.jid.Bare(),
		Precedence: message.Routine, Created: cfg.Now().UTC(), Label: label,
		ContentType: ct, Body: []byte(body.Text),
	}
	// Submitted in order with the stream's other messages while the
	// reader goes on; the session handles it before answering an
	// XEP-0198 <r/> or taking any other stanza.
	ss.sub.add(pending{m: m, refused: func(err error) {
		reason := "refused: " + err.Error()
		ss.srv.audit(AuditBounced, id.String(), reason)
		ss.bounce(e, toS, "auth", "forbidden", "", reason)
	}})
}

// ingressLabel returns the message's effective label (STANAG 4774 XML), or
// nil and the reason it has none (XEP-0258 §5: nil label always denies).
func (ss *session) ingressLabel(e *stream.Element, raw []byte, channel string) ([]byte, string) {
	sl, found, err := parseSecLabel(e, raw)
	if err != nil {
		return nil, err.Error()
	}
	if !found || sl.Label == nil {
		if d := ss.srv.cfg.Labels.DefaultLabel(channel); len(d) > 0 {
			return d, ""
		}
		return nil, "no label and no default label for channel " + channel
	}
	l, err := ss.srv.effectiveLabel(sl)
	if err != nil {
		return nil, "unreadable label: " + err.Error()
	}
	return l, ""
}

// bounce returns an error for a refused stanza. Errors carry no label and
// none of the refused content (XEP-0258 §5).
func (ss *session) bounce(e *stream.Element, from, typ, cond, _ string, text string) {
	var b strings.Builder
	b.WriteString("<" + e.Name.Local + " type='error' id='" + esc(e.AttrValue("id")) + "' from='" + esc(from) +
		"' to='" + esc(ss.jid.String()) + "'><error type='" + typ + "'><" + cond + " xmlns='" + nsStanzas + "'/>")
	if text != "" {
		b.WriteString("<text xmlns='" + nsStanzas + "'>" + esc(text) + "</text>")
	}
	b.WriteString("</error></" + e.Name.Local + ">")
	ss.send([]byte(b.String()))
}

// deliver releases one channel message to local recipients, each under
// the ACDF for their clearance.
func (s *Server) deliver(d Delivery) {
	m := d.Msg
	if m == nil || m.Created.Before(s.started) {
		return
	}
	label := d.LocalLabel
	if label == nil {
		label = m.Label
	}
	if rm := s.byChan[m.Channel]; rm != nil {
		rm.fanout(s, m, label)
		return
	}
	if m.Channel != s.cfg.DirectChannel && s.pByChan[m.Channel] == nil {
		return
	}
	_, params, err := mime.ParseMediaType(m.ContentType)
	if err != nil {
		return
	}
	to, err := parseJID(params["to"])
	if err != nil {
		return
	}
	if to.Domain != s.cfg.Domain {
		if p := s.partnerFor(to.Domain); p != nil && m.Origin == s.cfg.Party {
			s.egress(p, m, label, to)
		}
		return
	}
	from := m.Originator
	for _, ss := range s.sessionsOf(to.Bare()) {
		if ok, why := s.cfg.Labels.ACDF(label, ss.user.Clearance); !ok {
			s.audit(AuditWithheld, m.ID.String(), "recipient "+to.Bare()+" not cleared: "+why)
			continue
		}
		st, err := s.stanza(m, label, from, ss.jid.String(), ss.lang, "chat")
		if err != nil {
			s.audit(AuditWithheld, m.ID.String(), err.Error())
			continue
		}
		ss.send(st)
	}
}

var errNoMarking = errors.New("no display marking")

func (s *Server) stanza(m *message.Message, label []byte, from, to, lang, typ string) ([]byte, error) {
	sl, err := s.secLabelXML(label, lang)
	if err != nil {
		return nil, errors.Join(errNoMarking, err)
	}
	var b strings.Builder
	b.Grow(256 + len(m.Body) + len(sl))
	b.WriteString("<message type='" + typ + "' id='" + m.ID.String() + "' from='" + esc(from) + "' to='" +
		esc(to) + "'><body>")
	b.WriteString(esc(string(m.Body)))
	b.WriteString("</body>")
	b.WriteString(sl)
	b.WriteString("</message>")
	return []byte(b.String()), nil
}
