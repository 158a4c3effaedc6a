package xmpp

import (
	"encoding/xml"
	"strings"

	"liaison/internal/gateway/xmpp/stream"
)

// Namespaces answered on IQs.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsPing       = "urn:xmpp:ping"
	nsRoster     = "jabber:iq:roster"
	nsSession    = "urn:ietf:params:xml:ns:xmpp-session"
	nsSecLabel   = "urn:xmpp:sec-label:0"
	nsCatalog2   = "urn:xmpp:sec-label:catalog:2"
	nsCatalog0   = "urn:xmpp:sec-label:catalog:0"
	nsMUC        = "http://jabber.org/protocol/muc"
	nsMUCUser    = "http://jabber.org/protocol/muc#user"
)

func esc(s string) string {
	if !strings.ContainsAny(s, "<>&'\"\r\n\t") {
		return s
	}
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (ss *session) iqResult(e *stream.Element, from, payload string) {
	ss.send([]byte("<iq type='result' id='" + esc(e.AttrValue("id")) + "' from='" + esc(from) + "' to='" +
		esc(ss.jid.String()) + "'>" + payload + "</iq>"))
}

func (ss *session) iqError(e *stream.Element, from, typ, cond string) {
	ss.send([]byte("<iq type='error' id='" + esc(e.AttrValue("id")) + "' from='" + esc(from) + "' to='" +
		esc(ss.jid.String()) + "'><error type='" + typ + "'><" + cond + " xmlns='" + nsStanzas + "'/></error></iq>"))
}

func (ss *session) handleIQ(e *stream.Element, raw []byte) {
	typ := e.AttrValue("type")
	if typ == "result" || typ == "error" {
		return // no outstanding server requests to clients
	}
	if typ != "get" && typ != "set" || len(e.Children) != 1 {
		ss.iqError(e, ss.srv.cfg.Domain, "modify", "bad-request")
		return
	}
	cfg := &ss.srv.cfg
	to := cfg.Domain
	var target jid
	if t := e.AttrValue("to"); t != "" {
		j, err := parseJID(t)
		if err != nil {
			ss.iqError(e, cfg.Domain, "modify", "jid-malformed")
			return
		}
		target, to = j, j.String()
	} else {
		target = jid{Domain: cfg.Domain}
	}
	q := e.Children[0]
	ns := q.Name.Space
	switch {
	case ns == nsPing && typ == "get":
		ss.iqResult(e, to, "")
	case ns == nsSession:
		ss.iqResult(e, to, "")
	case ns == nsRoster && target.Domain == cfg.Domain && (target.Local == "" || target.Bare() == ss.jid.Bare()):
		if typ == "get" {
			ss.iqResult(e, to, "<query xmlns='"+nsRoster+"'/>")
		} else {
			ss.iqResult(e, to, "")
		}
	case ns == nsDiscoInfo && typ == "get":
		ss.discoInfo(e, target, to)
	case ns == nsDiscoItems && typ == "get":
		ss.discoItems(e, target, to)
	case ns == nsMAM && q.Name.Local == "query" && typ == "set":
		ss.mamQuery(e, q, target, to)
	case (ns == nsCatalog2 || ns == nsCatalog0) && q.Name.Local == "catalog" && typ == "get":
		ss.catalog(e, q, ns, to)
	default:
		ss.iqError(e, to, "cancel", "service-unavailable")
	}
}

func identity(cat, typ, name string) string {
	return "<identity category='" + cat + "' type='" + typ + "' name='" + esc(name) + "'/>"
}

func features(fs ...string) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("<feature var='" + f + "'/>")
	}
	return b.String()
}

func (ss *session) discoInfo(e *stream.Element, target jid, to string) {
	cfg := &ss.srv.cfg
	var body string
	switch {
	case target.Local == "" && target.Domain == cfg.Domain:
		body = identity("server", "im", "Liaison") + features(nsDiscoInfo, nsDiscoItems, nsPing, nsRoster,
			nsSecLabel, nsCatalog2, nsCatalog0, nsMAM, nsSM)
	case target.Local == "" && target.Domain == cfg.MUCDomain:
		body = identity("conference", "text", "Liaison rooms") + features(nsDiscoInfo, nsDiscoItems, nsMUC,
			nsSecLabel, nsCatalog2, nsCatalog0)
	case target.Domain == cfg.MUCDomain && ss.srv.rooms[target.Local] != nil:
		rm := ss.srv.rooms[target.Local]
		body = identity("conference", "text", rm.Name) + features(nsDiscoInfo, nsMUC, nsMAM, "muc_persistent",
			"muc_public", "muc_open", "muc_unmoderated", "muc_nonanonymous", nsSecLabel, nsCatalog2, nsCatalog0)
	case target.Domain == cfg.Domain && target.Local != "":
		if _, ok := cfg.Users.User(target.Local); !ok {
			ss.iqError(e, to, "cancel", "item-not-found")
			return
		}
		body = identity("account", "registered", target.Local) + features(nsDiscoInfo, nsMAM)
	default:
		ss.iqError(e, to, "cancel", "item-not-found")
		return
	}
	ss.iqResult(e, to, "<query xmlns='"+nsDiscoInfo+"'>"+body+"</query>")
}

func (ss *session) discoItems(e *stream.Element, target jid, to string) {
	cfg := &ss.srv.cfg
	var b strings.Builder
	switch {
	case target.Local == "" && target.Domain == cfg.Domain:
		b.WriteString("<item jid='" + esc(cfg.MUCDomain) + "' name='Rooms'/>")
	case target.Local == "" && target.Domain == cfg.MUCDomain:
		for _, r := range cfg.Rooms {
			b.WriteString("<item jid='" + esc(r.Name+"@"+cfg.MUCDomain) + "' name='" + esc(r.Name) + "'/>")
		}
	}
	ss.iqResult(e, to, "<query xmlns='"+nsDiscoItems+"'>"+b.String()+"</query>")
}
