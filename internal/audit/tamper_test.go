package audit

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transparency-dev/tessera/api/layout"
)

// buildLog writes a closed log of n entries, with a checkpoint taken
// between two append rounds so that the archive holds several sizes.
func buildLog(t *testing.T, key ed25519.PrivateKey, n int) string {
	t.Helper()
	dir := t.TempDir()
	l := openTestLog(t, dir, key)
	appendN(t, l, 0, n/2)
	waitForSize(t, l, uint64(n/2))
	appendN(t, l, n/2, n-n/2)
	closeLog(t, l)
	return dir
}

func TestVerifyDetectsTampering(t *testing.T) {
	key := testKey(t, 1)
	other := testKey(t, 2)
	const n = 600 // two full bundles and a partial one
	golden := buildLog(t, key, n)
	if _, err := Verify(t.Context(), golden, testOrigin, key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("untouched log: %v", err)
	}
	bundle := func(dir string, i uint64) string {
		return filepath.Join(dir, filepath.FromSlash(layout.EntriesPath(i, 0)))
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   string // a substring of some problem
	}{
		{"edit a byte", func(t *testing.T, dir string) {
			p := bundle(dir, 1)
			b := mustRead(t, p)
			i := strings.Index(string(b), "XBB")
			b[i+2] = 'C' // XBB -> XBC: still a valid entry, different leaf
			mustWrite(t, p, b)
		}, "does not match"},
		{"edit a length byte", func(t *testing.T, dir string) {
			p := bundle(dir, 0)
			b := mustRead(t, p)
			b[1]++
			mustWrite(t, p, b)
		}, "entry"},
		{"truncate a bundle", func(t *testing.T, dir string) {
			p := bundle(dir, 1)
			b := mustRead(t, p)
			mustWrite(t, p, b[:len(b)/2])
		}, "bundle 1"},
		{"drop the last bundle", func(t *testing.T, dir string) {
			for _, p := range globAll(t, filepath.Join(dir, "tile", "entries", "002*")) {
				os.RemoveAll(p)
			}
		}, "missing"},
		{"drop one entry", func(t *testing.T, dir string) {
			p := bundle(dir, 0)
			b := mustRead(t, p)
			size := int(b[0])<<8 | int(b[1])
			mustWrite(t, p, b[2+size:])
		}, "truncated"},
		{"reorder bundles", func(t *testing.T, dir string) {
			a, b := mustRead(t, bundle(dir, 0)), mustRead(t, bundle(dir, 1))
			mustWrite(t, bundle(dir, 0), b)
			mustWrite(t, bundle(dir, 1), a)
		}, "does not match"},
		{"reorder entries", func(t *testing.T, dir string) {
			p := bundle(dir, 0)
			b := mustRead(t, p)
			s0 := 2 + (int(b[0])<<8 | int(b[1]))
			s1 := 2 + (int(b[s0])<<8 | int(b[s0+1]))
			swapped := append(append(append([]byte{}, b[s0:s0+s1]...), b[:s0]...), b[s0+s1:]...)
			mustWrite(t, p, swapped)
		}, "does not match"},
		{"replace the checkpoint with an older one", func(t *testing.T, dir string) {
			old := globAll(t, filepath.Join(dir, archiveDir, "*"))[1]
			mustWrite(t, filepath.Join(dir, "checkpoint"), mustRead(t, old))
		}, "rolled back"},
		{"replace the checkpoint with a forged one", func(t *testing.T, dir string) {
			cp, err := NoteSigner(testOrigin, other)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, filepath.Join(dir, "checkpoint"), signCheckpoint(t, cp, n, make([]byte, 32)))
		}, "checkpoint"},
		{"edit the checkpoint root", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "checkpoint")
			b := mustRead(t, p)
			lines := strings.SplitN(string(b), "\n", 4)
			lines[2] = strings.Replace(lines[2], lines[2][:2], "AA", 1)
			mustWrite(t, p, []byte(strings.Join(lines, "\n")))
		}, "checkpoint"},
		{"edit a hash tile", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "tile", "0", "000")
			b := mustRead(t, p)
			b[40] ^= 1
			mustWrite(t, p, b)
		}, "hash tile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, golden)
			tt.tamper(t, dir)
			rep, err := Verify(t.Context(), dir, testOrigin, key.Public().(ed25519.PublicKey))
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("Verify = %v, want ErrTampered; report %+v", err, rep)
			}
			t.Logf("problems: %q", rep.Problems)
			if !strings.Contains(strings.Join(rep.Problems, "\n"), tt.want) {
				t.Errorf("problems %q do not mention %q", rep.Problems, tt.want)
			}
		})
	}
}

func TestOpenRefusesTamperedLog(t *testing.T) {
	key := testKey(t, 1)
	dir := buildLog(t, key, 20)
	p := filepath.Join(dir, filepath.FromSlash(layout.TilePath(0, 0, 20)))
	b := mustRead(t, p)
	b[0] ^= 1
	mustWrite(t, p, b)
	if l, err := Open(t.Context(), dir, testConfig(t, key)); !errors.Is(err, ErrTampered) {
		if l != nil {
			l.Close(t.Context())
		}
		t.Fatalf("Open of a tampered log = %v, want ErrTampered", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func globAll(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("nothing matches %q (%v)", pattern, err)
	}
	return m
}

// copyDir copies a log directory, as an auditor would.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestVerifyLiveCheckpoint: a running node archives a checkpoint just
// before it publishes it; Verify catching it in between waits for the
// publication instead of reporting a rollback.
func TestVerifyLiveCheckpoint(t *testing.T) {
	key := testKey(t, 1)
	pub := key.Public().(ed25519.PublicKey)
	dir := buildLog(t, key, 600)
	cp := filepath.Join(dir, "checkpoint")
	newest := mustRead(t, cp)
	old := globAll(t, filepath.Join(dir, archiveDir, "*"))[1]
	mustWrite(t, cp, mustRead(t, old))
	calls := 0
	testHookAwait = func() {
		calls++
		mustWrite(t, cp, newest) // the node publishes
	}
	t.Cleanup(func() { testHookAwait = nil })
	rep, err := Verify(t.Context(), dir, testOrigin, pub)
	if err != nil || !rep.OK() {
		t.Fatalf("verify while publishing: %v %v", err, rep.Problems)
	}
	if calls == 0 {
		t.Fatal("Verify did not wait for the publication")
	}
}
