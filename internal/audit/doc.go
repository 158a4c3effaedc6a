// Package audit is a node's tamper-evident audit log and its partners'
// witness of it.
//
// Every decision the node takes (a message accepted and, for each
// recipient, released, denied or quarantined; reviewed, delivered or
// refused; a link up, down or refused; an agreement installed or changing
// status; a key rotated or zeroised; a configuration change; a reviewer
// action) is an [Entry] of metadata and digests, never a message body.
// Entries are leaves of a Merkle-tree transparency log built on Tessera's
// POSIX driver, embedded in the node, with C2SP tlog-checkpoint
// checkpoints signed by the node key. A leaf holds one entry, or a group of
// up to [MaxGroup] entries appended together ([ParseLeaf]), so that the
// log's storage flushes files per many decisions rather than per few.
//
// Start with [Open] and [Log.Append] (or [Log.AppendAsync]): appends are
// batched, and return once their batch is sequenced, without waiting for a
// checkpoint, so auditing does not cap message throughput. [Verify] checks a
// copy of a log directory against every checkpoint the node signed and
// finds an entry edited, dropped, reordered or truncated, or a checkpoint
// replaced; [Reader.Show] gives an entry with its inclusion proof.
//
// # Witnessing
//
// Partners witness each other. Over the federation link each node offers
// its latest checkpoint; the partner's [Witness] checks it extends the last
// one it accepted (fetching hash tiles through [Log.ServeFile], which never
// serves entries), cosigns it (C2SP tlog-cosignature, a key derived from
// the node key) and returns the cosignature, which the log keeps with
// [Log.AddCosignature]. A fork or a rollback yields a [*ForkError], a
// metric, a log line and an entry in the witness's own log, and keeps both
// conflicting signed checkpoints as evidence. [Reconcile] compares the
// messages two partners' logs say crossed between them.
//
// # Invariants
//
// Entry encoding is canonical: [ParseEntry] accepts exactly the bytes
// [Entry.MarshalBinary] produces, and [ParseLeaf] exactly one encoding of
// a group. A log whose tree no longer matches the
// last checkpoint its node signed is refused by [Open]. The package logs
// only through the logger it is given and holds no global state.
//
// # Layout
//
// The log directory is Tessera's (checkpoint, tile/, .state/) plus
// .liaison/checkpoints/ (the 1,024 newest checkpoints the node signed, by size) and
// .liaison/cosignatures/ (the 64 newest checkpoints each partner cosigned).
package audit
