package store

import (
	"math/bits"
	"strings"
)

// maxRows bounds the rows of one multi-row statement. A row binds at most
// 13 values (messages), so a statement binds at most 3,328: far below
// SQLite's limit (SQLITE_MAX_VARIABLE_NUMBER, 32,766 in modernc's build)
// and PostgreSQL's 65,535. TestRowListLimits checks every list.
const (
	maxRowsLog = 8
	maxRows    = 1 << maxRowsLog
)

// rowList is a statement that carries a list of rows: a multi-row
// INSERT ... VALUES (?, ?), (?, ?) or an IN (?, ?, ?) list. Executing one
// statement costs several µs whatever its row count, so the write paths
// send a batch's rows in a few such statements rather than one statement
// a row.
//
// Every statement it makes holds a power-of-two number of rows (at most
// maxRows), so that a handful of distinct SQL texts serve every batch size:
// the prepared-statement caches (ours on SQLite, pgx's on PostgreSQL) key on
// the text. A VALUES list splits a remainder into powers of two (255 rows
// are 128+64+...+1, eight statements); an IN list pads it instead by
// repeating its last row, which changes nothing.
type rowList struct {
	width int  // values a row binds
	pad   bool // IN list: pad to a power of two
	// texts[i] is the statement with 1<<i rows.
	texts [maxRowsLog + 1]string
}

// valuesList returns the rowList head (?, ..., ?), ... tail, width values
// a row. head must end with VALUES; its own placeholders, if any, take the
// fixed values appendTo is given.
func valuesList(head string, width int, tail string) *rowList {
	return newRowList(head, "("+placeholders(width)+")", ", ", tail, width, false)
}

// inList returns the rowList head ?, ..., ? tail, one value a row, padded.
// head usually ends with IN (, and tail with ).
func inList(head, tail string) *rowList {
	return newRowList(head, "?", ",", tail, 1, true)
}

func newRowList(head, row, sep, tail string, width int, pad bool) *rowList {
	l := &rowList{width: width, pad: pad}
	for i := range l.texts {
		var b strings.Builder
		b.WriteString(head)
		for j := range 1 << i {
			if j > 0 {
				b.WriteString(sep)
			}
			b.WriteString(row)
		}
		b.WriteString(tail)
		l.texts[i] = b.String()
	}
	return l
}

// appendTo appends to st the statements that carry the rows in vals
// (width values each, in order), each binding fixed first. No rows, no
// statements.
func (l *rowList) appendTo(st []stmt, fixed []any, vals []any) []stmt {
	w := l.width
	for len(vals) > 0 {
		n := min(len(vals)/w, maxRows)
		i := bits.Len(uint(n)) - 1 // the largest power of two <= n
		if l.pad && n > 1<<i {
			i++
		}
		k := 1 << i
		take := min(k, n) // rows of vals this statement carries
		var args []any
		if len(fixed) == 0 && take == k {
			args = vals[: k*w : k*w] // no copy: the caller's slice, capped
		} else {
			args = make([]any, 0, len(fixed)+k*w)
			args = append(args, fixed...)
			args = append(args, vals[:take*w]...)
			last := vals[(take-1)*w : take*w]
			for range k - take { // an IN list's padding
				args = append(args, last...)
			}
		}
		st = append(st, stmt{l.texts[i], args})
		vals = vals[take*w:]
	}
	return st
}
