package xmpp

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// skipOrFail skips when a real peer is missing, unless
// LIAISON_REQUIRE_PEERS=1 makes that a failure (CI).
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("LIAISON_REQUIRE_PEERS") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// slixmppPython returns a python3 that can import slixmpp: Debian's first,
// since a pyenv or venv python3 on PATH may lack it.
func slixmppPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import slixmpp").Run() == nil {
			return path
		}
	}
	skipOrFail(t, "python3 with slixmpp not found (apt-get install python3-slixmpp)")
	return ""
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("../../..")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s", dir)
	}
	return dir
}

// runPeer runs an interop script and returns its PASS/FAIL lines.
func runPeer(t *testing.T, script string, args ...string) (map[string]bool, string) {
	t.Helper()
	py := slixmppPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, append([]string{filepath.Join(repoRoot(t), "interop", "xmpppeer", script)}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := map[string]bool{}
	log := out.String() + errb.String()
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "PASS "):
			res[strings.TrimPrefix(line, "PASS ")] = true
		case strings.HasPrefix(line, "FAIL "):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "FAIL "), ":")
			res[name] = false
		}
	}
	if err != nil {
		t.Logf("peer script: %v\n%s", err, log)
	}
	return res, log
}

func TestSlixmppC2S(t *testing.T) {
	n := startNode(t)
	_, port, _ := net.SplitHostPort(n.addr)
	res, log := runPeer(t, "c2s.py", "--port", port, "--domain", "c.test", "--ca", n.pki.caFile)
	for _, want := range []string{
		"login-starttls-sasl", "disco-sec-label", "ping", "catalog-room", "muc-join",
		"muc-labelled-delivered", "muc-echo", "muc-above-ceiling-bounced", "muc-above-ceiling-not-delivered",
		"chat-labelled-delivered", "chat-withheld-from-uncleared", "chat-above-clearance-bounced",
	} {
		if !res[want] {
			t.Errorf("check %s did not pass\n%s", want, log)
		}
	}
	if t.Failed() {
		return
	}
	// The refused room message never reached the core; the bounces and the
	// withheld delivery are audited.
	for _, m := range n.core.msgs["ops-chat"] {
		if labelClass(m.Label) == "SECRET" {
			t.Errorf("message above the room ceiling reached the core: %q", m.Body)
		}
	}
	n.audit.mu.Lock()
	var logins []string
	for _, r := range n.audit.recs {
		if r.kind == AuditLogin {
			logins = append(logins, r.reason)
		}
	}
	n.audit.mu.Unlock()
	if !slices.Contains(logins, "user alice mechanism SCRAM-SHA-256") || !slices.Contains(logins, "user bob mechanism PLAIN") {
		t.Errorf("logins = %q, want alice by SCRAM-SHA-256 and bob by PLAIN", logins)
	}
	k := n.audit.kinds()
	if k[AuditBounced] < 2 || k[AuditWithheld] < 1 {
		t.Errorf("audit kinds = %v, want >=2 bounced and >=1 withheld", k)
	}
}
