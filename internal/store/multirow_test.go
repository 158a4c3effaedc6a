package store

import (
	"fmt"
	"math/bits"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rowLists are every multi-row statement of the package, with the number
// of fixed values each is given.
var rowLists = []struct {
	name  string
	l     *rowList
	fixed int
}{
	{"insDedup", insDedup, 0}, {"insMessages", insMessages, 0}, {"upsDelivery", upsDelivery, 0},
	{"upsQueue", upsQueue, 0}, {"insAudit", insAudit, 0}, {"selDedup", selDedup, 0},
	{"delQueue", delQueue, 1}, {"setState", setState, 3}, {"markSent", markSent, 4}, {"unleaseQ", unleaseQ, 1},
}

// TestRowListLimits: no statement binds more values than the lower of the
// two databases' limits (32766, modernc's SQLITE_MAX_VARIABLE_NUMBER), and
// each text has one placeholder per value it binds.
func TestRowListLimits(t *testing.T) {
	const maxParams = 32766
	for _, x := range rowLists {
		for i, text := range x.l.texts {
			want := x.fixed + (1<<i)*x.l.width
			if n := strings.Count(text, "?"); n != want {
				t.Errorf("%s with %d rows has %d placeholders, want %d", x.name, 1<<i, n, want)
			}
			if want > maxParams {
				t.Errorf("%s with %d rows binds %d values, over %d", x.name, 1<<i, want, maxParams)
			}
		}
	}
}

// TestRowListAppend: every statement holds a power of two rows (at most
// maxRows) and binds the fixed values then the rows in order; a VALUES list
// carries each row once, an IN list pads only its last statement, with its
// last row.
func TestRowListAppend(t *testing.T) {
	for _, pad := range []bool{false, true} {
		l := newRowList("H ", "(?, ?)", ", ", " T", 2, pad)
		if pad {
			l = newRowList("H (", "?", ",", ")", 1, true)
		}
		for _, n := range []int{1, 2, 3, 4, 5, 63, 64, 65, 127, 200, 255, 256, 257, 300, 511, 512, 513, 1000} {
			vals := make([]any, n*l.width)
			for i := range vals {
				vals[i] = i
			}
			fixed := []any{"f1", "f2"}
			st := l.appendTo([]stmt{{sql: "before"}}, fixed, vals)
			if st[0].sql != "before" {
				t.Fatalf("appendTo overwrote what st held")
			}
			st = st[1:]
			var got []any
			for j, s := range st {
				k := (len(s.args) - len(fixed)) / l.width
				if k < 1 || k > maxRows || bits.OnesCount(uint(k)) != 1 || s.sql != l.texts[bits.Len(uint(k))-1] {
					t.Fatalf("pad=%v n=%d: statement %d has %d rows (%d args)", pad, n, j, k, len(s.args))
				}
				if fmt.Sprint(s.args[:len(fixed)]) != fmt.Sprint(fixed) {
					t.Fatalf("pad=%v n=%d: statement %d binds %v first, want the fixed values", pad, n, j, s.args[:2])
				}
				got = append(got, s.args[len(fixed):]...)
			}
			want := vals
			if pad {
				for len(want) < len(got) {
					want = append(want, vals[len(vals)-l.width:]...)
				}
				if len(st) != (n+maxRows-1)/maxRows {
					t.Fatalf("IN list of %d: %d statements, want %d", n, len(st), (n+maxRows-1)/maxRows)
				}
			} else if wantN := n/maxRows + bits.OnesCount(uint(n%maxRows)); len(st) != wantN {
				t.Fatalf("VALUES list of %d: %d statements, want %d", n, len(st), wantN)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pad=%v n=%d: rows bound %v, want %v", pad, n, got, want)
			}
		}
	}
}

// TestRowListNoCopy: without fixed values a VALUES statement binds the
// caller's slice, capped so that nothing appended to it reaches the next
// statement's rows.
func TestRowListNoCopy(t *testing.T) {
	vals := []any{1, 2, 3}
	st := valuesList("V ", 1, "").appendTo(nil, nil, vals)
	if len(st) != 2 || &st[0].args[0] != &vals[0] || cap(st[0].args) != 2 {
		t.Fatalf("statements %v", st)
	}
}

// TestSQLiteInListPlans: SQLite (which has no statistics here) looks the
// rows of every IN-list statement up by primary key, at every list length,
// rather than scanning a peer's rows through another index.
func TestSQLiteInListPlans(t *testing.T) {
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	for _, x := range rowLists {
		if !x.l.pad {
			continue
		}
		for i, text := range x.l.texts {
			args := make([]any, strings.Count(text, "?"))
			var plan []string
			rs, err := s.wdb.Query(`EXPLAIN QUERY PLAN `+text, args...)
			if err != nil {
				t.Fatalf("%s: %v", x.name, err)
			}
			for rs.Next() {
				var id, parent, unused int64
				var detail string
				if err := rs.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rs.Close()
			if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX sqlite_autoindex_") {
				t.Errorf("%s with %d ids: plan %q, want a primary key search", x.name, 1<<i, plan)
			}
		}
	}
}
