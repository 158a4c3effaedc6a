package federation

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"liaison/internal/federation/linkproto"
)

// ErrNoLink is returned by SendControl when no session to the party is up.
var ErrNoLink = errors.New("no link")

// ErrClosed is returned by a Manager after Close.
var ErrClosed = errors.New("federation manager closed")

// LinkStatus is a snapshot of one peer's link.
type LinkStatus struct {
	Party     string
	Addr      string // dial address, "" for listen-only
	Allowed   bool
	Held      string // reason given to SetAllowed(false)
	Up        bool
	Since     time.Time // when the session came up
	Remote    string
	InFlight  int // messages started and awaiting custody
	Partials  int // partially received messages kept for resumption
	LastError string
}

// Manager owns every link of a node: the listener, one dialer per peer
// with an address, and at most one session per peer.
type Manager struct {
	cfg   Config
	epoch uint64
	ctx   context.Context
	stop  context.CancelCauseFunc
	wg    sync.WaitGroup

	dataBytes atomic.Int64 // message bytes written in DATA frames, for tests

	mu     sync.Mutex // guards everything below; never held across I/O
	peers  map[string]*peer
	lns    []net.Listener
	closed bool
}

// peer is the Manager's state for one party; it outlives sessions.
type peer struct {
	party string
	wake  chan struct{} // pokes the dialer; capacity 1
	in    *inbound

	// guarded by Manager.mu
	addr    string
	allowed bool
	held    string
	sess    *session
	dialer  bool // a dial goroutine runs
	lastErr string
	epoch   uint64 // the peer's, from its last HELLO
}

// New checks cfg and returns a Manager. It dials nothing until AddPeer and
// accepts nothing until Listen.
func New(cfg Config) (*Manager, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	var e [8]byte
	rand.Read(e[:])
	m := &Manager{cfg: cfg, epoch: binary.BigEndian.Uint64(e[:]), peers: map[string]*peer{}}
	m.ctx, m.stop = context.WithCancelCause(context.Background())
	m.wg.Add(1)
	go m.fanNotify()
	return m, nil
}

// fanNotify forwards the Outbox's work signal to every session's writer.
func (m *Manager) fanNotify() {
	defer m.wg.Done()
	ch := m.cfg.Outbox.Notify()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-ch:
		}
		m.mu.Lock()
		for _, p := range m.peers {
			if p.sess != nil {
				p.sess.notified.Store(true)
				poke(p.sess.wake)
			}
		}
		m.mu.Unlock()
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// AddPeer configures a link to party. With a non-empty addr the Manager
// keeps a session up by dialing it; with "" it only accepts the party's
// connections. Calling it again changes the address. Peers start allowed.
func (m *Manager) AddPeer(party, addr string) error {
	if party == "" || len(party) > linkproto.MaxPartyLen {
		return fmt.Errorf("bad party name %q", party)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	p := m.peers[party]
	if p == nil {
		in := newInbound(m.cfg.MaxPartials, uint64(m.cfg.MaxPartialBytes))
		if m.cfg.SpoolDir != "" {
			var err error
			in, err = openInbound(m.cfg.MaxPartials, filepath.Join(m.cfg.SpoolDir, hex.EncodeToString([]byte(party))))
			if err != nil {
				return fmt.Errorf("peer %q: %w", party, err)
			}
		}
		p = &peer{party: party, wake: make(chan struct{}, 1), allowed: true, in: in}
		m.peers[party] = p
	}
	p.addr = addr
	if addr != "" && !p.dialer {
		p.dialer = true
		m.wg.Add(1)
		go m.dialLoop(p)
	}
	poke(p.wake)
	return nil
}

// SetAllowed holds (ok=false) or releases a peer. Holding closes its
// session with reason and refuses its connections; queued messages stay
// queued. Releasing lets the link come back up.
func (m *Manager) SetAllowed(party string, ok bool, reason string) error {
	m.mu.Lock()
	p := m.peers[party]
	if p == nil {
		m.mu.Unlock()
		return fmt.Errorf("unknown peer %q", party)
	}
	p.allowed, p.held = ok, ""
	var s *session
	if !ok {
		p.held = reason
		s = p.sess
	}
	m.mu.Unlock()
	if s != nil {
		s.shutdown("held: " + reason)
	}
	poke(p.wake)
	return nil
}

// SendControl sends a CONTROL frame to party on its current session. It
// returns ErrNoLink when the link is down: the caller retries later.
func (m *Manager) SendControl(party, kind string, data []byte) error {
	if kind == "" || len(kind) > linkproto.MaxKindLen || len(data) > linkproto.MaxFramePayload-linkproto.MaxKindLen-8 {
		return fmt.Errorf("control %q with %d bytes is out of bounds", kind, len(data))
	}
	s := m.session(party)
	if s == nil {
		return fmt.Errorf("control to %q: %w", party, ErrNoLink)
	}
	return s.queueFrame(linkproto.Frame{Type: linkproto.FrameControl, Control: linkproto.Control{Kind: kind, Data: append([]byte(nil), data...)}})
}

// session returns the link session with party now, or nil.
func (m *Manager) session(party string) *session {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.peers[party]; p != nil {
		return p.sess
	}
	return nil
}

// Status returns a snapshot of every peer's link, sorted by party.
func (m *Manager) Status() []LinkStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]LinkStatus, 0, len(m.peers))
	for _, p := range m.peers {
		st := LinkStatus{Party: p.party, Addr: p.addr, Allowed: p.allowed, Held: p.held, LastError: p.lastErr, Partials: p.in.count()}
		if s := p.sess; s != nil {
			st.Up, st.Since, st.Remote = true, s.since, s.conn.RemoteAddr().String()
			st.InFlight = int(s.inflight.Load())
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b LinkStatus) int { return strings.Compare(a.Party, b.Party) })
	return out
}

// Close ends every session (sending CLOSE), stops listening and dialing,
// and waits for every goroutine. Leased, unacknowledged messages are
// released to the Outbox.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	lns := m.lns
	var ss []*session
	for _, p := range m.peers {
		if p.sess != nil {
			ss = append(ss, p.sess)
		}
	}
	m.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	for _, s := range ss {
		s.shutdown("shutting down")
	}
	// Let sessions send CLOSE and release their leases, for a bounded
	// time: an Inbox call in progress ends when the context is cancelled.
	grace, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range ss {
		select {
		case <-s.done:
		case <-grace.Done():
		}
	}
	m.stop(ErrClosed)
	m.wg.Wait()
	m.mu.Lock()
	for _, p := range m.peers {
		p.in.close()
	}
	m.mu.Unlock()
	return nil
}

func (m *Manager) event(e Event) {
	if e.Err != nil && e.Reason == "" {
		e.Reason = e.Err.Error()
	}
	m.cfg.Logger.Info("federation link", "event", e.Kind.String(), "party", e.Party, "remote", e.Remote, "reason", e.Reason)
	if m.cfg.Events != nil {
		m.cfg.Events(e)
	}
}

// Listen accepts peers' connections on addr until Close. It returns the
// bound address (useful with port 0).
func (m *Manager) Listen(ctx context.Context, addr string) (net.Addr, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", addr, err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		ln.Close()
		return nil, ErrClosed
	}
	m.lns = append(m.lns, ln)
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.serveConn(c)
			}()
		}
	}()
	return ln.Addr(), nil
}

// serveConn runs the server side of one inbound connection.
func (m *Manager) serveConn(c net.Conn) {
	base, err := m.cfg.TLS("")
	if err != nil {
		c.Close()
		m.event(Event{Kind: LinkRefused, Remote: c.RemoteAddr().String(), Err: fmt.Errorf("server tls config: %w", err)})
		return
	}
	if base == nil || base.ClientCAs == nil {
		c.Close()
		m.event(Event{Kind: LinkRefused, Remote: c.RemoteAddr().String(), Reason: "server tls config pins no partner CA (ClientCAs is nil)"})
		return
	}
	tc := tls.Server(c, m.serverTLS(base))
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.Close()
		m.event(Event{Kind: LinkRefused, Party: unverifiedParty(m.cfg.PartyOf, tc), Remote: c.RemoteAddr().String(), Err: err})
		return
	}
	party, _ := m.cfg.PartyOf(tc.ConnectionState().PeerCertificates[0])
	m.runSession(ctx, tc, party, party)
}

// serverTLS hardens a listener's TLS configuration and makes every
// handshake pass authorize after the configuration's own check. A
// GetConfigForClient in base (a node reading its pinned partners at each
// handshake) gets the same treatment: crypto/tls uses the configuration
// it returns as is, so without this the link would skip authorize (held
// peers, agreements in force) and the hardening.
func (m *Manager) serverTLS(base *tls.Config) *tls.Config {
	cfg := hardenTLS(base)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	// Session tickets would cost ~900 bytes per connection and save ~300
	// on a resumed one (the ticket carries the client's chain, and TLS 1.3
	// still exchanges ML-KEM shares): measured, not worth it on DIL links.
	cfg.SessionTicketsDisabled = true
	own := base.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if own != nil {
			if err := own(cs); err != nil {
				return err
			}
		}
		_, err := m.authorize("", cs.PeerCertificates)
		return err
	}
	if get := base.GetConfigForClient; get != nil {
		cfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := get(hi)
			if err != nil || c == nil {
				return c, err
			}
			c = c.Clone()
			c.GetConfigForClient = nil
			return m.serverTLS(c), nil
		}
	}
	return cfg
}

// unverifiedParty names the party a refused certificate claims, for the
// audit event only.
func unverifiedParty(partyOf func(*x509.Certificate) (string, error), tc *tls.Conn) string {
	cs := tc.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	p, _ := partyOf(cs.PeerCertificates[0])
	return p
}

// authorize identifies and authorises a verified peer chain. want is the
// expected party when dialing, "" when accepting.
func (m *Manager) authorize(want string, chain []*x509.Certificate) (string, error) {
	if len(chain) == 0 {
		return "", errors.New("peer sent no certificate")
	}
	party, err := m.cfg.PartyOf(chain[0])
	if err != nil {
		return "", fmt.Errorf("peer certificate names no party: %w", err)
	}
	if want != "" && party != want {
		return party, fmt.Errorf("peer certificate is for party %q, want %q", party, want)
	}
	m.mu.Lock()
	p := m.peers[party]
	var held string
	allowed := p != nil && p.allowed
	if p != nil {
		held = p.held
	}
	m.mu.Unlock()
	switch {
	case p == nil:
		return party, fmt.Errorf("party %q is not a configured peer", party)
	case !allowed:
		return party, fmt.Errorf("party %q is held: %s", party, held)
	}
	if err := m.cfg.Authorize(party, chain); err != nil {
		return party, fmt.Errorf("party %q not authorised: %w", party, err)
	}
	return party, nil
}

// hardenTLS clones c and enforces TLS 1.3 with the hybrid post-quantum
// key exchange preferred.
func hardenTLS(c *tls.Config) *tls.Config {
	c = c.Clone()
	c.MinVersion = tls.VersionTLS13
	c.MaxVersion = tls.VersionTLS13
	curves := []tls.CurveID{tls.X25519MLKEM768}
	for _, id := range c.CurvePreferences {
		if id != tls.X25519MLKEM768 {
			curves = append(curves, id)
		}
	}
	if len(curves) == 1 {
		curves = append(curves, tls.X25519)
	}
	c.CurvePreferences = curves
	return c
}

// dial makes one TLS connection to p. The server certificate is verified
// against RootCAs without a host name (links are named by party, not by
// DNS) unless the TLS config sets ServerName.
func (m *Manager) dial(ctx context.Context, p *peer, addr string) (*tls.Conn, error) {
	base, err := m.cfg.TLS(p.party)
	if err != nil {
		return nil, fmt.Errorf("client tls config for %q: %w", p.party, err)
	}
	if base == nil || base.RootCAs == nil {
		return nil, fmt.Errorf("client tls config for %q pins no CA (RootCAs is nil)", p.party)
	}
	cfg := hardenTLS(base)
	verifyChain := cfg.ServerName == ""
	if verifyChain {
		cfg.InsecureSkipVerify = true // replaced by the chain check below
	}
	roots, now := cfg.RootCAs, cfg.Time
	var refused error
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		chain := cs.PeerCertificates
		if verifyChain {
			if len(chain) == 0 {
				refused = errors.New("server sent no certificate")
				return refused
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			if now != nil {
				opts.CurrentTime = now()
			}
			for _, c := range chain[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := chain[0].Verify(opts); err != nil {
				refused = fmt.Errorf("server certificate: %w", err)
				return refused
			}
		}
		_, refused = m.authorize(p.party, chain)
		return refused
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		// With ServerName set, crypto/tls verifies the chain itself and
		// VerifyConnection never runs on a bad one: a server with an
		// unknown CA, an expired or another party's certificate is a
		// refusal too, not a transient failure.
		var cve *tls.CertificateVerificationError
		if refused == nil && errors.As(err, &cve) {
			refused = fmt.Errorf("server certificate: %w", cve.Err)
		}
		if refused != nil {
			m.event(Event{Kind: LinkRefused, Party: p.party, Remote: addr, Err: refused})
		}
		return nil, err
	}
	return tc, nil
}

// dialLoop keeps a session to p up while p is allowed and has an address.
func (m *Manager) dialLoop(p *peer) {
	defer m.wg.Done()
	backoff := m.cfg.BackoffMin
	for {
		m.mu.Lock()
		want := p.allowed && p.sess == nil && p.addr != "" && !m.closed
		addr := p.addr
		m.mu.Unlock()
		if !want {
			select {
			case <-m.ctx.Done():
				return
			case <-p.wake:
				continue
			}
		}
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.DialTimeout)
		tc, err := m.dial(ctx, p, addr)
		if err == nil {
			backoff = m.cfg.BackoffMin
			m.runSession(ctx, tc, p.party, m.cfg.Self)
		} else {
			m.mu.Lock()
			p.lastErr = err.Error()
			m.mu.Unlock()
			m.cfg.Logger.Debug("federation dial failed", "party", p.party, "addr", addr, "err", err)
		}
		cancel()
		wait := jitter(backoff)
		if err != nil {
			backoff = min(2*backoff, m.cfg.BackoffMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// jitter returns d ±50 %.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(mrand.Int64N(int64(d)))
}

// randNonce returns a random PING nonce.
func randNonce() uint64 {
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	return n.Uint64()
}
