// Package federation is the link layer between Liaison nodes: mutually
// authenticated TLS 1.3 sessions (X25519MLKEM768 preferred) carrying a
// compact binary frame protocol (docs/WIRE.md, "Link framing") that moves sealed envelopes
// precedence-first, in fragments, with custody acknowledgements.
//
// # Where to start
//
// A node builds one [Manager] with [New], giving it a [Config] whose
// [Outbox] is its per-peer queue and whose [Inbox] is its one-transaction
// accept; then [Manager.Listen], and [Manager.AddPeer] for each partner.
// [Manager.SetAllowed] holds a partner whose agreement is not in force.
//
// # Invariants
//
//   - Custody: the receiver sends a custody ACK for a message only after
//     Inbox.AcceptBatch returned nil for it, and the sender calls
//     Outbox.Ack only on that ACK. Nothing acknowledged lives only in
//     memory, so a crash of either side loses nothing; retransmissions
//     are absorbed by the receiver's de-duplication (a duplicate is still
//     acknowledged).
//   - Precedence: the writer always sends a fragment of the most urgent
//     sendable message next, so a FLASH waits at most one fragment (plus the
//     bounded pipe, Config.PipeBytes) behind a large ROUTINE transfer. A
//     full window or pipe of less urgent messages does not hold it back,
//     and the receiver stores the most urgent precedence waiting first.
//   - Resumption: the receiver keeps partial messages per peer and reports
//     them in HELLO; the sender continues from there if the wire bytes are
//     the same (matched by a tag of their hash).
//   - Held peers: a peer that is not allowed has no session and cannot
//     connect; its queue is untouched.
//
// The package does not seal, sign, verify or store messages; the node does
// that behind Outbox and Inbox. Subpackage linkproto holds the frame codec
// (a strict, bounded, fuzzed decoder); subpackage linksim is a TCP proxy
// that emulates poor links for tests and benchmarks (and `liaison linksim`).
package federation
