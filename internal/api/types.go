package api

import (
	"context"
	"time"

	"liaison/internal/message"
)

// Backend is what the API needs from a node. The node implements it; the
// API and the console are its only users, so neither reaches the store by
// another path.
type Backend interface {
	// Party is the party this node serves, e.g. "USA".
	Party() string
	// Submit accepts a message: the guard decides per recipient and the
	// message is stored durably before Submit returns.
	Submit(ctx context.Context, m *message.Message) (*Receipt, error)
	// SubmitBatch submits several messages as Submit does each, in order,
	// and returns one result per message: a refusal of one does not stop
	// the others, and every accepted one is durable before it returns.
	SubmitBatch(ctx context.Context, ms []*message.Message) []SubmitResult
	// History returns a channel's messages with sequence numbers above
	// after, oldest first, at most limit.
	History(ctx context.Context, channel string, after uint64, limit int) ([]Entry, error)
	// Subscribe streams a channel's messages with sequence numbers above
	// after, until ctx is done.
	Subscribe(ctx context.Context, channel string, after uint64) (<-chan Entry, error)
	// MessageStatus is the per-recipient delivery status of one message.
	MessageStatus(ctx context.Context, id message.ID) (*MessageStatus, error)
	Agreements(ctx context.Context) ([]Agreement, error)
	InstallAgreement(ctx context.Context, yaml []byte) (*Agreement, error)
	// May answers "may from send to to on channel now?".
	May(ctx context.Context, from, to, channel string) Permit
	Quarantine(ctx context.Context) ([]Held, error)
	Review(ctx context.Context, id message.ID, recipient, reviewer string, approve bool) (*ReviewResult, error)
	Status(ctx context.Context) (*NodeStatus, error)
	// Catalog lists the labels a sender may choose on a channel, with
	// their markings, built from the node's policy.
	Catalog(ctx context.Context, channel string) ([]LabelChoice, error)
	// Audit returns recent audit entries (all, or those of one message),
	// newest first, and what partners witnessed.
	Audit(ctx context.Context, messageID string, limit int) (*AuditView, error)
	// RotateKey makes a new HPKE key epoch now and sends the new card to
	// connected partners; it returns the new epoch.
	RotateKey(ctx context.Context) (uint32, error)
	// Ready reports nil once the node can accept messages.
	Ready(ctx context.Context) error
}

// SubmitResult is the outcome of one message of a SubmitBatch: what Submit
// would have returned for it.
type SubmitResult struct {
	Receipt *Receipt
	Err     error
}

// Receipt is the answer to a submitted message.
type Receipt struct {
	ID         message.ID  `json:"id"`
	Seq        uint64      `json:"seq"`
	Duplicate  bool        `json:"duplicate"`
	Recipients []Recipient `json:"recipients"`
}

// Recipient is the guard's decision for one recipient party, and later the
// delivery state.
type Recipient struct {
	Party  string    `json:"party"`
	State  string    `json:"state"` // queued, held, sent, delivered, denied, quarantined, refused
	Code   string    `json:"code,omitempty"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at,omitzero"`
}

// Entry is one message in a channel's history.
type Entry struct {
	Seq     uint64           `json:"seq"`
	Message *message.Message `json:"message"`
	// Marking is the display marking of the label under this node's
	// policy, in the node's language.
	Marking string `json:"marking,omitempty"`
	// Colour is the policy's colour for the label's classification (CSS
	// colour), if it gives one.
	Colour string `json:"colour,omitempty"`
	// Recipients is the delivery state per recipient, for messages this
	// node originated.
	Recipients []Recipient `json:"recipients,omitempty"`
}

// LabelChoice is a label a sender may pick, with its marking.
type LabelChoice struct {
	Marking string `json:"marking"`
	Label   string `json:"label"` // STANAG 4774 XML
	Colour  string `json:"colour,omitempty"`
}

// AuditView is a slice of the audit log and the partners' witnessing.
type AuditView struct {
	Entries []AuditEntry `json:"entries"`
	Status  *AuditStatus `json:"status"`
}

// AuditEntry is one audit log entry.
type AuditEntry struct {
	Index     uint64    `json:"index"`
	Pos       int       `json:"pos,omitempty"` // position in a leaf that groups several entries
	Kind      string    `json:"kind"`
	At        time.Time `json:"at"`
	MessageID string    `json:"message_id,omitempty"`
	Digest    string    `json:"digest,omitempty"`
	Peer      string    `json:"peer,omitempty"`
	Channel   string    `json:"channel,omitempty"`
	Decision  string    `json:"decision,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Actor     string    `json:"actor,omitempty"`
}

// Announcer is implemented by backends that like to know that a message
// is on its way before it is checked: the API announces each post once
// its body has been read, submits it with the context Announce returns,
// and calls drop when it is done.
type Announcer interface {
	Announce(ctx context.Context) (_ context.Context, drop func())
}

// AuditReconciler is implemented by backends that can compare their audit
// log with a partner's (GET /v1/audit/reconcile); the route answers 501
// for a backend that does not.
type AuditReconciler interface {
	// ReconcileAudit lists, for the messages that crossed between this
	// node and peer, what one side's log records and the other's lacks.
	ReconcileAudit(ctx context.Context, peer string) (*AuditDiff, error)
}

// AuditDiff is what this node's and a partner's audit logs disagree on
// about the messages that crossed between them.
type AuditDiff struct {
	Peer       string          `json:"peer"`
	Matched    int             `json:"matched"`
	OnlyMine   []AuditEntry    `json:"only_mine,omitempty"`   // crossings the partner's log lacks
	OnlyTheirs []AuditEntry    `json:"only_theirs,omitempty"` // crossings this log lacks
	Mismatched []AuditMismatch `json:"mismatched,omitempty"`  // same message, different digest or decision
}

// Empty reports whether the two logs agree.
func (d *AuditDiff) Empty() bool {
	return len(d.OnlyMine) == 0 && len(d.OnlyTheirs) == 0 && len(d.Mismatched) == 0
}

// AuditMismatch pairs two entries about one message that disagree.
type AuditMismatch struct {
	Mine   AuditEntry `json:"mine"`
	Theirs AuditEntry `json:"theirs"`
}

// MessageStatus is the delivery status of one message.
type MessageStatus struct {
	ID         message.ID  `json:"id"`
	Channel    string      `json:"channel"`
	Origin     string      `json:"origin"`
	Precedence string      `json:"precedence"`
	Recipients []Recipient `json:"recipients"`
}

// Agreement is an installed agreement with its status now.
type Agreement struct {
	ID        string    `json:"id"`
	Version   int       `json:"version"`
	Title     string    `json:"title"`
	Digest    string    `json:"digest"`
	Parties   []string  `json:"parties"`
	Scope     []string  `json:"scope"`
	Channels  []string  `json:"channels"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason,omitempty"`
	Effective time.Time `json:"effective"`
	Expiry    time.Time `json:"expiry"`
	// Detail is the agreement's readable summary (parties, approvals,
	// signatures, channels, equipment), as the CLI's show prints it.
	Detail string `json:"detail,omitempty"`
}

// Permit answers "may A send to B on channel C now?".
type Permit struct {
	Allowed   bool   `json:"allowed"`
	Reason    string `json:"reason"`
	Agreement string `json:"agreement,omitempty"`
}

// Held is a message in quarantine for one recipient.
type Held struct {
	ID        message.ID `json:"id"`
	Recipient string     `json:"recipient"`
	Channel   string     `json:"channel"`
	Origin    string     `json:"origin"`
	Reason    string     `json:"reason"`
	Approvals []string   `json:"approvals"` // reviewers who approved so far
	Needed    int        `json:"needed"`    // approvals still needed
	Since     time.Time  `json:"since"`
}

// ReviewResult is the outcome of one review.
type ReviewResult struct {
	Outcome   string   `json:"outcome"` // pending, released, denied
	Approvals []string `json:"approvals"`
}

// NodeStatus is the node's state for operators.
type NodeStatus struct {
	Party      string                    `json:"party"`
	Time       time.Time                 `json:"time"`
	Agreements []Agreement               `json:"agreements"`
	Links      []Link                    `json:"links"`
	Queues     map[string]map[string]int `json:"queues"` // peer → precedence → depth
	Alarms     []string                  `json:"alarms"`
	Audit      *AuditStatus              `json:"audit,omitempty"`
	// Rates counts accepted and denied messages per minute over the last
	// hour, oldest first.
	Rates []Rate `json:"rates,omitempty"`
}

// Rate is one minute's message counts.
type Rate struct {
	Minute   time.Time `json:"minute"`
	Accepted int       `json:"accepted"`
	Denied   int       `json:"denied"`
}

// PartnerAudit is what one partner's log looked like to us, and ours to it.
type PartnerAudit struct {
	Party           string    `json:"party"`
	TheirCheckpoint string    `json:"their_checkpoint,omitempty"`
	TheirSize       uint64    `json:"their_size"`
	OurCosignedSize uint64    `json:"our_cosigned_size"`
	LastWitnessed   time.Time `json:"last_witnessed,omitzero"`
}

// Link is the state of the link to one partner.
type Link struct {
	Party  string    `json:"party"`
	State  string    `json:"state"` // up, down, refused, held
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// AuditStatus is the audit log's state and what partners witnessed.
type AuditStatus struct {
	Size       uint64 `json:"size"`
	Checkpoint string `json:"checkpoint"`
	// Partners holds, per partner, the last checkpoint of theirs we
	// verified and cosigned, and whether they cosigned ours.
	Partners []PartnerAudit `json:"partners,omitempty"`
	// Forks describes each detected fork or rollback, with the evidence.
	Forks []string `json:"forks,omitempty"`
	// Verified is the result of the last full verification of our own log.
	Verified string `json:"verified,omitempty"`
}
