package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestDemo runs the whole story, as 'liaison demo' does, and checks that
// every step behaved as told.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{Out: &out, JSON: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	checks, failed := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("--json line is not JSON: %q: %v", line, err)
		}
		if e.Kind == "check" {
			checks++
			if e.OK == nil || !*e.OK {
				failed++
				t.Errorf("%s: %s", e.Step, e.Text)
			}
		}
	}
	if checks < 30 || failed > 0 {
		t.Fatalf("%d checks, %d failed", checks, failed)
	}
}
