package xmpp

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"liaison/internal/gateway/xmpp/stream"
)

// Namespaces used in stream negotiation.
const (
	nsTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	nsStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsStreams  = "urn:ietf:params:xml:ns:xmpp-streams"
	negTimeout = 30 * time.Second
	outQueue   = 4096
)

// session is one client connection. Negotiation runs on the reading
// goroutine; after resource binding a writer goroutine owns the connection's
// write side and drains the bounded out queue.
type session struct {
	srv  *Server
	conn net.Conn
	r    *stream.Reader
	tls  bool
	user *User
	jid  jid
	lang string

	sm      // XEP-0198 state
	resumed bool

	sub *submitter // submits the messages the reader takes, in order

	out       chan []byte
	done      chan struct{}
	closeOnce sync.Once
	writerWG  sync.WaitGroup
}

func newSession(s *Server, c net.Conn, directTLS bool) *session {
	return &session{srv: s, conn: c, tls: directTLS, out: make(chan []byte, outQueue), done: make(chan struct{})}
}

func (ss *session) close() {
	ss.closeOnce.Do(func() {
		close(ss.done)
		ss.conn.Close()
	})
}

// send queues b for the client; a client too slow to drain its queue is
// disconnected rather than let memory grow.
func (ss *session) send(b []byte) {
	if ss.smOn.Load() && isStanza(b) {
		ss.smTrack(b)
		return
	}
	ss.enqueue(b)
}

func (ss *session) enqueue(b []byte) {
	select {
	case ss.out <- b:
	case <-ss.done:
	default:
		ss.srv.log.Warn("xmpp: client too slow, closing", "jid", ss.jid.String())
		ss.close()
	}
}

func (ss *session) writer() {
	defer ss.writerWG.Done()
	w := bufio.NewWriterSize(ss.conn, 32<<10)
	for {
		select {
		case <-ss.done:
			return
		case b := <-ss.out:
			w.Write(b)
		drain:
			for w.Buffered() < 16<<10 {
				select {
				case b := <-ss.out:
					w.Write(b)
				default:
					break drain
				}
			}
			if err := w.Flush(); err != nil {
				ss.close()
				return
			}
		}
	}
}

// writeNow writes during negotiation, before the writer runs.
func (ss *session) writeNow(s string) error {
	ss.conn.SetWriteDeadline(time.Now().Add(negTimeout))
	_, err := ss.conn.Write([]byte(s))
	return err
}

func (ss *session) streamError(cond string) {
	ss.writeNow("<stream:error><" + cond + " xmlns='" + nsStreams + "'/></stream:error></stream:stream>")
}

func (ss *session) run() {
	defer ss.close()
	if err := ss.negotiate(); err != nil {
		ss.srv.log.Debug("xmpp: negotiation failed", "remote", ss.conn.RemoteAddr().String(), "err", err)
		return
	}
	ss.conn.SetDeadline(time.Time{})
	ss.writerWG.Add(1)
	go ss.writer()
	ss.sub = newSubmitter(ss.srv.ctx, ss.srv.cfg.Core)
	clean := false
	defer func() {
		// Every message read is submitted (or bounced) before the
		// session goes: as when each was submitted before the next read.
		ss.sub.stop()
		if !clean && ss.detach() {
			ss.close()
			ss.writerWG.Wait()
			return
		}
		ss.srv.unregister(ss)
		ss.close()
		ss.writerWG.Wait()
	}()
	if ss.resumed {
		ss.retransmit()
	}
	ss.r.SetLimit(ss.srv.cfg.MaxStanza)
	for {
		e, raw, err := ss.r.Next()
		if err != nil {
			ss.sub.flush()
			if errors.Is(err, stream.ErrTooLarge) {
				ss.send([]byte("<stream:error><policy-violation xmlns='" + nsStreams + "'/></stream:error></stream:stream>"))
			} else if errors.Is(err, stream.ErrStreamEnd) {
				clean = true
				ss.enqueue([]byte("</stream:stream>"))
			}
			return
		}
		if e.Name.Local != "message" && (e.Name.Space != nsSM || e.Name.Local == "r") {
			// Messages are submitted in the background, in order; any
			// other stanza (and an XEP-0198 <r/>, whose answer counts
			// stanzas handled) waits until those before it are handled.
			ss.sub.flush()
		}
		if e.Name.Space == nsSM {
			ss.handleSM(e)
			continue
		}
		if ss.smOn.Load() {
			ss.hIn++
		}
		if e.Name.Space != stream.NSClient {
			ss.send([]byte("<stream:error><unsupported-stanza-type xmlns='" + nsStreams + "'/></stream:error></stream:stream>"))
			return
		}
		switch e.Name.Local {
		case "message":
			ss.handleMessage(e, raw)
		case "presence":
			ss.handlePresence(e, raw)
		case "iq":
			ss.handleIQ(e, raw)
		default:
			ss.send([]byte("<stream:error><unsupported-stanza-type xmlns='" + nsStreams + "'/></stream:error></stream:stream>"))
			return
		}
	}
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (ss *session) openStream() error {
	ss.conn.SetDeadline(time.Now().Add(negTimeout))
	h, err := ss.r.Header()
	if err != nil {
		return err
	}
	if h.NS != stream.NSClient {
		ss.writeNow(streamHeader(ss.srv.cfg.Domain))
		ss.streamError("invalid-namespace")
		return fmt.Errorf("stream namespace %q", h.NS)
	}
	if err := ss.writeNow(streamHeader(ss.srv.cfg.Domain)); err != nil {
		return err
	}
	if !strings.EqualFold(h.To, ss.srv.cfg.Domain) {
		ss.streamError("host-unknown")
		return fmt.Errorf("unknown host %q", h.To)
	}
	ss.lang = h.Lang
	return nil
}

func streamHeader(domain string) string {
	return "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='" +
		randomID() + "' from='" + esc(domain) + "' version='1.0' xml:lang='en'>"
}

func (ss *session) negotiate() error {
	ss.r = stream.NewReader(ss.conn)
	ss.r.SetLimit(stream.PreAuthMaxStanza)
	if !ss.tls {
		if err := ss.openStream(); err != nil {
			return err
		}
		if err := ss.writeNow("<stream:features><starttls xmlns='" + nsTLS + "'><required/></starttls></stream:features>"); err != nil {
			return err
		}
		e, _, err := ss.r.Next()
		if err != nil {
			return err
		}
		if e.Name.Space != nsTLS || e.Name.Local != "starttls" {
			ss.streamError("policy-violation")
			return errors.New("client did not start TLS")
		}
		if err := ss.writeNow("<proceed xmlns='" + nsTLS + "'/>"); err != nil {
			return err
		}
		tc := tls.Server(ss.conn, ss.srv.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		ss.conn = tc
		ss.tls = true
		ss.r = stream.NewReader(ss.conn)
		ss.r.SetLimit(stream.PreAuthMaxStanza)
	}
	// SASL.
	if err := ss.openStream(); err != nil {
		return err
	}
	mechs := "<mechanism>SCRAM-SHA-256</mechanism><mechanism>PLAIN</mechanism>"
	if ss.externalIdentity() != "" {
		mechs = "<mechanism>EXTERNAL</mechanism>" + mechs
	}
	if err := ss.writeNow("<stream:features><mechanisms xmlns='" + nsSASL + "'>" + mechs + "</mechanisms></stream:features>"); err != nil {
		return err
	}
	for tries := 0; ss.user == nil; tries++ {
		if tries >= 3 {
			ss.streamError("policy-violation")
			return errors.New("too many authentication failures")
		}
		if err := ss.sasl(); err != nil {
			ss.srv.log.Debug("xmpp: sasl failure", "err", err)
			if err := ss.writeNow("<failure xmlns='" + nsSASL + "'><not-authorized/></failure>"); err != nil {
				return err
			}
		}
	}
	// Restart, then bind.
	if err := ss.openStream(); err != nil {
		return err
	}
	if err := ss.writeNow("<stream:features><bind xmlns='" + nsBind + "'/>" + ss.srv.extraFeatures() + "</stream:features>"); err != nil {
		return err
	}
	for {
		e, raw, err := ss.r.Next()
		if err != nil {
			return err
		}
		if e.Name.Space == nsSM && e.Name.Local == "resume" {
			if ss.srv.resume(ss, e) {
				return nil
			}
			ss.writeNow("<failed xmlns='" + nsSM + "'><item-not-found xmlns='" + nsStanzas + "'/></failed>")
			continue
		}
		if e.Name.Local == "iq" {
			if b := e.Child(nsBind, "bind"); b != nil && e.AttrValue("type") == "set" {
				res := ""
				if rc := b.Child(nsBind, "resource"); rc != nil {
					res = strings.TrimSpace(rc.Text)
				}
				if res == "" || len(res) > 256 || strings.ContainsAny(res, "<>&'\"/") {
					res = randomID()
				}
				ss.jid = jid{Local: ss.user.Name, Domain: ss.srv.cfg.Domain, Resource: res}
				ss.srv.register(ss)
				return ss.writeNow("<iq type='result' id='" + esc(e.AttrValue("id")) + "'><bind xmlns='" + nsBind + "'><jid>" +
					esc(ss.jid.String()) + "</jid></bind></iq>")
			}
		}
		_ = raw
		ss.writeNow("<iq type='error' id='" + esc(e.AttrValue("id")) + "'><error type='auth'><not-authorized xmlns='" + nsStanzas + "'/></error></iq>")
	}
}

// sasl runs one authentication exchange.
func (ss *session) sasl() error {
	e, _, err := ss.r.Next()
	if err != nil {
		return err
	}
	if e.Name.Space != nsSASL || e.Name.Local != "auth" {
		return errors.New("expected sasl auth")
	}
	initial, err := decodeSASL(e.Text)
	if err != nil {
		return err
	}
	mech := e.AttrValue("mechanism")
	defer func() {
		if ss.user != nil {
			ss.srv.audit(AuditLogin, "", "user "+ss.user.Name+" mechanism "+mech)
		}
	}()
	switch mech {
	case "PLAIN":
		if len(initial) == 0 {
			if initial, err = ss.challenge(nil); err != nil {
				return err
			}
		}
		u, err := plainAuth(ss.srv.cfg.Users, initial)
		if err != nil {
			return err
		}
		ss.user = u
		return ss.writeNow("<success xmlns='" + nsSASL + "'/>")
	case "SCRAM-SHA-256":
		sc := &scram{users: ss.srv.cfg.Users}
		sf, err := sc.first(initial)
		if err != nil {
			return err
		}
		resp, err := ss.challenge(sf)
		if err != nil {
			return err
		}
		v, u, err := sc.final(resp)
		if err != nil {
			return err
		}
		ss.user = u
		return ss.writeNow("<success xmlns='" + nsSASL + "'>" + base64.StdEncoding.EncodeToString(v) + "</success>")
	case "EXTERNAL":
		u, err := ss.externalAuth(initial)
		if err != nil {
			return err
		}
		ss.user = u
		return ss.writeNow("<success xmlns='" + nsSASL + "'/>")
	}
	return fmt.Errorf("unsupported mechanism %q", e.AttrValue("mechanism"))
}

func (ss *session) challenge(data []byte) ([]byte, error) {
	if err := ss.writeNow("<challenge xmlns='" + nsSASL + "'>" + base64.StdEncoding.EncodeToString(data) + "</challenge>"); err != nil {
		return nil, err
	}
	e, _, err := ss.r.Next()
	if err != nil {
		return nil, err
	}
	if e.Name.Space != nsSASL || e.Name.Local != "response" {
		return nil, errors.New("expected sasl response")
	}
	return decodeSASL(e.Text)
}

func decodeSASL(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "=" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// externalIdentity is the XmppAddr or CN... of a verified client
// certificate, or "" when there is none.
func (ss *session) externalIdentity() string {
	tc, ok := ss.conn.(*tls.Conn)
	if !ok {
		return ""
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return ""
	}
	cert := st.PeerCertificates[0]
	for _, e := range cert.EmailAddresses {
		if j, err := parseJID(e); err == nil && j.Domain == ss.srv.cfg.Domain && j.Local != "" {
			return j.Local
		}
	}
	if j, err := parseJID(cert.Subject.CommonName); err == nil && j.Domain == ss.srv.cfg.Domain && j.Local != "" {
		return j.Local
	}
	return ""
}

// externalAuth implements SASL EXTERNAL (RFC 4422 App. A) with a verified
// TLS client certificate naming user@domain.
func (ss *session) externalAuth(authz []byte) (*User, error) {
	name := ss.externalIdentity()
	if name == "" {
		return nil, errors.New("no verified client certificate")
	}
	if len(authz) > 0 {
		j, err := parseJID(string(authz))
		if err != nil || j.Local != name || j.Domain != ss.srv.cfg.Domain {
			return nil, fmt.Errorf("authzid %q does not match certificate", authz)
		}
	}
	u, ok := ss.srv.cfg.Users.User(name)
	if !ok {
		return nil, fmt.Errorf("unknown user %q", name)
	}
	return u, nil
}

func (s *Server) extraFeatures() string { return "<sm xmlns='" + nsSM + "'/>" }

func (s *Server) register(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.sessions[ss.jid.Bare()]
	if m == nil {
		m = map[string]*session{}
		s.sessions[ss.jid.Bare()] = m
	}
	if old := m[ss.jid.Resource]; old != nil {
		go old.close() // resource conflict: the newer session wins
	}
	m[ss.jid.Resource] = ss
}

func (s *Server) unregister(ss *session) {
	s.leaveAll(ss)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss.smID != "" && s.smIDs[ss.smID] == ss {
		delete(s.smIDs, ss.smID)
	}
	if m := s.sessions[ss.jid.Bare()]; m != nil && m[ss.jid.Resource] == ss {
		delete(m, ss.jid.Resource)
		if len(m) == 0 {
			delete(s.sessions, ss.jid.Bare())
		}
	}
}

// sessionsOf returns the bound sessions of a bare JID.
func (s *Server) sessionsOf(bare string) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	for _, ss := range s.sessions[bare] {
		out = append(out, ss)
	}
	return out
}
