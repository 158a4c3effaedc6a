// Package store is a node's durable state: the permanent de-duplication
// table, per-channel message history, per-recipient delivery status, the
// outgoing queues with leases and holds, the two-person review of
// quarantined messages, installed agreements, pinned cards and small
// key/value state.
//
// There are two implementations of one [Store] interface sharing one schema
// and one set of SQL statements: [SQLite] (embedded, pure Go, WAL with
// synchronous=FULL, one writer goroutine doing group commit) and [Postgres]
// (pgx, for several node instances sharing one database). [Open] picks one
// from a URL.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"liaison/internal/message"
)

// DeliveryState is the state of a message for one recipient peer.
type DeliveryState string

// Delivery states.
const (
	Queued      DeliveryState = "queued"      // waiting in the peer's queue
	Held        DeliveryState = "held"        // kept back (e.g. agreement not in force); not leased
	Sent        DeliveryState = "sent"        // handed to the link, no custody ack yet
	Delivered   DeliveryState = "delivered"   // the peer took custody
	Denied      DeliveryState = "denied"      // the guard or a reviewer refused release
	Quarantined DeliveryState = "quarantined" // awaiting two-person review
	Refused     DeliveryState = "refused"     // the peer refused it
)

// Route is the guard's decision for one recipient of a message.
type Route struct {
	Peer   string
	State  DeliveryState
	Code   string // stable guard code
	Reason string // human-readable text
	// LeaseFor, for a Queued route, stores the queue row already leased
	// for this long, as Lease would: the node hands such a message (a
	// FLASH) to the peer's link itself, and releases it if that fails.
	LeaseFor time.Duration
}

// PendingAudit is an audit record written with an accepted message and not
// yet appended to the audit log. Record is opaque to the store.
type PendingAudit struct {
	ID     int64
	Record []byte
}

// Entry is one message in a channel's history.
type Entry struct {
	Seq uint64
	Msg *message.Message
}

// Delivery is the status of a message for one recipient.
type Delivery struct {
	Peer   string
	State  DeliveryState
	Code   string
	Reason string
	At     time.Time
}

// HeldItem is a message quarantined for one recipient, awaiting review.
type HeldItem struct {
	Msg       *message.Message
	Peer      string
	Reason    string
	Approvals []string // reviewers who approved so far, in order
	Since     time.Time
}

// ReviewOutcome is the result of a review.
type ReviewOutcome string

// Review outcomes.
const (
	ReviewPending  ReviewOutcome = "pending"  // one approval recorded, a second distinct reviewer is needed
	ReviewReleased ReviewOutcome = "released" // two distinct approvals: queued for the peer
	ReviewDenied   ReviewOutcome = "denied"   // a reviewer denied release
)

// Sentinel errors.
var (
	ErrNotFound        = errors.New("not found")
	ErrAlreadyReviewed = errors.New("reviewer has already approved")
	ErrNotQuarantined  = errors.New("message is not quarantined for that peer")
	ErrClosed          = errors.New("store is closed")
)

// Config configures a store. The zero value works.
type Config struct {
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// MaxBatch bounds how many writes the SQLite writer commits in one
	// transaction (group commit). Zero means 256.
	MaxBatch int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Announcer is implemented by stores whose writer can hold a commit
// briefly for accepts on their way (both of this package's stores).
type Announcer interface {
	// Announce tells the store that its caller is preparing an Accept or
	// AcceptBatch, to be made with the returned context, so that a commit
	// about to start may wait briefly for it and share one flush with it.
	// The accept ends the announcement as it is queued; a caller that will
	// not make it calls drop (which is idempotent). Announcing again with
	// a context that carries an announcement changes nothing.
	Announce(ctx context.Context) (_ context.Context, drop func())
}

// Store is a node's durable state. All methods are safe for concurrent use.
type Store interface {
	// Accept records a message in one transaction: its id in the permanent
	// de-duplication table, the message in its channel's history under the
	// next node-wide sequence number, one delivery row per route and a queue
	// row for each Queued (leasable) or Held (not leasable) route. If the id
	// was accepted before, nothing changes and Accept returns the original
	// seq with dup=true.
	Accept(ctx context.Context, m *message.Message, routes []Route, audit ...[]byte) (seq uint64, dup bool, err error)
	// AcceptBatch accepts several messages in one transaction, as Accept
	// would one after the other: new ones get consecutive seqs in slice
	// order; one whose id was accepted before, or appears earlier in the
	// batch, is a duplicate (Dup, with the original seq) and changes
	// nothing. It is atomic: on error nothing of the batch is stored.
	AcceptBatch(ctx context.Context, items []AcceptItem) ([]AcceptResult, error)
	// PendingAudit returns up to n audit records that accepted messages
	// wrote (the audit arguments of Accept) with an ID greater than after,
	// oldest (smallest ID) first; after = 0 starts at the oldest. They stay
	// pending until DoneAudit, so a crash between accepting a message and
	// appending its audit entries to the log loses none of them. A record
	// committed after a call never has an ID below one that call could
	// see, so a caller may read on from the last ID it got.
	PendingAudit(ctx context.Context, after int64, n int) ([]PendingAudit, error)
	// DoneAudit removes the pending audit records with from <= ID <= to,
	// in one statement, once they are in the log. Every record in that
	// range must have been read with PendingAudit; see PendingAudit for
	// why none can appear there later. It is relaxed (DURABILITY.md): a
	// power loss may take it back, and the records are appended again.
	DoneAudit(ctx context.Context, from, to int64) error
	// Lease returns up to n queued messages for peer that are not leased
	// (or whose lease expired), not held, for a peer not on hold, most
	// urgent precedence first and FIFO within a precedence, and leases them
	// for ttl. Each comes with its place in peer's queue (Leased.Seq), so
	// that what two leases return can be merged in queue order.
	//
	// Ack, Release and MarkSentBatch are relaxed (DURABILITY.md): their
	// commits do not wait for the disk, and a power loss may take them
	// back, which recovery redoes (a message is sent again and the partner
	// de-duplicates it). A process crash loses none of them. Lease is
	// relaxed on PostgreSQL; SQLite, which one process owns, keeps its
	// leases in memory, so that they end with the process.
	Lease(ctx context.Context, peer string, n int, ttl time.Duration) ([]Leased, error)
	// Ack removes the queue rows and marks the deliveries delivered.
	Ack(ctx context.Context, peer string, ids ...message.ID) error
	// Release clears the leases so the messages can be leased again.
	Release(ctx context.Context, peer string, ids ...message.ID) error
	// MarkSentBatch moves the queued deliveries of ids to peer to sent,
	// in one transaction.
	MarkSentBatch(ctx context.Context, peer string, ids ...message.ID) error
	// SetRoute sets a delivery's state. Queued inserts or activates a queue
	// row, Held makes it held, Denied, Refused, Quarantined and Delivered
	// remove it.
	SetRoute(ctx context.Context, id message.ID, peer string, state DeliveryState, code, reason string) error
	// Hold holds (held=true) or resumes a whole peer's queue.
	Hold(ctx context.Context, peer string, held bool, reason string) error
	// HeldFor lists the messages whose delivery state for peer is Held.
	HeldFor(ctx context.Context, peer string) ([]*message.Message, error)
	// QueueDepth counts queued, not-held rows for peer by precedence.
	QueueDepth(ctx context.Context, peer string) (map[message.Precedence]int, error)
	// Peers lists the peers with any delivery rows.
	Peers(ctx context.Context) ([]string, error)
	// History lists a channel's messages with seq > after, oldest first.
	// limit <= 0 means 100; it is capped at 10000.
	History(ctx context.Context, channel string, after uint64, limit int) ([]Entry, error)
	// Get returns a message and its seq, or ErrNotFound.
	Get(ctx context.Context, id message.ID) (*message.Message, uint64, error)
	// Status lists a message's deliveries by peer, or ErrNotFound.
	Status(ctx context.Context, id message.ID) ([]Delivery, error)
	// Quarantined lists the deliveries awaiting review, oldest first.
	Quarantined(ctx context.Context) ([]HeldItem, error)
	// Review applies the two-person rule to a quarantined delivery.
	// approve=false denies it (ReviewDenied). approve=true records the
	// reviewer (ErrAlreadyReviewed if they approved before); the second
	// distinct approval queues it for the peer in the same transaction
	// (ReviewReleased), otherwise the outcome is ReviewPending. A delivery
	// that is not quarantined gives ErrNotQuarantined. It returns the
	// approvals so far.
	Review(ctx context.Context, id message.ID, peer, reviewer string, approve bool) (ReviewOutcome, []string, error)
	// PutAgreement inserts or replaces an agreement document.
	PutAgreement(ctx context.Context, key string, doc []byte) error
	// Agreements returns the agreement documents in insertion order.
	Agreements(ctx context.Context) ([][]byte, error)
	// PutCard inserts or replaces a party's pinned card.
	PutCard(ctx context.Context, party string, card []byte) error
	// Cards returns the pinned cards by party.
	Cards(ctx context.Context) (map[string][]byte, error)
	// GetState returns a state value, or ErrNotFound.
	GetState(ctx context.Context, key string) ([]byte, error)
	// PutState sets a state value.
	PutState(ctx context.Context, key string, val []byte) error
	// Close drains pending writes and closes the store. It is idempotent.
	Close() error
}

// Open opens a store from a URL: "sqlite:PATH" or "postgres://..." /
// "postgresql://...".
func Open(ctx context.Context, url string, cfg Config) (Store, error) {
	switch {
	case strings.HasPrefix(url, "sqlite:"):
		return OpenSQLite(ctx, strings.TrimPrefix(url, "sqlite:"), cfg)
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return OpenPostgres(ctx, url, cfg)
	}
	return nil, fmt.Errorf("store url %q: want sqlite:PATH or postgres://...", url)
}

// Leased is a message Lease handed out, with its sequence number: a peer's
// queue is FIFO by Seq within a precedence.
type Leased struct {
	*message.Message
	Seq uint64
}
