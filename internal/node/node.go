// Package node wires one party's Liaison node together: identity, store,
// policies and agreements, the guard, the audit log, federation links, the
// API, the console and the gateways. It owns their lifetimes; domain
// packages never import it.
//
// Start with [Open], which reads a node home made by 'liaison init', then
// [Node.Start] to bind listeners and start links, and [Node.Close] to stop.
// [Node.Submit] is the one way a message enters: the API, the console and
// every gateway call it. The node keeps one invariant above all: a message
// is acknowledged only after it is durable, and it leaves only where the
// guard released it under an agreement in force.
package node

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liaison/internal/agreement"
	"liaison/internal/api"
	"liaison/internal/audit"
	"liaison/internal/clock"
	"liaison/internal/console"
	"liaison/internal/envelope"
	"liaison/internal/federation"
	"liaison/internal/guard"
	"liaison/internal/label"
	"liaison/internal/pki"
	"liaison/internal/store"
)

// Options are the parts of a node that are not in its configuration file:
// what tests and the demo replace.
type Options struct {
	// Clock tells the time for every decision; nil means the real clock.
	Clock clock.Clock
	// Logger receives the node's structured log; nil discards it.
	Logger *slog.Logger
	// StoreURL overrides the configured store (e.g. a PostgreSQL DSN).
	StoreURL string
	// Federation tunes the links (fragment size, heartbeat, backoff);
	// zero values take the federation package's defaults.
	Federation FederationTuning
	// AuditBatchAge and AuditCheckpointInterval tune the audit log; zero
	// means the audit package's defaults.
	AuditBatchAge           time.Duration
	AuditCheckpointInterval time.Duration
	// WitnessInterval is how often the node offers its audit checkpoint to
	// each partner; default 10s. Tests and the demo call Witness directly.
	WitnessInterval time.Duration
}

// FederationTuning is the subset of federation settings a node exposes.
type FederationTuning struct {
	FragmentSize int
	Heartbeat    time.Duration
	BackoffMin   time.Duration
	BackoffMax   time.Duration
	Poll         time.Duration
	// LeaseBatch is how many messages a link leases (and seals) from the
	// store at a time; each lease is one store write. Zero is
	// nodeLeaseBatch.
	LeaseBatch int
}

// nodeLeaseBatch is the node's lease batch: a link leases (and seals) up to
// this many messages at a time (asking for the next batch once half of one
// is on the wire).
const nodeLeaseBatch = 128

// nodeWindow is the messages a link keeps in flight awaiting custody: at
// least two of the receiver's store batches (federation.DefaultAcceptBatch),
// so that it receives the next while it commits one.
const nodeWindow = 256

// Node is one party's running Liaison.
type Node struct {
	cfg   *Config
	party string
	id    *pki.Identity
	clock clock.Clock
	log   *slog.Logger
	store store.Store
	// announcer is the store's, if it has one: see Announce.
	announcer store.Announcer
	// commits is the store's, if it counts its commits (metrics).
	commits store.CommitStatser
	audit   *audit.Log
	witness *audit.Witness
	fed     *federation.Manager
	api     *api.Server
	console *console.Console
	reg     *prometheus.Registry
	metrics *metrics
	opener  *envelope.Opener
	words   map[string][]string
	history *signal // fired when any channel's history grows
	status  *signal // fired when a delivery status changes (live pages)
	tail    *tail   // recent history for live subscribers; nil on PostgreSQL
	outWork chan struct{}
	outbox  *outbox // the federation's, kept for delivery audit fields
	flash   *flashGate
	// auditWork wakes the audit pump (auditpump.go).
	auditWork chan struct{}
	control   *controlMux
	opts      Options
	gw        gateways

	mu         sync.RWMutex // guards the fields below
	agreements *agreement.Set
	policies   *label.PolicySet
	cards      map[string]*pki.Card
	allowed    map[string]bool // partner → link allowed now (absent: never decided)
	fedPeers   map[string]bool // partners added to the federation manager
	links      map[string]api.Link
	phases     map[string]string // agreement digest → last status seen
	alarms     []string
	rates      *rates

	// quit is closed when Close begins: live streams end and new API
	// connections are closed at once.
	quit     chan struct{}
	connMu   sync.Mutex
	newConns map[net.Conn]bool // API connections that have sent no request yet

	startOnce sync.Once
	closeOnce sync.Once
	cancel    context.CancelCauseFunc
	wg        sync.WaitGroup
	httpSrv   *http.Server
	apiAddr   net.Addr
	fedAddr   net.Addr
}

// Open reads the node home dir and opens the node's store, audit log and
// identity. It starts nothing: call Start.
func Open(ctx context.Context, dir string, opts Options) (_ *Node, err error) {
	silenceKlog()
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	id, err := pki.Load(dir)
	if err != nil {
		return nil, err
	}
	if id.Party != cfg.Party {
		return nil, fmt.Errorf("%s: party %q does not match the node identity's %q", filepath.Join(dir, ConfigFile), cfg.Party, id.Party)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.WitnessInterval == 0 {
		opts.WitnessInterval = 10 * time.Second
	}
	n := &Node{
		cfg: cfg, party: cfg.Party, id: id, clock: opts.Clock, opts: opts,
		log:      opts.Logger.With(slog.String("party", cfg.Party)),
		reg:      prometheus.NewRegistry(),
		history:  newSignal(),
		status:   newSignal(),
		outWork:  make(chan struct{}, 1),
		flash:    newFlashGate(maxFlashPause),
		cards:    map[string]*pki.Card{},
		allowed:  map[string]bool{},
		fedPeers: map[string]bool{},
		links:    map[string]api.Link{},
		phases:   map[string]string{},
		rates:    newRates(),
		quit:     make(chan struct{}),
		newConns: map[net.Conn]bool{},
	}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	n.metrics = newMetrics(n)
	if err := n.reg.Register(n.metrics); err != nil {
		return nil, err
	}
	if n.words, err = cfg.dirtyWords(); err != nil {
		return nil, err
	}

	url := cfg.Store
	if opts.StoreURL != "" {
		url = opts.StoreURL
	}
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
		url = "sqlite:" + cfg.Path(path)
	}
	if n.store, err = store.Open(ctx, url, store.Config{Logger: n.log}); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// Closers capture the values: a failed Open returns n == nil before
	// they run.
	st := n.store
	closers = append(closers, func() { st.Close() })
	n.announcer, _ = st.(store.Announcer)
	n.commits, _ = st.(store.CommitStatser)
	if strings.HasPrefix(url, "sqlite:") {
		// Only this process writes a SQLite store, so every new message
		// passes through the tail (tail.go).
		n.tail = newTail(tailEntries, tailBytes)
		n.store = tailStore{Store: n.store, t: n.tail}
	}

	if n.audit, err = audit.Open(ctx, cfg.Path(cfg.Audit.Dir), audit.Config{
		Origin: AuditOrigin(cfg.Party), Signer: id.SigningKey, Logger: n.log,
		BatchMaxAge: opts.AuditBatchAge, CheckpointInterval: opts.AuditCheckpointInterval,
		Registerer: n.reg, Now: n.clock.Now,
	}); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	al := n.audit
	closers = append(closers, func() { al.Close(context.Background()) })
	if n.witness, err = audit.NewWitness(audit.WitnessConfig{
		Dir: cfg.Path(filepath.Join(cfg.Audit.Dir + "-witness")), Name: WitnessName(cfg.Party),
		Signer: id.SigningKey, Log: n.audit, Logger: n.log, Registerer: n.reg,
		OnFork: n.onFork,
	}); err != nil {
		return nil, fmt.Errorf("open witness: %w", err)
	}

	if err := n.loadPolicies(); err != nil {
		return nil, err
	}
	if err := n.loadState(ctx); err != nil {
		return nil, err
	}
	n.opener = &envelope.Opener{Verify: n.verifyOrigin, Keys: id.HPKEKey, Self: n.party}
	n.outbox = &outbox{n: n}
	n.outbox.marks = n.newSentMarks()
	n.control = newControlMux(n)

	if n.fed, err = federation.New(federation.Config{
		Self:         n.party,
		TLS:          n.tlsFor,
		PartyOf:      pki.PartyFromCert,
		Authorize:    n.authorize,
		Outbox:       n.outbox,
		Inbox:        &inbox{n: n},
		Events:       n.onLinkEvent,
		Delivery:     n.onDelivery,
		Control:      n.control.receive,
		Logger:       n.log.With(slog.String("component", "federation")),
		FragmentSize: opts.Federation.FragmentSize,
		Heartbeat:    opts.Federation.Heartbeat,
		BackoffMin:   opts.Federation.BackoffMin,
		BackoffMax:   opts.Federation.BackoffMax,
		Poll:         opts.Federation.Poll,
		LeaseBatch:   cmp.Or(opts.Federation.LeaseBatch, nodeLeaseBatch),
		Window:       nodeWindow,
		SpoolDir:     cfg.Path("spool"),
	}); err != nil {
		return nil, err
	}

	for party := range n.cards {
		if err := n.fed.AddPeer(party, ""); err != nil {
			return nil, err
		}
		n.fedPeers[party] = true
	}

	if n.api, err = api.New(api.Config{Backend: n, Tokens: cfg.apiTokens(), CertRoles: cfg.certRoles(), Logger: n.log, Registry: n.reg}); err != nil {
		return nil, err
	}
	if n.console, err = console.New(console.Config{Backend: n, Auth: n.api, Logger: n.log, Now: n.clock.Now}); err != nil {
		return nil, err
	}
	n.api.Handle("/console/", n.console)
	n.api.Handle("GET /console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
	return n, nil
}

// AuditOrigin is the origin line of party's audit log checkpoints.
func AuditOrigin(party string) string { return "liaison." + strings.ToLower(party) + "/audit" }

// WitnessName names party's witness cosigning key.
func WitnessName(party string) string { return "liaison." + strings.ToLower(party) + "/witness" }

// loadPolicies reads the configured SPIF files.
func (n *Node) loadPolicies() error {
	ps, err := label.NewPolicySet()
	if err != nil {
		return err
	}
	for _, f := range n.cfg.Policies {
		data, err := os.ReadFile(n.cfg.Path(f))
		if err != nil {
			return fmt.Errorf("policies: %w", err)
		}
		p, err := label.ParsePolicy(data)
		if err != nil {
			return fmt.Errorf("policies: %s: %w", f, err)
		}
		if err := ps.Add(p); err != nil {
			return fmt.Errorf("policies: %s: %w", f, err)
		}
	}
	n.policies = ps
	return nil
}

// loadState reads installed agreements and pinned cards from the store.
func (n *Node) loadState(ctx context.Context) error {
	set, err := agreement.NewSet()
	if err != nil {
		return err
	}
	docs, err := n.store.Agreements(ctx)
	if err != nil {
		return fmt.Errorf("load agreements: %w", err)
	}
	for _, raw := range docs {
		d, err := agreement.Parse(raw)
		if err != nil {
			return fmt.Errorf("stored agreement no longer parses: %w", err)
		}
		if err := set.Add(d); err != nil {
			return fmt.Errorf("stored agreement %s v%d: %w", d.ID, d.Version, err)
		}
	}
	n.agreements = set
	cards, err := n.store.Cards(ctx)
	if err != nil {
		return fmt.Errorf("load cards: %w", err)
	}
	for party, raw := range cards {
		c, err := pki.ParseCard(raw)
		if err != nil {
			return fmt.Errorf("stored card of %s: %w", party, err)
		}
		n.cards[c.Party] = c
		// The partner's audit checkpoints are signed by its node key.
		if err := n.witness.Pin(AuditOrigin(c.Party), c.SigningKey); err != nil {
			return err
		}
	}
	// Cards imported with 'liaison card import' before the node first ran.
	files, err := pki.LoadCards(n.cfg.Home())
	if err != nil {
		return err
	}
	for _, c := range files {
		if _, ok := n.cards[c.Party]; !ok {
			if err := n.pinCard(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// Start binds the federation and API listeners, dials configured peers and
// starts the node's background work. It returns once listeners are bound.
func (n *Node) Start(ctx context.Context) error {
	var err error
	n.startOnce.Do(func() { err = n.start(ctx) })
	return err
}

func (n *Node) start(ctx context.Context) error {
	ctx, n.cancel = context.WithCancelCause(context.WithoutCancel(ctx))
	addr, err := n.fed.Listen(ctx, n.cfg.Federation.Listen)
	if err != nil {
		return fmt.Errorf("federation listen: %w", err)
	}
	n.fedAddr = addr
	for _, p := range n.cfg.Peers {
		if err := n.AddPeer(p.Party, p.Endpoint); err != nil {
			return err
		}
	}
	if n.cfg.API.Listen != "off" {
		ln, err := net.Listen("tcp", n.cfg.API.Listen)
		if err != nil {
			return fmt.Errorf("api listen: %w", err)
		}
		n.apiAddr = ln.Addr()
		n.httpSrv = &http.Server{
			Handler:           n.api,
			ReadHeaderTimeout: 10 * time.Second,
			TLSConfig:         n.apiTLS(),
			ConnState:         n.trackConn,
			ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.httpSrv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("api server stopped", slog.Any("error", err))
			}
		}()
	}
	if err := n.startGateways(ctx); err != nil {
		return err
	}
	n.reconcileLinks(ctx)
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.auditPump(ctx) }()
	go func() { defer n.wg.Done(); n.watch(ctx) }()
	go func() { defer n.wg.Done(); n.witnessLoop(ctx) }()
	n.log.Info("node started", slog.String("federation", n.fedAddr.String()), slog.Any("api", n.apiAddr))
	return nil
}

// apiTLS serves the node certificate and asks for (but does not require) a
// client certificate from the node's own CA, which API roles map.
func (n *Node) apiTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(n.id.CACert)
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{n.id.TLSCert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
	}
}

// Close stops the node: listeners first, then links, then the audit log
// and the store, so that no accepted message is lost.
func (n *Node) Close() error {
	var errs []error
	n.closeOnce.Do(func() {
		if n.cancel != nil {
			n.cancel(errors.New("node closing"))
		}
		close(n.quit)
		n.connMu.Lock()
		for c := range n.newConns {
			c.Close()
		}
		n.connMu.Unlock()
		if n.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, n.httpSrv.Shutdown(ctx))
			cancel()
		}
		n.closeGateways()
		errs = append(errs, n.fed.Close())
		n.wg.Wait()
		errs = append(errs, n.audit.Close(context.Background()))
		errs = append(errs, n.store.Close())
	})
	return errors.Join(errs...)
}

// trackConn remembers API connections that have sent no request yet, so
// that Close can close them: http.Server.Shutdown counts such a connection
// (a client's spare pooled one, say) as busy for 5s, and Close would then
// time out. No request on it was acknowledged, so closing it loses nothing.
func (n *Node) trackConn(c net.Conn, st http.ConnState) {
	n.connMu.Lock()
	defer n.connMu.Unlock()
	if st != http.StateNew {
		delete(n.newConns, c)
		return
	}
	select {
	case <-n.quit:
		c.Close()
	default:
		n.newConns[c] = true
	}
}

// Party is the party this node serves.
func (n *Node) Party() string { return n.party }

// FederationAddr is the bound federation address (after Start).
func (n *Node) FederationAddr() net.Addr { return n.fedAddr }

// APIAddr is the bound API address (after Start), or nil.
func (n *Node) APIAddr() net.Addr { return n.apiAddr }

// Identity is the node's identity.
func (n *Node) Identity() *pki.Identity { return n.id }

// AuditReader reads the node's audit log, checking what it reads against
// the log's latest signed checkpoint.
func (n *Node) AuditReader() *audit.Reader { return n.audit.Reader() }

// CommitStats reports the store's commits since the node started (also
// on /metrics), if the store counts them.
func (n *Node) CommitStats() (store.CommitStats, bool) {
	if n.commits == nil {
		return store.CommitStats{}, false
	}
	return n.commits.CommitStats(), true
}

// Handler is the node's HTTP handler (API and console), for tests.
func (n *Node) Handler() http.Handler { return n.api }

// Card returns the node's signed public card.
func (n *Node) Card() ([]byte, error) {
	var eps []string
	if n.fedAddr != nil {
		eps = []string{n.fedAddr.String()}
	} else {
		eps = n.cfg.Federation.Advertise
	}
	c, err := n.id.Card(eps, n.clock.Now())
	if err != nil {
		return nil, err
	}
	return c.Marshal()
}

// ImportCard verifies and pins a partner's card.
func (n *Node) ImportCard(ctx context.Context, data []byte) error {
	c, err := pki.ParseCard(data)
	if err != nil {
		return err
	}
	if c.Party == n.party {
		return fmt.Errorf("card is this node's own party %q", c.Party)
	}
	return n.pinCard(ctx, c)
}

func (n *Node) pinCard(ctx context.Context, c *pki.Card) error {
	n.mu.Lock()
	old, ok := n.cards[c.Party]
	if ok && old.CAFingerprint() != c.CAFingerprint() {
		n.mu.Unlock()
		return fmt.Errorf("card of %s names CA %s, but %s is pinned; re-pinning needs the old card removed", c.Party, c.CAFingerprint(), old.CAFingerprint())
	}
	if ok && c.Epoch < old.Epoch {
		n.mu.Unlock()
		return fmt.Errorf("card of %s has key epoch %d, older than the pinned %d", c.Party, c.Epoch, old.Epoch)
	}
	n.cards[c.Party] = c
	listen := !n.fedPeers[c.Party]
	n.fedPeers[c.Party] = true
	delete(n.allowed, c.Party) // decide the new peer's link afresh
	n.mu.Unlock()
	if listen && n.fed != nil {
		// Accept links from the partner; AddPeer makes this node dial too.
		if err := n.fed.AddPeer(c.Party, ""); err != nil {
			return err
		}
	}
	raw, err := c.Marshal()
	if err != nil {
		return err
	}
	if err := n.store.PutCard(ctx, c.Party, raw); err != nil {
		return err
	}
	// The partner's audit checkpoints are signed by its node key; its
	// witness key arrives over the authenticated link (see control.go).
	if err := n.witness.Pin(AuditOrigin(c.Party), c.SigningKey); err != nil {
		return err
	}
	n.record(ctx, audit.Entry{Kind: audit.KindConfigChanged, Peer: c.Party, Decision: "card-pinned", Detail: map[string]string{"ca": c.CAFingerprint(), "epoch": fmt.Sprint(c.Epoch)}})
	if n.fed != nil {
		n.reconcileLinks(ctx)
	}
	return nil
}

// AddPeer tells the node to dial party at endpoint.
func (n *Node) AddPeer(party, endpoint string) error {
	if err := n.fed.AddPeer(party, endpoint); err != nil {
		return fmt.Errorf("peer %s: %w", party, err)
	}
	n.mu.Lock()
	n.fedPeers[party] = true
	delete(n.allowed, party)
	if _, ok := n.links[party]; !ok {
		n.links[party] = api.Link{Party: party, State: "down", Reason: "not connected yet", Since: n.clock.Now()}
	}
	n.mu.Unlock()
	n.reconcileLinks(context.Background())
	return nil
}

// card returns the pinned card of party.
func (n *Node) card(party string) (*pki.Card, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	c, ok := n.cards[party]
	return c, ok
}

// rules returns what the guard decides against now.
func (n *Node) rules() guard.Rules {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return guard.Rules{Agreements: n.agreements, Policies: n.policies, DirtyWords: n.words}
}

// record appends an audit entry without waiting for its index; failures
// are logged and counted, never silently dropped.
func (n *Node) record(ctx context.Context, e audit.Entry) {
	if e.At.IsZero() {
		e.At = n.clock.Now()
	}
	if e.Party == "" {
		e.Party = n.party
	}
	wait := n.audit.AppendAsync(ctx, e)
	go func() {
		if _, err := wait(); err != nil {
			n.metrics.auditErrors.Inc()
			n.log.Error("audit append failed", slog.String("kind", e.Kind), slog.Any("error", err))
		}
	}()
}

// digest is the SHA-256 of a message's signed parts, as audited.
func digest(label, body []byte) string {
	h := sha256.New()
	h.Write(label)
	h.Write([]byte{0})
	h.Write(body)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func (n *Node) setLink(party, state, reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.links[party]
	if l.State == state && l.Reason == reason {
		return
	}
	n.links[party] = api.Link{Party: party, State: state, Reason: reason, Since: n.clock.Now()}
}

func (n *Node) alarm(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	n.mu.Lock()
	if !slices.Contains(n.alarms, msg) {
		n.alarms = append(n.alarms, msg)
	}
	n.mu.Unlock()
	n.log.Error("alarm", slog.String("alarm", msg))
}
