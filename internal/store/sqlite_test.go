package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"liaison/internal/message"
)

func openSQLiteT(t *testing.T, path string, clk *fakeClock) *SQLite {
	t.Helper()
	cfg := Config{}
	if clk != nil {
		cfg.Now = clk.Now
	}
	s, err := OpenSQLite(context.Background(), path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	runSuite(t, func(t *testing.T, clk *fakeClock) Store {
		return openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), clk)
	})
}

func TestSQLiteReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLiteT(t, path, nil)
	m := newMsg("chat", message.Flash)
	seq := accept(t, s, m, []Route{{Peer: "XBB", State: Queued}, {Peer: "XCC", State: Quarantined, Reason: "review"}})
	if _, _, err := s.Review(ctx, m.ID, "XCC", "rev1", true); err != nil {
		t.Fatal(err)
	}
	if err := s.Hold(ctx, "XBB", true, "suspended"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAgreement(ctx, "a v1", []byte("doc")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second reopen checks that migrations are idempotent
		s = openSQLiteT(t, path, nil)
		got, gseq, err := s.Get(ctx, m.ID)
		if err != nil || gseq != seq {
			t.Fatalf("Get after reopen: seq %d err %v", gseq, err)
		}
		sameMsg(t, got, m)
		if _, dup, err := s.Accept(ctx, m, nil); err != nil || !dup {
			t.Fatalf("Accept after reopen: dup=%v err=%v (dedup must be permanent)", dup, err)
		}
		if got := lease(t, s, "XBB", 5); len(got) != 0 {
			t.Fatalf("peer hold lost on reopen: leased %v", ids(got))
		}
		items, err := s.Quarantined(ctx)
		if err != nil || len(items) != 1 || len(items[0].Approvals) != 1 {
			t.Fatalf("Quarantined after reopen = %+v, %v", items, err)
		}
		if docs, _ := s.Agreements(ctx); len(docs) != 1 {
			t.Fatalf("Agreements after reopen = %q", docs)
		}
		var v int
		if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_version`).Scan(&v); err != nil || v != schemaVersion {
			t.Fatalf("schema_version rows = %d, %v; want %d", v, err, schemaVersion)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A third open through Open with a URL.
	st, err := Open(ctx, "sqlite:"+path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.Get(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
}

func TestSQLitePragmas(t *testing.T) {
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	var mode string
	var sync int
	if err := s.wdb.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
	if err := s.wdb.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d, %v; want 2 (FULL)", sync, err)
	}
}

// Close answers every queued write: each Accept either succeeded (and is
// in the store after reopening) or failed with ErrClosed.
func TestSQLiteCloseDrains(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := OpenSQLite(ctx, path, Config{MaxBatch: 8})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		ok   []message.ID
		wg   sync.WaitGroup
		bad  error
		half = make(chan struct{}, 16)
	)
	for range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				m := newMsg("drain", message.Routine)
				_, _, err := s.Accept(ctx, m, nil)
				if i == 5 {
					half <- struct{}{}
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				mu.Lock()
				if err != nil {
					bad = err
				}
				ok = append(ok, m.ID)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	for range 16 {
		<-half
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if bad != nil {
		t.Fatal(bad)
	}
	s = openSQLiteT(t, path, nil)
	for _, id := range ok {
		if _, _, err := s.Get(ctx, id); err != nil {
			t.Fatalf("accepted %s missing after Close: %v", id, err)
		}
	}
}

func TestOpenURL(t *testing.T) {
	for _, u := range []string{"", "mysql://x", "sqlite:"} {
		if s, err := Open(context.Background(), u, Config{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

func TestAlternativesEncoding(t *testing.T) {
	for _, alts := range [][][]byte{nil, {[]byte("a")}, {[]byte("x"), []byte(""), make([]byte, 300)}} {
		got, err := decodeAlts(encodeAlts(alts))
		if err != nil || len(got) != len(alts) {
			t.Fatalf("round trip %q: %q %v", alts, got, err)
		}
	}
	for _, bad := range [][]byte{{0x05}, {0x01, 0x09, 'a'}, {0x01, 0x01, 'a', 'b'}, {0xff}} {
		if _, err := decodeAlts(bad); err == nil {
			t.Errorf("decodeAlts(%x) succeeded", bad)
		}
	}
}

func FuzzDecodeAlts(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeAlts([][]byte{[]byte("a"), []byte("bc")}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		alts, err := decodeAlts(b)
		if err != nil {
			return
		}
		if again, err := decodeAlts(encodeAlts(alts)); err != nil || len(again) != len(alts) {
			t.Fatalf("re-encode of %x failed: %v", b, err)
		}
	})
}

// Reads run prepared statements that see every commit, the cache stays
// bounded (statements beyond it run unprepared) and Close empties it.
func TestSQLiteReadStatements(t *testing.T) {
	ctx := context.Background()
	s := openSQLiteT(t, filepath.Join(t.TempDir(), "store.db"), nil)
	for i := range 20 {
		m := newMsg("chat", message.Routine)
		accept(t, s, m, queued("XBB"))
		if _, _, err := s.Get(ctx, m.ID); err != nil {
			t.Fatalf("Get of message %d just accepted: %v", i, err)
		}
		if es, err := s.History(ctx, "chat", 0, 100); err != nil || len(es) != i+1 {
			t.Fatalf("History after %d accepts = %d entries, %v", i+1, len(es), err)
		}
	}
	if n := len(s.rstmts.m); n != 2 {
		t.Fatalf("read cache holds %d statements after Get and History, want 2", n)
	}
	q := readQ{s.rdb, s.rstmts}
	for i := range maxReadStmts + 10 {
		var v int64
		if ok, err := one(ctx, q, fmt.Sprintf("SELECT ? + %d", i), []any{int64(1)}, &v); !ok || err != nil || v != int64(i+1) {
			t.Fatalf("distinct statement %d = %d, %v, %v", i, v, ok, err)
		}
	}
	if n := len(s.rstmts.m); n != maxReadStmts {
		t.Fatalf("read cache holds %d statements, want the bound %d", n, maxReadStmts)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.rstmts.m); n != 0 {
		t.Fatalf("read cache holds %d statements after Close", n)
	}
}

func TestInListLen(t *testing.T) {
	for _, c := range []struct{ n, want int }{{0, 1}, {1, 1}, {2, 2}, {3, 4}, {64, 64}, {65, 128}} {
		if got := inListLen(c.n); got != c.want {
			t.Errorf("inListLen(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// Migration 3 rebuilds audit_pending as one b-tree and keeps the records
// that were pending in a version 2 store.
func TestMigrationKeepsPendingAudit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	all := migrations
	migrations = all[:2]
	s := openSQLiteT(t, path, nil)
	migrations = all
	m := newMsg("chat", message.Routine)
	if _, _, err := s.Accept(ctx, m, queued("XBB"), []byte("first"), []byte("second")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openSQLiteT(t, path, nil)
	defer s.Close()
	got, err := s.PendingAudit(ctx, 0, 10)
	if err != nil || len(got) != 2 || string(got[0].Record) != "first" || string(got[1].Record) != "second" {
		t.Fatalf("pending after migrating: %+v, %v", got, err)
	}
	var ddl string
	if err := s.rdb.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = 'audit_pending'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ddl, "WITHOUT ROWID") {
		t.Errorf("audit_pending after migrating: %s", ddl)
	}
	if err := s.DoneAudit(ctx, got[0].ID, got[1].ID); err != nil {
		t.Fatal(err)
	}
	if left, err := s.PendingAudit(ctx, 0, 10); err != nil || len(left) != 0 {
		t.Fatalf("pending after DoneAudit: %+v, %v", left, err)
	}
}
