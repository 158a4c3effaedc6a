package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"liaison/internal/message"
)

// rowModel is what the store should hold, computed as if each message
// were accepted (and each id acked, released, marked sent) one at a time.
type rowModel struct {
	last  uint64
	seqOf map[message.ID]uint64
	first map[message.ID]*message.Message
	hist  []message.ID   // in seq order
	rows  map[string]int // "table|row" -> 1
}

func newRowModel() *rowModel {
	return &rowModel{seqOf: map[message.ID]uint64{}, first: map[message.ID]*message.Message{}, rows: map[string]int{}}
}

func delKey(id message.ID, peer string) string   { return fmt.Sprintf("deliveries|%x %s", id[:], peer) }
func queueKey(id message.ID, peer string) string { return fmt.Sprintf("queue|%x %s", id[:], peer) }

// rowState is the model's deliveries and queue rows by key.
type rowState struct {
	dels  map[string]*delRow
	queue map[string]*queueRow
}

type delRow struct{ state, code, reason string }

type queueRow struct {
	seq        uint64
	prec, held int64
	leased     bool
}

func (st *rowState) strings() (dels, queue map[string]string) {
	dels, queue = map[string]string{}, map[string]string{}
	for k, d := range st.dels {
		dels[k] = d.state + " " + d.code + " " + d.reason
	}
	for k, q := range st.queue {
		queue[k] = fmt.Sprintf("%d %d %d leased=%v", q.seq, q.prec, q.held, q.leased)
	}
	return dels, queue
}

func (m *rowModel) accept(st *rowState, items []AcceptItem) []AcceptResult {
	out := make([]AcceptResult, len(items))
	for i, it := range items {
		if seq, ok := m.seqOf[it.Msg.ID]; ok {
			out[i] = AcceptResult{Seq: seq, Dup: true}
			continue
		}
		m.last++
		seq := m.last
		m.seqOf[it.Msg.ID], m.first[it.Msg.ID] = seq, it.Msg
		m.hist = append(m.hist, it.Msg.ID)
		out[i] = AcceptResult{Seq: seq}
		for _, r := range it.Routes {
			st.dels[delKey(it.Msg.ID, r.Peer)] = &delRow{string(r.State), r.Code, r.Reason}
			if r.State == Queued || r.State == Held {
				st.queue[queueKey(it.Msg.ID, r.Peer)] = &queueRow{seq, int64(it.Msg.Precedence), heldInt(r.State == Held), false}
			}
		}
		for k, rec := range it.Audit {
			m.rows[fmt.Sprintf("audit|%d %d %x", seq, k, rec)] = 1
		}
	}
	return out
}

// dump reads the rows acceptTx, Ack, Release and MarkSentBatch write.
func dump(t *testing.T, s Store) (dels, queue map[string]string, audit, dedup []string) {
	t.Helper()
	var c *core
	switch s := s.(type) {
	case *SQLite:
		c = &s.core
	case *Postgres:
		c = &s.core
	default:
		t.Fatalf("store %T", s)
	}
	dels, queue = map[string]string{}, map[string]string{}
	scan := func(sql string, n int, row func(v []string)) {
		err := c.read(context.Background(), func(ctx context.Context, q querier) error {
			rs, err := q.query(ctx, sql)
			if err != nil {
				return err
			}
			defer rs.Close()
			for rs.Next() {
				vs := make([]any, n)
				for i := range vs {
					vs[i] = new(any)
				}
				if err := rs.Scan(vs...); err != nil {
					return err
				}
				ss := make([]string, n)
				for i, v := range vs {
					switch v := (*v.(*any)).(type) {
					case []byte:
						ss[i] = fmt.Sprintf("%x", v)
					default:
						ss[i] = fmt.Sprint(v)
					}
				}
				row(ss)
			}
			return rs.Err()
		})
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	scan(`SELECT msg_id, peer, state, code, reason FROM deliveries`, 5, func(v []string) {
		dels["deliveries|"+v[0]+" "+v[1]] = v[2] + " " + v[3] + " " + v[4]
	})
	scan(`SELECT msg_id, peer, seq, precedence, held, lease_until > 0 FROM queue`, 6, func(v []string) {
		leased := v[5] == "1" || v[5] == "true"
		if c.leases != nil {
			// Leases in memory (memLeases): a row is leased if it is there.
			id, err := hex.DecodeString(v[0])
			if err != nil || len(id) != len(message.ID{}) {
				t.Fatalf("queue row id %q", v[0])
			}
			l := c.leases.peer(v[1])
			l.mu.Lock()
			l.absorb()
			_, leased = l.leased[message.ID(id)]
			l.mu.Unlock()
		}
		queue["queue|"+v[0]+" "+v[1]] = fmt.Sprintf("%s %s %s leased=%v", v[2], v[3], v[4], leased)
	})
	scan(`SELECT seq, n, record FROM audit_pending ORDER BY seq, n`, 3, func(v []string) {
		audit = append(audit, "audit|"+v[0]+" "+v[1]+" "+v[2])
	})
	scan(`SELECT seq, id FROM dedup ORDER BY seq`, 2, func(v []string) { dedup = append(dedup, v[0]+" "+v[1]) })
	return
}

func sameMap(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: %s is %q, want %q", what, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("%s: unexpected %s = %q", what, k, v)
		}
	}
}

func sameList(t *testing.T, what string, got, want []string) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("%s: row %d is %q, want %q", what, i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
}

// batchItem is the i-th item of testBatchRows: up to four routes in mixed
// states, sometimes naming a peer twice (the last route wins), and up to
// two audit records.
func batchItem(i int) AcceptItem {
	peers := []string{"XBB", "XCC", "XDD", "XEE"}
	states := []DeliveryState{Queued, Held, Sent, Queued, Denied, Quarantined}
	m := newMsg("bulk", message.Precedences[i%len(message.Precedences)])
	m.Body = []byte("body " + strconv.Itoa(i))
	it := AcceptItem{Msg: m}
	if i%5 != 0 {
		for j := range 1 + i%4 {
			it.Routes = append(it.Routes, Route{Peer: peers[(i+j)%4], State: states[(i*7+j)%6],
				Code: fmt.Sprintf("c%d-%d", i, j), Reason: "r" + strconv.Itoa(i)})
		}
	}
	if i%7 == 3 && len(it.Routes) > 0 {
		again := Route{Peer: it.Routes[0].Peer, State: Held, Code: "again", Reason: "twice"}
		if i%14 == 3 {
			again.State = Sent // leaves the queue row of an earlier queued route
		}
		it.Routes = append(it.Routes, again)
	}
	for k := range i % 3 {
		it.Audit = append(it.Audit, fmt.Appendf(nil, "rec %d.%d", i, k))
	}
	return it
}

// testBatchRows accepts batches whose sizes cross the multi-row chunk
// boundaries, with duplicates of history and within each batch, then acks,
// releases and marks sent lists of ids of such sizes, and checks every row
// the store holds against rowModel.
func testBatchRows(t *testing.T, s Store) {
	ctx := context.Background()
	m := newRowModel()
	st := &rowState{dels: map[string]*delRow{}, queue: map[string]*queueRow{}}
	n := 0
	var all []AcceptItem
	for _, size := range []int{1, 3, 64, 65, 200, 300} {
		var items []AcceptItem
		for i := range size {
			switch {
			case i%9 == 4 && len(all) > 0: // a duplicate of history
				old := all[(i*31)%len(all)]
				items = append(items, AcceptItem{Msg: old.Msg, Routes: queued("XFF"), Audit: [][]byte{[]byte("dup")}})
			case i%11 == 6 && len(items) > 0: // a duplicate of an earlier item, with another body
				dup := *items[i/2].Msg
				dup.Body = []byte("not stored")
				items = append(items, AcceptItem{Msg: &dup, Routes: queued("XFF"), Audit: [][]byte{[]byte("dup")}})
			default:
				items = append(items, batchItem(n))
				n++
			}
		}
		want := m.accept(st, items)
		got, err := s.AcceptBatch(ctx, items)
		if err != nil {
			t.Fatalf("batch of %d: %v", size, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("batch of %d: results %v, want %v", size, got, want)
		}
		all = append(all, items...)
	}
	check := func(when string) {
		t.Helper()
		dels, queue, audit, dedup := dump(t, s)
		wantDels, wantQueue := st.strings()
		sameMap(t, when+": deliveries", dels, wantDels)
		sameMap(t, when+": queue", queue, wantQueue)
		var wantAudit []string
		for k := range m.rows {
			wantAudit = append(wantAudit, k)
		}
		slices.SortFunc(wantAudit, func(a, b string) int { return cmpAudit(a) - cmpAudit(b) })
		sameList(t, when+": audit_pending", audit, wantAudit)
		var wantDedup []string
		for _, id := range m.hist {
			wantDedup = append(wantDedup, fmt.Sprintf("%d %x", m.seqOf[id], id[:]))
		}
		sameList(t, when+": dedup", dedup, wantDedup)
	}
	check("after accepting")
	h, err := s.History(ctx, "bulk", 0, 10000)
	if err != nil || len(h) != len(m.hist) {
		t.Fatalf("history has %d, %v; want %d", len(h), err, len(m.hist))
	}
	for i, e := range h {
		if e.Seq != uint64(i+1) || e.Msg.ID != m.hist[i] {
			t.Fatalf("history %d is seq %d %s, want %d %s", i, e.Seq, e.Msg.ID, i+1, m.hist[i])
		}
		sameMsg(t, e.Msg, m.first[e.Msg.ID])
	}
	// The counter was given back the numbers duplicates did not use.
	other := []AcceptItem{{Msg: newMsg("other", message.Routine)}}
	if want, seq := m.accept(st, other), accept(t, s, other[0].Msg, nil); seq != want[0].Seq {
		t.Fatalf("next seq %d, want %d", seq, want[0].Seq)
	}

	// Ack, Release and MarkSentBatch with lists of ids of various sizes,
	// with ids repeated and ids that have no rows for the peer.
	idList := func(from, size int) []message.ID {
		var out []message.ID
		for i := range size {
			if i%13 == 12 {
				out = append(out, message.NewID())
				continue
			}
			out = append(out, m.hist[(from+i*3)%len(m.hist)])
		}
		return out
	}
	for _, size := range []int{1, 3, 256, 257, 300} {
		ids := idList(size, size)
		if err := s.Ack(ctx, "XBB", ids...); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			delete(st.queue, queueKey(id, "XBB"))
			if d := st.dels[delKey(id, "XBB")]; d != nil {
				d.state = string(Delivered)
			}
		}
	}
	check("after acks")
	leased, err := s.Lease(ctx, "XCC", 10000, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, lm := range leased {
		st.queue[queueKey(lm.ID, "XCC")].leased = true
	}
	for k, q := range st.queue {
		if strings.HasSuffix(k, " XCC") && q.held == 0 && !q.leased {
			t.Fatalf("lease of XCC left %s", k)
		}
	}
	check("after lease")
	for _, size := range []int{1, 3, 257} {
		ids := idList(2*size, size)
		if err := s.Release(ctx, "XCC", ids...); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if q := st.queue[queueKey(id, "XCC")]; q != nil {
				q.leased = false
			}
		}
	}
	check("after release")
	for _, size := range []int{1, 3, 300} {
		ids := idList(3*size, size)
		if err := s.MarkSentBatch(ctx, "XDD", ids...); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if d := st.dels[delKey(id, "XDD")]; d != nil && d.state == string(Queued) {
				d.state = string(Sent)
			}
		}
	}
	check("after mark sent")
}

// cmpAudit orders "audit|seq n record" rows by seq, then n.
func cmpAudit(row string) int {
	var seq, n int
	fmt.Sscanf(row, "audit|%d %d", &seq, &n)
	return seq<<16 | n
}
