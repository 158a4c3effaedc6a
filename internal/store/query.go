package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"liaison/internal/message"
)

// querier runs statements with ? placeholders: a transaction or a read pool.
type querier interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	query(ctx context.Context, q string, args ...any) (rows, error)
	// execAll runs statements whose results are not needed, in order,
	// stopping at the first error (pipelined on PostgreSQL).
	execAll(ctx context.Context, st []stmt) error
}

type stmt struct {
	sql  string
	args []any
}

// execEach is execAll for queriers that cannot pipeline.
func execEach(ctx context.Context, q querier, st []stmt) error {
	for _, s := range st {
		if _, err := q.exec(ctx, s.sql, s.args...); err != nil {
			return err
		}
	}
	return nil
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// one runs a query expected to return at most one row and scans it.
func one(ctx context.Context, q querier, sql string, args []any, dest ...any) (bool, error) {
	rs, err := q.query(ctx, sql, args...)
	if err != nil {
		return false, err
	}
	defer rs.Close()
	if !rs.Next() {
		return false, rs.Err()
	}
	if err := rs.Scan(dest...); err != nil {
		return false, err
	}
	return true, rs.Err()
}

// errRollback, returned by a write function, discards its changes but is
// not reported as an error to the caller.
var errRollback = errors.New("rollback")

const msgCols = `seq, id, channel, origin, originator, precedence, created, label, alternatives, content_type, body, trace_id`

// msgCols prefixed with a table alias.
const msgColsM = `m.seq, m.id, m.channel, m.origin, m.originator, m.precedence, m.created, m.label, m.alternatives, m.content_type, m.body, m.trace_id`

// appendMsgArgs appends the values of a messages row (msgCols, then
// accepted) to args; pk is m's label and alternatives as stored (packMsg).
func appendMsgArgs(args []any, seq int64, m *message.Message, pk *packedMsg, now int64) []any {
	return append(args, seq, idb(m.ID), m.Channel, m.Origin, m.Originator, int64(m.Precedence),
		m.Created.UnixNano(), pk.label, pk.alts, m.ContentType, nonNil(m.Body), m.TraceID, now)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// scanMsg scans msgCols.
func scanMsg(rs rows) (*message.Message, uint64, error) {
	var (
		m                 message.Message
		seq, prec, create int64
		id, lbl, alts     []byte
	)
	if err := rs.Scan(&seq, &id, &m.Channel, &m.Origin, &m.Originator, &prec, &create,
		&lbl, &alts, &m.ContentType, &m.Body, &m.TraceID); err != nil {
		return nil, 0, err
	}
	if len(id) != 16 {
		return nil, 0, fmt.Errorf("stored message id has %d bytes", len(id))
	}
	copy(m.ID[:], id)
	m.Precedence = message.Precedence(prec)
	m.Created = time.Unix(0, create).UTC()
	if err := unpackMsg(&m, lbl, alts); err != nil {
		return nil, 0, fmt.Errorf("message %s: %w", m.ID, err)
	}
	return &m, uint64(seq), nil
}

func idb(id message.ID) []byte { b := id; return b[:] }

// encodeAlts stores alternative labels as a count followed by
// length-prefixed byte strings (uvarints). nil for none.
func encodeAlts(alts [][]byte) []byte {
	if len(alts) == 0 {
		return nil
	}
	b := binary.AppendUvarint(nil, uint64(len(alts)))
	for _, a := range alts {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	return b
}

// decodeAlts decodes encodeAlts; the labels it returns share b's memory.
func decodeAlts(b []byte) ([][]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errors.New("corrupt alternatives count")
	}
	b = b[k:]
	out := make([][]byte, 0, n)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, errors.New("corrupt alternative label length")
		}
		// The labels alias b (each capped, so an append to one cannot
		// overwrite the next): b is the caller's own scanned copy.
		out = append(out, b[k:k+int(l):k+int(l)])
		b = b[k+int(l):]
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes after alternatives")
	}
	return out, nil
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	b := make([]byte, 0, 2*n)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '?')
	}
	return string(b)
}

// inListLen is the length an IN list of n values is padded to: the next
// power of two.
func inListLen(n int) int {
	l := 1
	for l < n {
		l <<= 1
	}
	return l
}
