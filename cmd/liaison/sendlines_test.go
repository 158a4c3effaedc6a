package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liaison/internal/node/nodetest"
)

// TestSendLines feeds a file of 300 lines (and blank ones) through 'liaison
// send --lines': two batch requests, every line one message in order, the
// one with a dirty word accepted and held for review.
func TestSendLines(t *testing.T) {
	h := newHarness(t, "sqlite:store.db")
	pak := nodetest.NewHome(t, "PAK", nodetest.Config{})
	doc := filepath.Join(t.TempDir(), "agreement.yaml")
	if err := os.WriteFile(doc, nodetest.Agreement(t, time.Now(), h.home, pak), 0o644); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.cli(0, "agreement", "install", doc, "--dir", h.home.Dir)
	h.waitHTTP("/readyz", http.StatusOK)

	var text strings.Builder
	for i := range 300 {
		if i == 150 {
			fmt.Fprintf(&text, "\n  \n")
		}
		if i == 7 {
			fmt.Fprintf(&text, "track %d near %s\n", i, nodetest.DirtyWords[0])
			continue
		}
		fmt.Fprintf(&text, "track %d\r\n", i)
	}
	file := filepath.Join(t.TempDir(), "tracks.txt")
	if err := os.WriteFile(file, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := h.cli(0, "send", "--dir", h.home.Dir, "--token", h.home.Tokens["officer"], "--channel", "exercise",
		"--marking", "CONFIDENTIAL // REL TO USA, PAK", "--precedence", "PRIORITY", "--lines", file)
	if !strings.Contains(out, "accepted 300 of 300 messages, 0 refused") {
		t.Fatalf("send --lines: %q", out)
	}
	es := h.history("exercise")
	if len(es) != 300 {
		t.Fatalf("history holds %d messages, want 300", len(es))
	}
	for i, e := range es {
		want := fmt.Sprintf("track %d", i)
		if got := string(e.Message.Body); !strings.HasPrefix(got, want) || strings.HasSuffix(got, "\r") || e.Message.Precedence.String() != "PRIORITY" {
			t.Fatalf("message %d: %q (%s), want %q, PRIORITY", i, got, e.Message.Precedence, want)
		}
	}
	if st := h.status(es[7].Message.ID.String()); st.Recipients[0].State != "quarantined" {
		t.Errorf("the line with a dirty word: %+v, want quarantined", st.Recipients)
	}
	// Usage errors: a text and --lines, or --lines with a binary type.
	h.cli(2, "send", "--dir", h.home.Dir, "--channel", "exercise", "--marking", "x", "--lines", file, "text")
	h.cli(2, "send", "--dir", h.home.Dir, "--channel", "exercise", "--marking", "x", "--lines", file, "--type", "application/octet-stream")
}
