package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "liaison.xaa.example/audit"

// testKey returns a fixed node key so that failures are reproducible.
func testKey(t testing.TB, seed byte) ed25519.PrivateKey {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return ed25519.NewKeyFromSeed(s)
}

func testConfig(t testing.TB, key ed25519.PrivateKey) Config {
	return Config{
		Origin:             testOrigin,
		Signer:             key,
		BatchMaxAge:        5 * time.Millisecond,
		CheckpointInterval: 100 * time.Millisecond,
		Logger:             slog.New(slog.DiscardHandler),
	}
}

func openTestLog(t testing.TB, dir string, key ed25519.PrivateKey) *Log {
	t.Helper()
	l, err := Open(t.Context(), dir, testConfig(t, key))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l
}

func testEntry(i int) Entry {
	return Entry{
		Kind:      KindDelivered,
		At:        time.Date(2026, 11, 29, 4, 0, 0, i, time.UTC),
		MessageID: fmt.Sprintf("0193a1b2-0000-7000-8000-%012d", i),
		Digest:    fmt.Sprintf("sha256:%064x", i),
		Party:     "XAA",
		Peer:      "XBB",
		Channel:   "ops",
		Decision:  DecisionAccepted,
		Agreement: "2.25.1001",
	}
}

// appendN appends n test entries starting at first, concurrently, and
// returns their indices by entry number.
func appendN(t testing.TB, l *Log, first, n int) {
	t.Helper()
	waits := make([]func() (uint64, error), n)
	for i := range n {
		waits[i] = l.AppendAsync(t.Context(), testEntry(first+i))
	}
	for i, w := range waits {
		if _, err := w(); err != nil {
			t.Fatalf("append %d: %v", first+i, err)
		}
	}
}

// waitForSize polls until the published checkpoint covers size entries.
func waitForSize(t testing.TB, l *Log, size uint64) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cp, raw, err := l.Reader().Checkpoint()
		if err == nil && cp.Size >= size {
			return raw
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint did not reach size %d (last %d, %v)", size, cp.Size, err)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline: the checkpoint is published on Tessera's timer
	}
}

// closeAndVerify closes l so that every entry is checkpointed, then checks
// that the untouched log verifies.
func closeLog(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestAppendAndRead(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t, 1)
	l := openTestLog(t, dir, key)
	idx, err := l.Append(t.Context(), testEntry(0))
	if err != nil || idx != 0 {
		t.Fatalf("Append = %d, %v; want 0, nil", idx, err)
	}
	appendN(t, l, 1, 299)
	closeLog(t, l)

	r, err := OpenReader(dir, testOrigin, mustVerifier(t, key))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := r.Entries(t.Context(), 0, 1000)
	if err != nil {
		t.Fatalf("Entries: %v", err)
	}
	if len(recs) != 300 {
		t.Fatalf("Entries returned %d records, want 300", len(recs))
	}
	seen := map[string]bool{}
	for i, rec := range recs {
		if rec.Index != uint64(i) {
			t.Fatalf("record %d has index %d", i, rec.Index)
		}
		seen[rec.Entry.MessageID] = true
	}
	if len(seen) != 300 {
		t.Errorf("got %d distinct entries, want 300", len(seen))
	}
	inc, err := r.Show(t.Context(), 257)
	if err != nil {
		t.Fatalf("Show: %v", err)
	}
	if inc.Index != 257 || inc.TreeSize != 300 || len(inc.Proof) == 0 {
		t.Errorf("Show(257) = index %d size %d proof %d hashes", inc.Index, inc.TreeSize, len(inc.Proof))
	}
	rep, err := Verify(t.Context(), dir, testOrigin, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatalf("Verify of an untouched log: %v (%v)", err, rep.Problems)
	}
	if rep.Entries != 300 || rep.TreeSize != 300 || rep.Checkpoints < 2 {
		t.Errorf("Verify report = %+v", rep)
	}
}

func TestAppendAfterClose(t *testing.T) {
	l := openTestLog(t, t.TempDir(), testKey(t, 1))
	closeLog(t, l)
	if _, err := l.Append(t.Context(), testEntry(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestAppendRejectsInvalidEntry(t *testing.T) {
	l := openTestLog(t, t.TempDir(), testKey(t, 1))
	if _, err := l.Append(t.Context(), Entry{At: time.Now()}); err == nil {
		t.Fatal("Append of an entry without kind succeeded")
	}
}

func mustVerifier(t testing.TB, key ed25519.PrivateKey) note.Verifier {
	t.Helper()
	v, err := NoteVerifier(testOrigin, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signCheckpoint signs a checkpoint body of the given size and root.
func signCheckpoint(t testing.TB, s note.Signer, size uint64, root []byte) []byte {
	t.Helper()
	body := log.Checkpoint{Origin: s.Name(), Size: size, Hash: root}.Marshal()
	n, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAppendDoesNotWaitForCheckpoint shows that Append returns once its
// batch is sequenced: with checkpoints an hour apart, the index is known
// while the published checkpoint still has size 0.
func TestAppendDoesNotWaitForCheckpoint(t *testing.T) {
	cfg := testConfig(t, testKey(t, 1))
	cfg.CheckpointInterval = time.Hour
	l, err := Open(t.Context(), t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // do not wait an hour for the checkpoint
		l.Close(ctx)
	}()
	for want := range uint64(3) {
		got, err := l.Append(t.Context(), testEntry(int(want)))
		if err != nil || got != want {
			t.Fatalf("Append = %d, %v; want %d", got, err, want)
		}
	}
	cp, _, err := l.Reader().Checkpoint()
	if err != nil || cp.Size != 0 {
		t.Fatalf("checkpoint size = %d, %v; want 0", cp.Size, err)
	}
}

func TestPruneKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []uint64{3, 1000, 20, 7, 999} {
		if err := writeAtomic(filepath.Join(dir, sizeName(size)), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := prune(dir, 2); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 2 || filepath.Base(left[0]) != sizeName(999) || filepath.Base(left[1]) != sizeName(1000) {
		t.Errorf("after prune: %q", left)
	}
}

// AppendBatch appends a batch in order; an invalid entry fails the batch's
// wait but not the entries around it, and a closed log refuses batches.
func TestAppendBatch(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t, 1)
	l := openTestLog(t, dir, key)
	var es []Entry
	for i := range 1100 {
		if i == 600 {
			es = append(es, Entry{At: time.Now()}) // no kind
		}
		es = append(es, testEntry(i))
	}
	if n, err := l.AppendBatch(t.Context(), es[:300])(); n != 0 || err != nil {
		t.Fatalf("AppendBatch = %d failed, %v", n, err)
	}
	if n, err := l.AppendBatch(t.Context(), es[300:])(); n != 1 || err == nil {
		t.Fatalf("AppendBatch with an entry without kind = %d failed, %v; want 1 and an error", n, err)
	}
	if n, err := l.AppendBatch(t.Context(), nil)(); n != 0 || err != nil {
		t.Fatalf("empty AppendBatch = %d failed, %v", n, err)
	}
	closeLog(t, l)
	if n, err := l.AppendBatch(t.Context(), es[:2])(); n != 2 || !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendBatch after Close = %d failed, %v; want 2, ErrClosed", n, err)
	}
	r, err := OpenReader(dir, testOrigin, mustVerifier(t, key))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := r.Entries(t.Context(), 0, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1100 {
		t.Fatalf("log has %d entries, want 1100", len(recs))
	}
	for i, rec := range recs {
		if want := testEntry(i).MessageID; rec.Entry.MessageID != want {
			t.Fatalf("entry %d is %s, want %s (batch order)", i, rec.Entry.MessageID, want)
		}
	}
}

// AppendEncoded appends encoded entries as they are, in order, and leaves
// out (reporting their indices) records that are not canonical entries.
func TestAppendEncoded(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t, 1)
	l := openTestLog(t, dir, key)
	var recs [][]byte
	var want []string
	for i := range 10 {
		b, err := testEntry(i).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 3:
			b = append(b, 0) // trailing byte: not canonical
		case 7:
			b = b[:len(b)/2] // truncated
		default:
			want = append(want, testEntry(i).MessageID)
		}
		recs = append(recs, b)
	}
	bad, wait := l.AppendEncoded(t.Context(), recs)
	if len(bad) != 2 || !errors.Is(bad[3], ErrMalformedEntry) || !errors.Is(bad[7], ErrMalformedEntry) {
		t.Errorf("bad = %v, want records 3 and 7 malformed", bad)
	}
	if n, err := wait(); n != 0 || err != nil {
		t.Fatalf("AppendEncoded = %d failed, %v", n, err)
	}
	closeLog(t, l)
	_, wait = l.AppendEncoded(t.Context(), recs[:1])
	if n, err := wait(); n != 1 || !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendEncoded after Close = %d failed, %v; want 1, ErrClosed", n, err)
	}
	r, err := OpenReader(dir, testOrigin, mustVerifier(t, key))
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Entries(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, rec := range got {
		ids = append(ids, rec.Entry.MessageID)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("log holds %q, want %q", ids, want)
	}
}
