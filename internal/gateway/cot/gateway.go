// Package cot is Liaison's TAK gateway: it speaks Cursor-on-Target to TAK
// clients (streaming TCP, TLS with client certificates, UDP input) in XML
// (protocol 0) and TAK Protocol version 1, and turns events into labelled
// core messages and back.
//
// Start with [New] and [Config]. The gateway needs two things from its node,
// both small interfaces defined here: a [Core] that accepts and delivers
// messages, and a [Labeler] that maps CoT markings to STANAG 4774 labels.
//
// Labels fail closed: an event's label comes from its access, caveat and
// releasableTo markings; an unmarked or unmappable event gets its channel's
// default label, because third-party TAK software drops markings and their
// absence proves nothing. Every labelling decision is audited with the
// original marking and the effective label. On the way out the gateway
// writes the marking of the label the node gives for this side's policy.
//
// Control traffic (pings, protocol negotiation) is answered locally and
// never forwarded. Every client has a bounded queue; a full queue blocks the
// channel's delivery (backpressure) and a client that stays stuck is
// disconnected and audited, never silently skipped.
package cot

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"liaison/internal/message"
)

// ContentType is the core message content type for a CoT event.
const ContentType = "application/cot+xml"

// Core is what the gateway needs from its node.
type Core interface {
	// Submit accepts a labelled message from a local client into a channel.
	// The node runs the guard per recipient.
	Submit(ctx context.Context, m *message.Message) error
	// Subscribe streams messages delivered to this node on a channel (from
	// partners and local), starting after sequence after.
	Subscribe(ctx context.Context, channel string, after uint64) (<-chan Delivery, error)
}

// Delivery is one message delivered on a channel.
type Delivery struct {
	Seq uint64
	Msg *message.Message
	// LocalLabel is the label to show locally: STANAG 4774 XML under this
	// node's policy.
	LocalLabel []byte
}

// Auditor records the gateway's security-relevant decisions.
type Auditor interface {
	Audit(ctx context.Context, r Record)
}

// Record is one audit record.
type Record struct {
	Kind    string // "label", "refused", "slow-client", "negotiation", "error"
	Client  string // user name and remote address
	Channel string
	UID     string // CoT uid
	// Original is the marking as received: access//caveat//releasableTo.
	Original string
	// Effective is the label the message carries (STANAG 4774 XML).
	Effective []byte
	Detail    string
}

// User is one client certificate's identity: its party user and TAK groups.
type User struct {
	Name   string
	Groups []string
}

// Config configures a Gateway. The zero value listens nowhere.
type Config struct {
	// Origin is this node's party, written into every message.
	Origin string
	// TCP, TLS and UDP are listen addresses ("" = off); conventionally
	// :8088, :8089 and :8087.
	TCP, TLS, UDP string
	// TLSConfig is the server side of TLS; it should require and verify
	// client certificates. Required when TLS is set.
	TLSConfig *tls.Config
	// Users maps a verified client certificate to a user, by
	// "sha256:<hex of the DER certificate>" or else by subject common name.
	// A TLS client whose certificate is not listed is refused.
	Users map[string]User
	// AnonymousGroups are the groups of TCP and UDP clients (TAK's
	// __ANON__); none means they may connect but reach no channel.
	AnonymousGroups []string
	// Channels maps a TAK group to a core channel.
	Channels map[string]string
	// StartAfter gives, per channel, the sequence to subscribe after (the
	// node's current head, so that history is not replayed to clients);
	// missing channels start at 0.
	StartAfter map[string]uint64
	// DefaultLabels gives each channel's label for unmarked or
	// unmappable events. A channel without one refuses such events.
	DefaultLabels map[string][]byte
	// DefaultLabel, if set, is asked for a channel's default label at the
	// moment an event needs one, so that a newly installed agreement's
	// default applies without a restart; it takes precedence over
	// DefaultLabels. Nil from it means no default (the event is refused).
	DefaultLabel func(channel string) []byte
	// Precedence of submitted messages by name ("" = ROUTINE).
	Precedence string
	// MaxEvent bounds one event in bytes (DefaultMaxEvent if zero, at most
	// HardMaxEvent).
	MaxEvent int
	// MinBatch is the backlog that means load: each user's events go to
	// the core event by event until the user's submitter finds MinBatch
	// of them waiting; from then on every run of two or more (same
	// channel, label and precedence) is one message, until it finds a
	// single event waiting (default DefaultMinBatch; 1 batches any run).
	MinBatch int
	// MaxBatch bounds the events in one submitted message (default
	// DefaultMaxBatch; 1 turns batching off).
	MaxBatch int
	// MaxBatchBytes bounds a batch's body (default DefaultMaxBatchBytes,
	// at most HardMaxEvent); keep it below the smallest content max_size
	// of the gateway's channels. A larger event travels alone.
	MaxBatchBytes int
	// BatchQueue bounds the events one user's clients (anonymous: TCP
	// and UDP clients) may have waiting for the core; a full queue blocks
	// their readers (default DefaultBatchQueue).
	BatchQueue int
	// QueueLen bounds each client's outbound queue (default 1024).
	QueueLen int
	// SlowClient is how long a full client queue may block delivery
	// before the client is disconnected (default 30s).
	SlowClient time.Duration
	// NegotiationWait is how long a client may wait for the answer to a
	// protocol request; it also bounds idle reads before a ping (default
	// 2m, TAK clients ping every 5-15s).
	IdleTimeout time.Duration
	Logger      *slog.Logger
	Auditor     Auditor
	Now         func() time.Time
}

// Gateway is a running TAK gateway.
type Gateway struct {
	cfg     Config
	prec    message.Precedence
	core    Core
	labeler Labeler
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelCauseFunc
	wg      sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	listeners []net.Listener
	udp       net.PacketConn
	clients   map[*client]struct{}
	channels  map[string]*fanout
	sent      map[message.ID][]*client // echo suppression: each event's sender
	subs      map[string]*submitter    // by user
	sentOrder []message.ID
	contacts  map[string]Contact
	closed    bool
}

// Contact is a TAK client's identity as TAK shows it: a local client's
// first SA with a contact, or a partner's client seen in delivered events.
type Contact struct {
	UID, Callsign, Endpoint string
	Party                   string // the origin party
	User, Remote            string // local clients only: user and address
}

// New checks cfg and returns a gateway; Start opens its listeners.
func New(cfg Config, core Core, labeler Labeler) (*Gateway, error) {
	if core == nil || labeler == nil {
		return nil, errors.New("cot gateway needs a core and a labeler")
	}
	if cfg.TLS != "" && cfg.TLSConfig == nil {
		return nil, fmt.Errorf("tls listener %q needs a TLSConfig", cfg.TLS)
	}
	if cfg.MaxEvent < 0 || cfg.MaxEvent > HardMaxEvent {
		return nil, fmt.Errorf("max event %d bytes outside 0-%d", cfg.MaxEvent, HardMaxEvent)
	}
	if cfg.MaxEvent == 0 {
		cfg.MaxEvent = DefaultMaxEvent
	}
	if cfg.MinBatch < 0 || cfg.MaxBatch < 0 || cfg.MaxBatchBytes < 0 || cfg.MaxBatchBytes > HardMaxEvent || cfg.BatchQueue < 0 {
		return nil, fmt.Errorf("batch bounds %d events, %d bytes, queue %d: negative, or bytes above %d", cfg.MaxBatch, cfg.MaxBatchBytes, cfg.BatchQueue, HardMaxEvent)
	}
	if cfg.MinBatch == 0 {
		cfg.MinBatch = DefaultMinBatch
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxBatchBytes == 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.BatchQueue == 0 {
		cfg.BatchQueue = DefaultBatchQueue
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1024
	}
	if cfg.SlowClient <= 0 {
		cfg.SlowClient = 30 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	prec := message.Routine
	if cfg.Precedence != "" {
		p, err := message.ParsePrecedence(cfg.Precedence)
		if err != nil {
			return nil, err
		}
		prec = p
	}
	if cfg.Origin == "" {
		return nil, errors.New("cot gateway needs an origin party")
	}
	for g, ch := range cfg.Channels {
		if ch == "" {
			return nil, fmt.Errorf("group %q maps to an empty channel", g)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Gateway{
		cfg: cfg, prec: prec, core: core, labeler: labeler, log: log, ctx: ctx, cancel: cancel,
		clients: map[*client]struct{}{}, channels: map[string]*fanout{},
		sent: map[message.ID][]*client{}, subs: map[string]*submitter{}, contacts: map[string]Contact{},
	}, nil
}

// Start subscribes to every configured channel, opens the configured
// listeners and serves until Close.
func (g *Gateway) Start(ctx context.Context) error {
	g.mu.Lock()
	err := g.subscribe()
	g.mu.Unlock()
	if err != nil {
		g.Close()
		return err
	}
	lc := net.ListenConfig{}
	open := func(addr string, tc *tls.Config) error {
		if addr == "" {
			return nil
		}
		l, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %q: %w", addr, err)
		}
		if tc != nil {
			l = tls.NewListener(l, tc)
		}
		g.mu.Lock()
		g.listeners = append(g.listeners, l)
		g.mu.Unlock()
		g.wg.Go(func() { g.accept(l, tc != nil) })
		return nil
	}
	if err := open(g.cfg.TCP, nil); err != nil {
		g.Close()
		return err
	}
	if err := open(g.cfg.TLS, g.cfg.TLSConfig); err != nil {
		g.Close()
		return err
	}
	if g.cfg.UDP != "" {
		pc, err := lc.ListenPacket(ctx, "udp", g.cfg.UDP)
		if err != nil {
			g.Close()
			return fmt.Errorf("listen udp %q: %w", g.cfg.UDP, err)
		}
		g.mu.Lock()
		g.udp = pc
		g.mu.Unlock()
		g.wg.Go(func() { g.serveUDP(pc) })
	}
	return nil
}

// Addrs returns the listeners' addresses: TCP, TLS, UDP (nil when off).
func (g *Gateway) Addrs() (tcp, tlsAddr, udp net.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := 0
	if g.cfg.TCP != "" && i < len(g.listeners) {
		tcp = g.listeners[i].Addr()
		i++
	}
	if g.cfg.TLS != "" && i < len(g.listeners) {
		tlsAddr = g.listeners[i].Addr()
	}
	if g.udp != nil {
		udp = g.udp.LocalAddr()
	}
	return
}

// Contacts returns the local and partner clients that announced a
// contact, one per uid.
func (g *Gateway) Contacts() []Contact {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Contact, 0, len(g.contacts))
	for _, c := range g.contacts {
		out = append(out, c)
	}
	return out
}

// Close stops the listeners and every client, and waits for them.
func (g *Gateway) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	ls, udp := g.listeners, g.udp
	var cs []*client
	for c := range g.clients {
		cs = append(cs, c)
	}
	g.mu.Unlock()
	g.cancel(errors.New("gateway closed"))
	for _, l := range ls {
		l.Close()
	}
	if udp != nil {
		udp.Close()
	}
	for _, c := range cs {
		c.conn.Close()
	}
	g.wg.Wait()
	g.mu.Lock()
	subs := g.subs
	g.subs = nil
	g.mu.Unlock()
	for _, s := range subs {
		s.close()
	}
	return nil
}

func (g *Gateway) audit(r Record) {
	if g.cfg.Auditor != nil {
		g.cfg.Auditor.Audit(g.ctx, r)
	}
}

func (g *Gateway) accept(l net.Listener, isTLS bool) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		g.wg.Go(func() { g.serve(conn, isTLS) })
	}
}

// channelsFor maps groups to channels, deduplicated, in group order.
func (g *Gateway) channelsFor(groups []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, grp := range groups {
		if ch, ok := g.cfg.Channels[grp]; ok && !seen[ch] {
			seen[ch] = true
			out = append(out, ch)
		}
	}
	return out
}
