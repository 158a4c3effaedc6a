package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liaison/internal/audit"
)

const cliOrigin = "liaison.xaa.example/audit"

// makeLog writes a closed log of n delivered-to-XBB entries and returns its
// directory and the base64 public key.
func makeLog(t *testing.T, n int) (string, string) {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	dir := t.TempDir()
	l, err := audit.Open(t.Context(), dir, audit.Config{
		Origin: cliOrigin, Signer: key, BatchMaxAge: 5 * time.Millisecond, CheckpointInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		l.AppendAsync(t.Context(), audit.Entry{
			Kind: audit.KindDelivered, At: time.Unix(1700000000, int64(i)), MessageID: "m" + string(rune('a'+i)),
			Digest: "sha256:00", Peer: "XBB", Decision: audit.DecisionAccepted,
		})
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dir, base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditCLI(t *testing.T) {
	dir, pub := makeLog(t, 5)
	loc := []string{"--log", dir, "--origin", cliOrigin, "--pub", pub}

	code, out, errs := runCLI(t, append([]string{"audit", "verify"}, loc...)...)
	if code != 0 || !strings.Contains(out, "OK") || !strings.Contains(out, "5 entries") {
		t.Fatalf("verify = %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI(t, append(append([]string{"audit", "tail"}, loc...), "-n", "2")...)
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.HasPrefix(out, "3\t") {
		t.Errorf("tail -n 2 = %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, append(append([]string{"audit", "show"}, loc...), "4")...)
	if code != 0 || !strings.Contains(out, "inclusion proof") || !strings.Contains(out, "msg=me") {
		t.Errorf("show 4 = %d\n%s", code, out)
	}
	code, _, _ = runCLI(t, append(append([]string{"audit", "show"}, loc...), "5")...)
	if code != 1 {
		t.Errorf("show beyond the tree = %d, want 1", code)
	}

	// Export both sides; the partner's lacks one crossing.
	code, mine, _ := runCLI(t, append(append([]string{"audit", "export"}, loc...), "--peer", "XBB")...)
	if code != 0 || strings.Count(mine, "\n") != 5 {
		t.Fatalf("export = %d\n%s", code, mine)
	}
	theirs := strings.ReplaceAll(mine, `"peer":"XBB"`, `"peer":"XAA"`)
	theirs = strings.ReplaceAll(theirs, `"kind":"delivered"`, `"kind":"received"`)
	lines := strings.SplitAfter(theirs, "\n")
	theirs = strings.Join(append(lines[:2:2], lines[3:]...), "")
	mf, tf := filepath.Join(t.TempDir(), "mine"), filepath.Join(t.TempDir(), "theirs")
	os.WriteFile(mf, []byte(mine), 0o600)
	os.WriteFile(tf, []byte(theirs), 0o600)
	code, out, _ = runCLI(t, "audit", "reconcile", "--self", "XAA", "--peer", "XBB", "--mine", mf, "--theirs", tf)
	if code != 1 || !strings.Contains(out, "4 crossings") || !strings.Contains(out, "only in mine") || !strings.Contains(out, "msg=mc") {
		t.Errorf("reconcile = %d\n%s", code, out)
	}

	// Tamper: edit a byte of the entry bundle.
	p := filepath.Join(dir, "tile", "entries", "000.p", "5")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("XBB"))
	b[i+2] = 'C'
	os.WriteFile(p, b, 0o600)
	code, out, _ = runCLI(t, append([]string{"audit", "verify", "--json"}, loc...)...)
	if code != 1 || !strings.Contains(out, `"problems"`) {
		t.Errorf("verify of a tampered log = %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, "audit", "verify", "--log", dir); code != 2 {
		t.Errorf("verify without --pub = %d, want 2", code)
	}
}
