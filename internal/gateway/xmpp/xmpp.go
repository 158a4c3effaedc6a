// Package xmpp is Liaison's XMPP gateway: standard XMPP clients chat through
// a Liaison node (C2S, RFC 6120/6121), with XEP-0258 security labels on
// messages, a label catalog built from the channel's policy, and XEP-0045
// rooms that are Liaison channels.
//
// The gateway is a translator and a first enforcement point, not the
// policy: every message becomes a [message.Message] submitted to the node's
// [Core], which runs the guard per recipient party; deliveries come back
// from [Core.Subscribe] and are released to each recipient only if the
// [Labels] ACDF grants it for that recipient's clearance. A message whose
// label the sender's clearance or the room forbids is bounced with an error
// stanza, never submitted, and recorded with the [Auditor].
//
// Stanzas are read with package stream, which keeps each stanza's raw
// bytes; labels are carried as the exact bytes the sender sent, never
// re-encoded through encoding/xml.
//
// Start with [New] and [Server.ServeC2S].
package xmpp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"liaison/internal/message"
)

// Core is what the gateway needs from the node.
type Core interface {
	// Submit accepts a message; the node runs the guard per recipient party.
	// An error (with its reason) means the message was refused locally.
	Submit(ctx context.Context, m *message.Message) error
	// Subscribe streams the channel's messages with sequence > after.
	Subscribe(ctx context.Context, channel string, after uint64) (<-chan Delivery, error)
}

// Delivery is one message of a channel, with the label to evaluate it under
// locally (the originator's label or its translation into the local policy;
// nil means Msg.Label).
type Delivery struct {
	Seq        uint64
	Msg        *message.Message
	LocalLabel []byte
}

// CatalogItem is one entry of an XEP-0258 catalog. A nil Label is the
// "send without a label" item.
type CatalogItem struct {
	Selector string
	Label    []byte // STANAG 4774 XML
	Default  bool
}

// Labels is the label engine as the gateway uses it.
type Labels interface {
	// Parse reads the element inside XEP-0258 <label/> (STANAG 4774 XML or
	// an ESS <esssecuritylabel/>) and returns STANAG 4774 XML.
	Parse(securitylabel []byte) (label4774 []byte, err error)
	// Marking returns the display marking of a label and its colours.
	Marking(label4774 []byte, lang string) (display, fg, bg string, err error)
	// ACDF decides whether clearance may see label.
	ACDF(label4774 []byte, clearance []byte) (grant bool, reason string)
	// Catalog lists the labels offered on a channel.
	Catalog(channel string) []CatalogItem
	// DefaultLabel is the label given to unlabelled messages on a channel.
	DefaultLabel(channel string) []byte
	// Permit reports whether a label is within the room's ceiling.
	Permit(label4774 []byte, room string) (bool, string)
}

// Auditor records gateway decisions (bounces, withheld deliveries).
type Auditor interface {
	Record(ctx context.Context, kind, msgID, reason string)
}

// Audit kinds recorded by the gateway.
const (
	AuditBounced  = "xmpp.bounced"
	AuditWithheld = "xmpp.withheld"
	AuditLogin    = "xmpp.login"
)

// Room is a XEP-0045 room backed by a Liaison channel.
type Room struct {
	Name    string // room localpart, e.g. "ops"
	Channel string
	Desc    string
}

// Config configures a gateway. Domain, TLS, Users, Core and Labels are
// required; the rest has defaults.
type Config struct {
	// Domain is the party's XMPP domain, e.g. "c.test".
	Domain string
	// MUCDomain is the room service; default "conference." + Domain.
	MUCDomain string
	// Party is the Origin of submitted messages, e.g. "XCC".
	Party string
	// TLS is the server configuration (certificate for Domain). STARTTLS is
	// mandatory; no plaintext authentication is offered.
	TLS   *tls.Config
	Users Users
	Core  Core
	// Labels is the label engine; Auditor may be nil.
	Labels  Labels
	Auditor Auditor
	Rooms   []Room
	// Partners are the partner XMPP domains reached over S2S.
	Partners []Partner
	// DirectChannel is the channel of 1:1 chat; default "xmpp-direct".
	DirectChannel string
	// ResumeTimeout is how long a XEP-0198 session that lost its connection
	// waits to be resumed; default 60s.
	ResumeTimeout time.Duration
	// MaxStanza bounds a stanza after authentication; default 256 KiB.
	MaxStanza int
	// Logger receives state transitions; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is a running gateway.
type Server struct {
	cfg      Config
	log      *slog.Logger
	started  time.Time
	rooms    map[string]*room // by room localpart
	byChan   map[string]*room
	partners map[string]*partner // by domain
	pByChan  map[string]*partner

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu       sync.Mutex                     // guards the fields below
	sessions map[string]map[string]*session // bare JID -> resource -> session
	conns    map[*session]struct{}          // every open client connection
	raw      map[net.Conn]struct{}          // every open S2S connection
	lns      []net.Listener
	lastSeq  map[string]uint64   // highest sequence seen live, per channel
	smIDs    map[string]*session // resumable XEP-0198 sessions by id
	closed   bool
}

// New checks cfg and returns a server that is not yet listening.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Domain == "":
		return nil, errors.New("xmpp: Config.Domain is required")
	case cfg.TLS == nil:
		return nil, errors.New("xmpp: Config.TLS is required (STARTTLS is mandatory)")
	case cfg.Users == nil:
		return nil, errors.New("xmpp: Config.Users is required")
	case cfg.Core == nil:
		return nil, errors.New("xmpp: Config.Core is required")
	case cfg.Labels == nil:
		return nil, errors.New("xmpp: Config.Labels is required")
	}
	if cfg.MUCDomain == "" {
		cfg.MUCDomain = "conference." + cfg.Domain
	}
	if cfg.Party == "" {
		cfg.Party = cfg.Domain
	}
	if cfg.DirectChannel == "" {
		cfg.DirectChannel = "xmpp-direct"
	}
	if cfg.MaxStanza <= 0 {
		cfg.MaxStanza = 256 << 10
	}
	if cfg.ResumeTimeout <= 0 {
		cfg.ResumeTimeout = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: lg, rooms: map[string]*room{}, byChan: map[string]*room{},
		sessions: map[string]map[string]*session{}, conns: map[*session]struct{}{},
		raw: map[net.Conn]struct{}{}, lastSeq: map[string]uint64{}, smIDs: map[string]*session{}, partners: map[string]*partner{}, pByChan: map[string]*partner{}}
	for _, p := range cfg.Partners {
		if p.Domain == "" || p.Addr == "" || p.Roots == nil || p.Channel == "" {
			return nil, fmt.Errorf("xmpp: partner %q needs a domain, an address, pinned roots and a channel", p.Domain)
		}
		pp := &partner{Partner: p}
		s.partners[strings.ToLower(p.Domain)] = pp
		s.pByChan[p.Channel] = pp
	}
	for _, r := range cfg.Rooms {
		if r.Name == "" || r.Channel == "" {
			return nil, fmt.Errorf("xmpp: room %q needs a name and a channel", r.Name)
		}
		if _, dup := s.rooms[r.Name]; dup {
			return nil, fmt.Errorf("xmpp: duplicate room %q", r.Name)
		}
		rm := &room{Room: r, occupants: map[string]*occupant{}}
		s.rooms[r.Name] = rm
		s.byChan[r.Channel] = rm
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	s.started = cfg.Now()
	return s, nil
}

// Start subscribes to the channels of every room and of 1:1 chat. It
// delivers only messages created after the server started; history is
// served by the archive.
func (s *Server) Start(ctx context.Context) error {
	chans := []string{s.cfg.DirectChannel}
	for _, r := range s.cfg.Rooms {
		chans = append(chans, r.Channel)
	}
	for _, p := range s.cfg.Partners {
		chans = append(chans, p.Channel)
	}
	for _, ch := range chans {
		sub, err := s.cfg.Core.Subscribe(s.ctx, ch, 0)
		if err != nil {
			return fmt.Errorf("xmpp: subscribing to channel %q: %w", ch, err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case <-s.ctx.Done():
					return
				case d, ok := <-sub:
					if !ok {
						return
					}
					s.noteSeq(ch, d.Seq)
					s.deliver(d)
				}
			}
		}()
	}
	return nil
}

// ServeC2S accepts client connections on ln (STARTTLS on connect) until
// the server is closed.
func (s *Server) ServeC2S(ln net.Listener) error {
	return s.serve(ln, false)
}

// ServeC2STLS accepts client connections with direct TLS (XEP-0368).
func (s *Server) ServeC2STLS(ln net.Listener) error {
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, direct bool) error {
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
			var conn net.Conn = c
			if direct {
				conn = tls.Server(c, s.cfg.TLS)
			}
			ss := newSession(s, conn, direct)
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				conn.Close()
				return
			}
			s.conns[ss] = struct{}{}
			s.mu.Unlock()
			ss.run()
			s.mu.Lock()
			delete(s.conns, ss)
			s.mu.Unlock()
		}()
	}
}

// Close stops listening, ends every session and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	lns := s.lns
	var all []*session
	for ss := range s.conns {
		all = append(all, ss)
	}
	for c := range s.raw {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel(errors.New("xmpp: server closed"))
	for _, ln := range lns {
		ln.Close()
	}
	for _, ss := range all {
		ss.close()
	}
	s.wg.Wait()
	return nil
}

func (s *Server) audit(kind, id, reason string) {
	s.log.Debug("xmpp: audit", "kind", kind, "id", id, "reason", reason)
	if s.cfg.Auditor != nil {
		s.cfg.Auditor.Record(s.ctx, kind, id, reason)
	}
}
