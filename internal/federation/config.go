package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"liaison/internal/federation/linkproto"
	"liaison/internal/message"
)

// Outgoing is one queued message for a peer, as the Outbox leases it.
type Outgoing struct {
	ID         message.ID
	Precedence message.Precedence
	// Seq is the message's place in the outbox: within a precedence, a
	// message queued later has a larger Seq. The link sends in (Precedence,
	// Seq) order even when two leases it ran side by side return out of
	// order; an Outbox that leaves Seq zero gets lease order instead.
	Seq  uint64
	Wire []byte // sealed envelope bytes; the link never looks inside
	// Shared are byte ranges of Wire, in order, that other messages are
	// likely to repeat (an envelope's labels, its batch's key and
	// signature: envelope.SharedRanges). The link sends a message that
	// fits one frame with those ranges by reference to what it already
	// sent in the session (a DATAREF frame); the receiver gets the same
	// bytes. Optional.
	Shared [][2]int
}

// Outbox is the sending node's per-peer queue (the node implements it over
// the store and the envelope sealer).
//
// Lease MUST return the most urgent available messages first (FLASH, then
// IMMEDIATE, PRIORITY, ROUTINE; FIFO within a precedence) and MUST NOT
// return a message that is currently leased. The link leases few at a time,
// so a FLASH queued during a ROUTINE backlog is leased next. Leases need not
// be durable: the link releases what it holds when a session ends, and a
// crashed sender's leases must expire in the store (a lease TTL).
//
// Wire MUST be the same bytes for every lease of an ID if partial
// transfers are to resume; if the node re-seals, the transfer restarts
// from offset 0 (the link matches a hash of the bytes), which is correct
// but costs airtime.
type Outbox interface {
	Lease(ctx context.Context, peer string, n int) ([]Outgoing, error)
	// Ack is called only after the peer's custody ACK: delete from the queue.
	Ack(ctx context.Context, peer string, ids ...message.ID) error
	// Release returns leased, unacknowledged messages to the queue.
	Release(ctx context.Context, peer string, ids ...message.ID) error
	// Refused records the peer's denial; the message leaves the queue.
	Refused(ctx context.Context, peer string, id message.ID, code, reason string) error
	// Notify is signalled (non-blocking send, capacity >= 1) when new work
	// is queued for any peer. The link also polls every Config.Poll.
	Notify() <-chan struct{}
}

// A StreamingOutbox hands a lease over in parts as they are ready: Lease
// as the Outbox's, but emit receives the leased messages in order, a part
// at a time, so that the link sends the first (the most urgent: a lease is
// in queue order) while the node seals the rest. Once emit has been called
// with a part, the link owns it, whatever LeaseStream returns; the error
// is about the parts not emitted, which the Outbox released.
type StreamingOutbox interface {
	Outbox
	LeaseStream(ctx context.Context, peer string, n int, emit func([]Outgoing)) error
}

// Inbox is the receiving node: verify, guard and store.
//
// AcceptBatch takes the whole messages received from one peer, in arrival
// order, and returns one result per wire, in the same order. A nil result
// means the message is durably stored (or was already stored: a duplicate
// MUST give nil so the sender can let go), and only then is custody
// acknowledged. A *RefusalError means the node will never accept that
// message: the link sends a REFUSE frame. Any other error sends nothing;
// the link closes and the sender retries on a later session. The node
// should store the batch in one transaction, in slice order (so that
// messages reach the history in the order the sender put them on the
// wire: most urgent first). A link passes FLASH batches beside its other
// batches, so two calls of one link may run at once; it makes its other
// calls one at a time, each after the FLASH messages received before it
// were stored.
type Inbox interface {
	AcceptBatch(ctx context.Context, from string, wires [][]byte) []error
}

// PreparingInbox is an Inbox that can check a batch apart from storing it,
// so that a link checks the next batch while the store commits the last.
// PrepareBatch does everything AcceptBatch does but store; the returned
// function stores what passed and returns one result per wire, as
// AcceptBatch would. A link prepares its ROUTINE to IMMEDIATE batches one
// at a time, in the order it takes them (most urgent first), and calls
// their commit functions one at a time in the same order, each after the
// previous one returned; it may call PrepareBatch for the next batch
// before committing the last. FLASH batches go beside them: the link
// prepares and commits each at once, possibly while another batch is
// being prepared or committed, and commits no other batch while a FLASH
// it has received is still to be stored.
type PreparingInbox interface {
	Inbox
	PrepareBatch(ctx context.Context, from string, wires [][]byte) (commit func() []error)
}

// RefusalError is returned by Inbox.AcceptBatch to deny a message for good.
type RefusalError struct {
	Code   string // stable, machine-readable, e.g. "not-releasable"
	Reason string // for people
	Detail []byte // optional opaque proof, e.g. a denial signed by the node
}

func (e *RefusalError) Error() string {
	return fmt.Sprintf("message refused: %s: %s", e.Code, e.Reason)
}

// EventKind classifies an Event.
type EventKind uint8

const (
	LinkUp      EventKind = iota + 1 // a session to Party is established
	LinkDown                         // the session ended; Reason says why
	LinkRefused                      // a connection was refused (authentication, authorisation, held)
)

func (k EventKind) String() string {
	switch k {
	case LinkUp:
		return "up"
	case LinkDown:
		return "down"
	case LinkRefused:
		return "refused"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event reports a change of a link's state, for the node to audit.
type Event struct {
	Kind   EventKind
	Party  string // "" when a refused peer could not be identified
	Remote string // remote address
	Reason string
	Err    error
}

// DeliveryKind classifies a Delivery.
type DeliveryKind uint8

const (
	Sent      DeliveryKind = iota + 1 // last fragment written to the link
	Delivered                         // custody ACK received; Outbox.Ack done
	Refused                           // peer refused; Outbox.Refused done
)

func (k DeliveryKind) String() string {
	switch k {
	case Sent:
		return "sent"
	case Delivered:
		return "delivered"
	case Refused:
		return "refused"
	}
	return fmt.Sprintf("DeliveryKind(%d)", uint8(k))
}

// Delivery reports the progress of one outgoing message.
type Delivery struct {
	Kind         DeliveryKind
	Party        string
	ID           message.ID
	Code, Reason string // Refused only
}

// Defaults for the zero values of Config.
const (
	DefaultFragmentSize    = 16 << 10
	DefaultWindow          = 64
	DefaultWindowBytes     = 8 << 20
	DefaultPipeBytes       = 256 << 10
	DefaultLeaseBatch      = 4
	DefaultHeartbeat       = 15 * time.Second
	DefaultBackoffMin      = 500 * time.Millisecond
	DefaultBackoffMax      = time.Minute
	DefaultPoll            = 2 * time.Second
	DefaultMaxPartials     = 16
	DefaultMaxPartialBytes = 128 << 20
	DefaultAcceptBatch     = 128
	DefaultAckLinger       = 5 * time.Millisecond
)

// Config configures a Manager. Outbox, Inbox, TLS, PartyOf and Authorize
// are required; every other zero value takes the documented default.
type Config struct {
	Self string // this node's party, sent in HELLO

	// TLS returns the configuration for a link to party; party is "" for
	// the listener's server configuration. It carries the node
	// certificate and the pinned partner CAs (RootCAs/ClientCAs). The
	// Manager forces TLS 1.3, mutual authentication and X25519MLKEM768
	// first in CurvePreferences.
	TLS func(party string) (*tls.Config, error)
	// PartyOf names the party a verified peer certificate belongs to
	// (URI SAN "liaison:party:XAA").
	PartyOf func(*x509.Certificate) (string, error)
	// Authorize checks the peer's chain against the trust anchor pinned
	// for party and that an agreement in force names party. An error
	// refuses the link and is reported as a LinkRefused Event.
	Authorize func(party string, chain []*x509.Certificate) error

	Outbox Outbox
	Inbox  Inbox

	Events func(Event) // optional; must not block
	// Delivery, optional, reports progress in batches (the messages of
	// one ACK frame, or of one flush); it must not block.
	Delivery func([]Delivery)
	Control  func(party, kind string, data []byte) // optional; called on the read path, must not block
	Logger   *slog.Logger                          // nil discards

	FragmentSize int           // bytes of message data per DATA frame (16 KiB); smaller for slow links
	Window       int           // messages sent and awaiting custody ACK (64)
	WindowBytes  int           // bytes of those messages (8 MiB)
	PipeBytes    int           // data bytes written but not yet acknowledged as received (256 KiB), per precedence: a message waits only for the bytes of messages at least as urgent; ≈ max(bandwidth-delay product, 2 fragments); bounds FLASH preemption delay
	LeaseBatch   int           // messages leased at a time (4)
	Heartbeat    time.Duration // PING interval; a link silent for 3 heartbeats is dead (15 s)
	BackoffMin   time.Duration // first redial delay (500 ms), doubled up to BackoffMax (1 min), ±50 % jitter
	BackoffMax   time.Duration
	Poll         time.Duration // re-lease interval when idle, in case a Notify was missed (2 s)
	MaxPartials  int           // partially received messages kept per peer for resumption (16)
	SpoolDir     string        // where partials are kept so they survive a restart; "" keeps them in memory
	// MaxPartialBytes bounds the total sizes of the partials one peer has in
	// memory (without SpoolDir); least recently used are evicted (128 MiB).
	MaxPartialBytes int
	AcceptBatch     int           // most messages passed to one Inbox.AcceptBatch call (128)
	DialTimeout     time.Duration // TCP connect + TLS handshake + HELLO (30 s)
	// AckLinger is how long custody ACKs may gather before they go to
	// Outbox.Ack in one call (5 ms), unless AckGather of them (half the
	// window) came first; negative: each ACK frame's at once.
	AckLinger time.Duration
	AckGather int
}

func (c *Config) fill() error {
	var errs []error
	if c.Self == "" || len(c.Self) > linkproto.MaxPartyLen {
		errs = append(errs, fmt.Errorf("Self %q must be 1-%d bytes", c.Self, linkproto.MaxPartyLen))
	}
	if c.TLS == nil {
		errs = append(errs, errors.New("TLS is nil"))
	}
	if c.PartyOf == nil {
		errs = append(errs, errors.New("PartyOf is nil"))
	}
	if c.Authorize == nil {
		errs = append(errs, errors.New("Authorize is nil"))
	}
	if c.Outbox == nil {
		errs = append(errs, errors.New("Outbox is nil"))
	}
	if c.Inbox == nil {
		errs = append(errs, errors.New("Inbox is nil"))
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.FragmentSize, DefaultFragmentSize)
	def(&c.Window, DefaultWindow)
	def(&c.WindowBytes, DefaultWindowBytes)
	def(&c.LeaseBatch, DefaultLeaseBatch)
	def(&c.MaxPartials, DefaultMaxPartials)
	def(&c.AcceptBatch, DefaultAcceptBatch)
	def(&c.MaxPartialBytes, DefaultMaxPartialBytes)
	def(&c.PipeBytes, max(DefaultPipeBytes, 2*c.FragmentSize))
	defd(&c.Heartbeat, DefaultHeartbeat)
	defd(&c.BackoffMin, DefaultBackoffMin)
	defd(&c.BackoffMax, DefaultBackoffMax)
	defd(&c.Poll, DefaultPoll)
	defd(&c.DialTimeout, 30*time.Second)
	defd(&c.AckLinger, DefaultAckLinger)
	def(&c.AckGather, max(1, c.Window/2))
	if c.FragmentSize < 64 || c.FragmentSize > linkproto.MaxFragment {
		errs = append(errs, fmt.Errorf("FragmentSize %d outside 64-%d", c.FragmentSize, linkproto.MaxFragment))
	}
	if c.PipeBytes < c.FragmentSize {
		errs = append(errs, fmt.Errorf("PipeBytes %d below FragmentSize %d", c.PipeBytes, c.FragmentSize))
	}
	if c.Window < 1 || c.WindowBytes < 1 || c.LeaseBatch < 1 || c.MaxPartials < 1 || c.AcceptBatch < 1 || c.MaxPartialBytes < linkproto.MaxMessage {
		errs = append(errs, errors.New("Window, WindowBytes, LeaseBatch, MaxPartials and AcceptBatch must be positive and MaxPartialBytes at least one maximal message"))
	}
	if c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("BackoffMax %v below BackoffMin %v", c.BackoffMax, c.BackoffMin))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if len(errs) > 0 {
		return fmt.Errorf("federation config: %w", errors.Join(errs...))
	}
	return nil
}
