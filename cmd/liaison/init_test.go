package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitAndCards(t *testing.T) {
	dir := t.TempDir()
	usa, gbr, card := filepath.Join(dir, "usa"), filepath.Join(dir, "gbr"), filepath.Join(dir, "GBR.card")
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"init", "--party", "USA", "--dir", usa}, 0, "CA fingerprint: sha256:"},
		{[]string{"init", "--party", "GBR", "--dir", gbr, "--addr", "127.0.0.1:7444", "--kem", "mlkem1024-p384"}, 0, "party GBR"},
		{[]string{"init", "--party", "USA", "--dir", usa}, 1, "already holds a node"},
		{[]string{"init", "--dir", usa}, 2, "--party and --dir are required"},
		{[]string{"card", "export", "--dir", gbr, "--out", card}, 0, "Wrote card of GBR"},
		{[]string{"card", "import", "--dir", usa, card}, 0, "endpoints: [127.0.0.1:7444]"},
		{[]string{"card", "import", "--dir", usa}, 2, "exactly one card file"},
		{[]string{"init", "--help"}, 0, "Usage: liaison init"},
	}
	for _, s := range steps {
		var out bytes.Buffer
		code := run(s.args, &out, &out)
		if code != s.code || !strings.Contains(out.String(), s.want) {
			t.Fatalf("liaison %v: exit %d, want %d; output:\n%s\nwant it to contain %q", s.args, code, s.code, out.String(), s.want)
		}
	}
	if _, err := os.Stat(filepath.Join(usa, "cards", "GBR.card")); err != nil {
		t.Fatal(err)
	}
	// A tampered card is refused.
	b, _ := os.ReadFile(card)
	b[len(b)/2] ^= 1
	os.WriteFile(card, b, 0o644)
	var out bytes.Buffer
	if code := run([]string{"card", "import", "--dir", usa, card}, &out, &out); code != 1 {
		t.Errorf("tampered card imported: %s", out.String())
	}
}
