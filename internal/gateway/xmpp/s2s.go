package xmpp

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net"
	"strings"
	"sync"
	"time"

	"liaison/internal/gateway/xmpp/stream"
	"liaison/internal/message"
)

// Partner is a partner party's XMPP domain that this node federates with
// over S2S, under a co-signed agreement. Authentication is TLS with SASL
// EXTERNAL (XEP-0178) against the partner CA the agreement pins; there is
// no dialback across the boundary.
type Partner struct {
	Domain string // partner XMPP domain, e.g. "b.test"
	Party  string // Origin of messages from this partner, e.g. "XBB"
	// Addr is the partner's S2S listener, host:port (no DNS lookup).
	Addr string
	// Roots are the partner CAs pinned by the agreement.
	Roots *x509.CertPool
	// Channel is the per-pair channel carrying 1:1 chat with this partner.
	Channel string
	// Clearance is the peer clearance the agreement grants the partner:
	// nothing above it leaves, nothing above it is accepted.
	Clearance []byte
	// DefaultLabel is given to unlabelled messages from the partner; nil
	// means unlabelled messages are refused.
	DefaultLabel []byte
	// InForce reports whether the agreement is in force at t; nil means
	// always. Outside it the link is refused and closed.
	InForce func(t time.Time) bool
}

type partner struct {
	Partner
	mu  sync.Mutex          // guards out
	out map[string]*s2sLink // by local domain (ours, or our room service)
}

func (p *partner) inForce(now time.Time) bool { return p.InForce == nil || p.InForce(now) }

// s2sLink is an authenticated outbound stream to a partner.
type s2sLink struct {
	conn net.Conn
	mu   sync.Mutex // serialises writes
	dead chan struct{}
}

func (s *Server) partnerFor(domain string) *partner {
	if p := s.partners[domain]; p != nil {
		return p
	}
	return nil
}

// ServeS2S accepts partner servers' connections on ln.
func (s *Server) ServeS2S(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("xmpp: server closed")
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.trackConn(c, true)
			defer s.trackConn(c, false)
			s.serveS2SIn(c)
		}()
	}
}

func (s *Server) trackConn(c net.Conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closed {
			c.Close()
		}
		s.raw[c] = struct{}{}
	} else {
		delete(s.raw, c)
	}
}

func s2sHeader(from, to string) string {
	return "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' id='" +
		randomID() + "' from='" + esc(from) + "' to='" + esc(to) + "' version='1.0'>"
}

func writeStr(c net.Conn, s string) error {
	c.SetWriteDeadline(time.Now().Add(negTimeout))
	_, err := c.Write([]byte(s))
	return err
}

// serveS2SIn runs one inbound partner stream: STARTTLS with a client
// certificate chaining to the partner's pinned CA, SASL EXTERNAL, then
// stanzas from the partner's users.
func (s *Server) serveS2SIn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(negTimeout))
	r := stream.NewReader(c)
	r.SetLimit(stream.PreAuthMaxStanza)
	refuse := func(cond string) {
		writeStr(c, "<stream:error><"+cond+" xmlns='"+nsStreams+"'/></stream:error></stream:stream>")
	}
	h, err := r.Header()
	if err != nil {
		return
	}
	local := s.cfg.Domain
	if strings.EqualFold(h.To, s.cfg.MUCDomain) {
		local = s.cfg.MUCDomain
	}
	writeStr(c, s2sHeader(local, h.From))
	p := s.partnerFor(strings.ToLower(h.From))
	switch {
	case h.NS != stream.NSServer:
		refuse("invalid-namespace")
		return
	case h.To != s.cfg.Domain && h.To != s.cfg.MUCDomain:
		refuse("host-unknown")
		return
	case p == nil:
		s.log.Warn("xmpp: s2s from unknown domain refused", "from", h.From)
		refuse("not-authorized")
		return
	case !p.inForce(s.cfg.Now()):
		s.log.Warn("xmpp: s2s refused, agreement not in force", "partner", p.Domain)
		s.audit("xmpp.s2s-refused", "", "agreement with "+p.Domain+" not in force")
		refuse("not-authorized")
		return
	}
	writeStr(c, "<stream:features><starttls xmlns='"+nsTLS+"'><required/></starttls></stream:features>")
	e, _, err := r.Next()
	if err != nil || e.Name.Space != nsTLS || e.Name.Local != "starttls" {
		refuse("policy-violation")
		return
	}
	writeStr(c, "<proceed xmlns='"+nsTLS+"'/>")
	tc := tls.Server(c, &tls.Config{
		Certificates: s.cfg.TLS.Certificates, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: p.Roots, MinVersion: tls.VersionTLS12,
	})
	if err := tc.Handshake(); err != nil {
		s.log.Warn("xmpp: s2s tls failed", "partner", p.Domain, "err", err)
		return
	}
	leaf := tc.ConnectionState().PeerCertificates[0]
	if err := leaf.VerifyHostname(p.Domain); err != nil {
		s.log.Warn("xmpp: s2s certificate does not name partner", "partner", p.Domain, "err", err)
		return
	}
	c = tc
	r = stream.NewReader(c)
	r.SetLimit(stream.PreAuthMaxStanza)
	if _, err := r.Header(); err != nil {
		return
	}
	writeStr(c, s2sHeader(local, p.Domain)+"<stream:features><mechanisms xmlns='"+nsSASL+
		"'><mechanism>EXTERNAL</mechanism></mechanisms></stream:features>")
	e, _, err = r.Next()
	if err != nil || e.Name.Space != nsSASL || e.Name.Local != "auth" || e.AttrValue("mechanism") != "EXTERNAL" {
		writeStr(c, "<failure xmlns='"+nsSASL+"'><invalid-mechanism/></failure>")
		return
	}
	authz, err := decodeSASL(e.Text)
	if err != nil || (len(authz) > 0 && !strings.EqualFold(string(authz), p.Domain)) {
		writeStr(c, "<failure xmlns='"+nsSASL+"'><invalid-authzid/></failure>")
		return
	}
	writeStr(c, "<success xmlns='"+nsSASL+"'/>")
	if _, err := r.Header(); err != nil {
		return
	}
	// No bidi: a partner opens its own stream for our traffic to it.
	writeStr(c, s2sHeader(local, p.Domain)+"<stream:features/>")
	c.SetDeadline(time.Time{})
	r.SetLimit(s.cfg.MaxStanza)
	s.log.Info("xmpp: s2s inbound authenticated", "partner", p.Domain)
	// Messages are submitted in order in the background while the
	// stream is read; presence and the stream's end wait for them.
	q := newSubmitter(s.ctx, s.cfg.Core)
	defer q.stop()
	for {
		e, raw, err := r.Next()
		if err != nil {
			q.flush()
			if errors.Is(err, stream.ErrStreamEnd) {
				writeStr(c, "</stream:stream>")
			}
			return
		}
		if !p.inForce(s.cfg.Now()) {
			s.audit("xmpp.s2s-refused", "", "agreement with "+p.Domain+" no longer in force")
			refuse("policy-violation")
			return
		}
		if e.Name.Space != stream.NSServer {
			refuse("unsupported-stanza-type")
			return
		}
		from, err := parseJID(e.AttrValue("from"))
		if err != nil || from.Domain != p.Domain {
			refuse("invalid-from")
			return
		}
		to, err := parseJID(e.AttrValue("to"))
		if err != nil || (to.Domain != s.cfg.Domain && to.Domain != s.cfg.MUCDomain) {
			refuse("improper-addressing")
			return
		}
		switch {
		case e.Name.Local == "presence" && to.Domain == s.cfg.MUCDomain:
			if e.Child(nsSecLabel, "securitylabel") != nil {
				continue // XEP-0258 §5: presence must not carry labels; discarded
			}
			q.flush()
			s.roomPresence(&occupant{remote: p, rjid: from}, to, e.AttrValue("type"))
		case e.Name.Local == "message" && to.Domain == s.cfg.MUCDomain:
			s.fromPartnerRoom(q, p, from, to, e, raw)
		case e.Name.Local == "message":
			s.fromPartner(q, p, from, e, raw)
		}
	}
}

// fromPartner takes a message from a partner user: label checked against
// the peer clearance, unlabelled given the agreement's default label.
// It is queued on q for its submit.
func (s *Server) fromPartner(q *submitter, p *partner, from jid, e *stream.Element, raw []byte) {
	typ := e.AttrValue("type")
	body := e.Child(stream.NSServer, "body")
	if typ == "error" || body == nil {
		return
	}
	to, err := parseJID(e.AttrValue("to"))
	if err != nil || to.Domain != s.cfg.Domain || to.Local == "" {
		s.bounceRemote(p, e, from, "cancel", "service-unavailable", "")
		return
	}
	if _, ok := s.cfg.Users.User(to.Local); !ok {
		s.bounceRemote(p, e, from, "cancel", "service-unavailable", "") // RFC 6121 §8.5.2.2.1
		return
	}
	id := message.NewID()
	label, ok := s.partnerLabel(p, from, e, raw, id.String())
	if !ok {
		return
	}
	m := &message.Message{
		ID: id, Channel: p.Channel, Origin: p.partyName(), Originator: from.Bare(),
		Precedence: message.Routine, Created: s.cfg.Now().UTC(), Label: label,
		ContentType: mime.FormatMediaType(contentType, map[string]string{"to": to.Bare()}),
		Body:        []byte(body.Text),
	}
	q.add(pending{m: m, refused: func(err error) {
		s.audit(AuditBounced, id.String(), "from "+p.Domain+": refused: "+err.Error())
		s.bounceRemote(p, e, from, "auth", "forbidden", "refused")
	}})
}

func (p *partner) partyName() string {
	if p.Party != "" {
		return p.Party
	}
	return p.Domain
}

func (s *Server) bounceRemote(p *partner, e *stream.Element, to jid, typ, cond, text string) {
	var b strings.Builder
	b.WriteString("<message type='error' id='" + esc(e.AttrValue("id")) + "' from='" + esc(e.AttrValue("to")) +
		"' to='" + esc(to.String()) + "'><error type='" + typ + "'><" + cond + " xmlns='" + nsStanzas + "'/>")
	if text != "" {
		b.WriteString("<text xmlns='" + nsStanzas + "'>" + esc(text) + "</text>")
	}
	b.WriteString("</error></message>")
	local, _ := parseJID(e.AttrValue("to"))
	s.sendPartner(p, local.Domain, []byte(b.String()))
}

// egress sends a locally originated message to a partner user after the
// peer-clearance check (the guard's decision is the node's; this is the
// gateway's own fail-closed check at the boundary).
func (s *Server) egress(p *partner, m *message.Message, label []byte, to jid) {
	if !p.inForce(s.cfg.Now()) {
		s.audit(AuditWithheld, m.ID.String(), "agreement with "+p.Domain+" not in force")
		return
	}
	if ok, why := s.cfg.Labels.ACDF(label, p.Clearance); !ok {
		s.audit(AuditWithheld, m.ID.String(), "above peer clearance of "+p.Domain+": "+why)
		return
	}
	sl, err := s.secLabelXML(label, "")
	if err != nil {
		s.audit(AuditWithheld, m.ID.String(), err.Error())
		return
	}
	st := "<message type='chat' id='" + m.ID.String() + "' from='" + esc(m.Originator) + "' to='" + esc(to.Bare()) +
		"'><body>" + esc(string(m.Body)) + "</body>" + sl + "</message>"
	if err := s.sendPartner(p, s.cfg.Domain, []byte(st)); err != nil {
		s.audit(AuditWithheld, m.ID.String(), "link to "+p.Domain+": "+err.Error())
	}
}

// sendPartner writes a stanza on the outbound link, dialling it if needed.
func (s *Server) sendPartner(p *partner, local string, b []byte) error {
	if local != s.cfg.MUCDomain {
		local = s.cfg.Domain
	}
	l, err := s.link(p, local)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conn.SetWriteDeadline(time.Now().Add(negTimeout))
	if _, err := l.conn.Write(b); err != nil {
		l.conn.Close()
		return err
	}
	return nil
}

func (s *Server) link(p *partner, local string) (*s2sLink, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.out[local]; l != nil {
		select {
		case <-l.dead:
			delete(p.out, local)
		default:
			return l, nil
		}
	}
	if !p.inForce(s.cfg.Now()) {
		return nil, fmt.Errorf("agreement with %q not in force", p.Domain)
	}
	c, r, err := s.dialPartner(p, local)
	if err != nil {
		return nil, err
	}
	l := &s2sLink{conn: c, dead: make(chan struct{})}
	if p.out == nil {
		p.out = map[string]*s2sLink{}
	}
	p.out[local] = l
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(l.dead)
		defer s.trackConn(c, false)
		s.trackConn(c, true)
		// Drain the partner's side of our stream until it closes.
		for {
			if _, _, err := r.Next(); err != nil {
				c.Close()
				return
			}
		}
	}()
	return l, nil
}

// dialPartner opens and authenticates an outbound stream: STARTTLS with the
// partner's name verified against its pinned CA, then SASL EXTERNAL with
// our certificate. The returned connection is ready for stanzas.
func (s *Server) dialPartner(p *partner, local string) (net.Conn, *stream.Reader, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(s.ctx, "tcp", p.Addr)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (net.Conn, *stream.Reader, error) {
		c.Close()
		return nil, nil, fmt.Errorf("s2s to %q: %w", p.Domain, err)
	}
	c.SetDeadline(time.Now().Add(negTimeout))
	open := func() (*stream.Reader, *stream.Element, error) {
		if err := writeStr(c, s2sHeader(local, p.Domain)); err != nil {
			return nil, nil, err
		}
		r := stream.NewReader(c)
		r.SetLimit(stream.PreAuthMaxStanza)
		if _, err := r.Header(); err != nil {
			return nil, nil, err
		}
		f, _, err := r.Next()
		if err != nil {
			return nil, nil, err
		}
		if f.Name.Space != stream.NSStream || f.Name.Local != "features" {
			return nil, nil, fmt.Errorf("expected features, got %q", f.Name.Local)
		}
		return r, f, nil
	}
	r, f, err := open()
	if err != nil {
		return fail(err)
	}
	if f.Child(nsTLS, "starttls") == nil {
		return fail(errors.New("partner does not offer STARTTLS"))
	}
	writeStr(c, "<starttls xmlns='"+nsTLS+"'/>")
	if e, _, err := r.Next(); err != nil || e.Name.Local != "proceed" {
		return fail(errors.New("starttls refused"))
	}
	tc := tls.Client(c, &tls.Config{
		ServerName: p.Domain, RootCAs: p.Roots, Certificates: s.cfg.TLS.Certificates, MinVersion: tls.VersionTLS12,
	})
	if err := tc.Handshake(); err != nil {
		return fail(err)
	}
	c = tc
	r, f, err = open()
	if err != nil {
		return fail(err)
	}
	ext := false
	if m := f.Child(nsSASL, "mechanisms"); m != nil {
		for _, mech := range m.ChildrenNamed(nsSASL, "mechanism") {
			ext = ext || strings.TrimSpace(mech.Text) == "EXTERNAL"
		}
	}
	if !ext {
		return fail(errors.New("partner does not offer SASL EXTERNAL"))
	}
	writeStr(c, "<auth xmlns='"+nsSASL+"' mechanism='EXTERNAL'>"+base64.StdEncoding.EncodeToString([]byte(local))+"</auth>")
	if e, _, err := r.Next(); err != nil || e.Name.Local != "success" {
		return fail(errors.New("sasl external refused"))
	}
	if r, _, err = open(); err != nil {
		return fail(err)
	}
	c.SetDeadline(time.Time{})
	r.SetLimit(s.cfg.MaxStanza)
	s.log.Info("xmpp: s2s outbound authenticated", "partner", p.Domain)
	return c, r, nil
}

// partnerLabel returns the effective label of a partner's message, checked
// against the peer clearance; on refusal it audits and bounces.
func (s *Server) partnerLabel(p *partner, from jid, e *stream.Element, raw []byte, id string) ([]byte, bool) {
	var label []byte
	sl, found, err := parseSecLabel(e, raw)
	switch {
	case err != nil:
		s.audit(AuditBounced, id, "from "+p.Domain+": "+err.Error())
		s.bounceRemote(p, e, from, "modify", "not-acceptable", "malformed security label")
		return nil, false
	case !found || sl.Label == nil:
		label = p.DefaultLabel
	default:
		label, err = s.effectiveLabel(sl)
		if err != nil {
			s.audit(AuditBounced, id, "from "+p.Domain+": unreadable label: "+err.Error())
			s.bounceRemote(p, e, from, "modify", "not-acceptable", "unreadable security label")
			return nil, false
		}
	}
	if len(label) == 0 {
		s.audit(AuditBounced, id, "from "+p.Domain+": unlabelled and no default label")
		s.bounceRemote(p, e, from, "modify", "not-acceptable", "label required")
		return nil, false
	}
	if ok, why := s.cfg.Labels.ACDF(label, p.Clearance); !ok {
		s.audit(AuditBounced, id, "from "+p.Domain+": above peer clearance: "+why)
		s.bounceRemote(p, e, from, "auth", "forbidden", "label not permitted by the agreement")
		return nil, false
	}
	return label, true
}

// fromPartnerRoom takes a groupchat message from a remote occupant.
// It is queued on q for its submit.
func (s *Server) fromPartnerRoom(q *submitter, p *partner, from, to jid, e *stream.Element, raw []byte) {
	body := e.Child(stream.NSServer, "body")
	if e.AttrValue("type") != "groupchat" || body == nil {
		return
	}
	rm := s.rooms[to.Local]
	if rm == nil || to.Resource != "" {
		s.bounceRemote(p, e, from, "cancel", "item-not-found", "")
		return
	}
	if rm.remoteOccupant(from) == nil {
		s.bounceRemote(p, e, from, "modify", "not-acceptable", "not an occupant")
		return
	}
	id := message.NewID()
	label, ok := s.partnerLabel(p, from, e, raw, id.String())
	if !ok {
		return
	}
	if ok, why := s.cfg.Labels.Permit(label, rm.Name); !ok {
		s.audit(AuditBounced, id.String(), "from "+p.Domain+": not permitted in room "+rm.Name+": "+why)
		s.bounceRemote(p, e, from, "auth", "forbidden", "label not permitted in this room")
		return
	}
	m := &message.Message{
		ID: id, Channel: rm.Channel, Origin: p.partyName(), Originator: from.Bare(),
		Precedence: message.Routine, Created: s.cfg.Now().UTC(), Label: label,
		ContentType: contentType, Body: []byte(body.Text),
	}
	q.add(pending{m: m, refused: func(err error) {
		s.audit(AuditBounced, id.String(), "from "+p.Domain+": refused: "+err.Error())
		s.bounceRemote(p, e, from, "auth", "forbidden", "refused")
	}})
}
