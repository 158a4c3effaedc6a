package xmpp

import (
	"context"
	"mime"
	"strconv"
	"strings"
	"time"

	"liaison/internal/gateway/xmpp/stream"
)

// XEP-0313 message archive. The archive is the channel history the core
// keeps: a query replays the channel from the start up to the last message
// the gateway has seen, and returns only what the requester's clearance
// grants (ACDF per message) and what concerns them.
const (
	nsMAM     = "urn:xmpp:mam:2"
	nsForward = "urn:xmpp:forward:0"
	nsDelay   = "urn:xmpp:delay"
	nsRSM     = "http://jabber.org/protocol/rsm"
	mamMax    = 100
)

func (s *Server) noteSeq(ch string, seq uint64) {
	s.mu.Lock()
	if seq > s.lastSeq[ch] {
		s.lastSeq[ch] = seq
	}
	s.mu.Unlock()
}

// mamQuery answers <query xmlns='urn:xmpp:mam:2'/> sent to the user's own
// bare JID (1:1 archive) or to a room.
func (ss *session) mamQuery(e, q *stream.Element, target jid, to string) {
	srv := ss.srv
	var channel, roomJID string
	var rm *room
	switch {
	case target.Domain == srv.cfg.MUCDomain && srv.rooms[target.Local] != nil:
		rm = srv.rooms[target.Local]
		channel, roomJID = rm.Channel, rm.Name+"@"+srv.cfg.MUCDomain
	case target.Bare() == ss.jid.Bare() || (target.Local == "" && target.Domain == srv.cfg.Domain):
		channel = srv.cfg.DirectChannel
	default:
		ss.iqError(e, to, "cancel", "item-not-found")
		return
	}
	max := mamMax
	if set := q.Child(nsRSM, "set"); set != nil {
		if m := set.Child(nsRSM, "max"); m != nil {
			if n, err := strconv.Atoi(strings.TrimSpace(m.Text)); err == nil && n >= 0 && n < max {
				max = n
			}
		}
	}
	channels := []string{channel}
	if rm == nil {
		for _, p := range srv.cfg.Partners {
			channels = append(channels, p.Channel)
		}
	}
	me := ss.jid.Bare()
	var hits []string
	for _, ch := range channels {
		srv.mu.Lock()
		last := srv.lastSeq[ch]
		srv.mu.Unlock()
		if last == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(srv.ctx, 10*time.Second)
		sub, err := srv.cfg.Core.Subscribe(ctx, ch, 0)
		if err != nil {
			cancel()
			ss.iqError(e, to, "wait", "internal-server-error")
			return
		}
	read:
		for {
			select {
			case <-ctx.Done():
				break read
			case d, ok := <-sub:
				if !ok {
					break read
				}
				if x := ss.archived(d, rm, roomJID, me); x != "" {
					hits = append(hits, x)
				}
				if d.Seq >= last {
					break read
				}
			}
		}
		cancel()
	}
	if len(hits) > max {
		hits = hits[len(hits)-max:]
	}
	qid := esc(q.AttrValue("queryid"))
	for _, h := range hits {
		ss.send([]byte(strings.Replace(h, "@QID@", qid, 1)))
	}
	ss.iqResult(e, to, "<fin xmlns='"+nsMAM+"' complete='true'><set xmlns='"+nsRSM+"'><count>"+strconv.Itoa(len(hits))+"</count></set></fin>")
}

// archived renders one archived message for the requester, or "" if it is
// not theirs to see.
func (ss *session) archived(d Delivery, rm *room, roomJID, me string) string {
	m := d.Msg
	if m == nil {
		return ""
	}
	srv := ss.srv
	var from, to, typ string
	if rm != nil {
		from, to, typ = roomJID+"/"+rm.nickOf(m.Originator), ss.jid.String(), "groupchat"
	} else {
		_, params, err := mime.ParseMediaType(m.ContentType)
		if err != nil {
			return ""
		}
		rcpt, err := parseJID(params["to"])
		if err != nil || (m.Originator != me && rcpt.Bare() != me) {
			return ""
		}
		from, to, typ = m.Originator, rcpt.Bare(), "chat"
	}
	label := d.LocalLabel
	if label == nil {
		label = m.Label
	}
	if ok, why := srv.cfg.Labels.ACDF(label, ss.user.Clearance); !ok {
		srv.audit(AuditWithheld, m.ID.String(), "archive replay to "+me+": "+why)
		return ""
	}
	sl, err := srv.secLabelXML(label, ss.lang)
	if err != nil {
		return ""
	}
	return "<message to='" + esc(ss.jid.String()) + "'><result xmlns='" + nsMAM + "' queryid='@QID@' id='" + m.ID.String() +
		"'><forwarded xmlns='" + nsForward + "'><delay xmlns='" + nsDelay + "' stamp='" + m.Created.UTC().Format(time.RFC3339Nano) +
		"'/><message xmlns='jabber:client' type='" + typ + "' id='" + m.ID.String() + "' from='" + esc(from) + "' to='" + esc(to) +
		"'><body>" + esc(string(m.Body)) + "</body>" + sl + "</message></forwarded></result></message>"
}
