package main

import (
	"strings"
	"testing"
	"time"

	"liaison/internal/node/nodetest"
)

// apiFlags points the CLI at p's running API.
func apiFlags(p *nodetest.Party) []string {
	return []string{"--dir", p.Home, "--api", p.Node.APIAddr().String()}
}

// TestAuditCLIAgainstNodes runs the audit commands against two running
// nodes: reconcile over the link, tail, show and verify from a node home,
// then, after PAK's log is rewritten, status showing the fork and
// reconcile listing the crossings the rewritten log lacks.
func TestAuditCLIAgainstNodes(t *testing.T) {
	pr := nodetest.NewPair(t)
	usa, pak := pr.USA, pr.PAK
	one, two := usa.Send(t, "one"), usa.Send(t, "two")
	nodetest.Eventually(t, 15*time.Second, "both messages are delivered", func() bool {
		return usa.Delivered(one) && usa.Delivered(two)
	})

	reconcile := append([]string{"audit", "reconcile", "--peer", "PAK"}, apiFlags(usa)...)
	var out, errs string
	var code int
	nodetest.Eventually(t, 15*time.Second, "reconcile finds both crossings", func() bool {
		code, out, errs = runCLI(t, reconcile...)
		return code == 0 && strings.Contains(out, "2 crossings with PAK match")
	})
	if code, out, errs = runCLI(t, "audit", "reconcile", "--peer", "XZZ", "--dir", usa.Home, "--api", usa.Node.APIAddr().String()); code != 1 || !strings.Contains(errs, "not-partner") {
		t.Errorf("reconcile with a stranger = %d\n%s%s", code, out, errs)
	}

	// tail, show and verify read the log from the node home.
	if code, out, errs = runCLI(t, "audit", "verify", "--dir", usa.Home); code != 0 || !strings.Contains(out, "OK") || !strings.Contains(out, "log liaison.usa/audit") {
		t.Errorf("verify --dir = %d\n%s%s", code, out, errs)
	}
	if code, out, errs = runCLI(t, "audit", "tail", "--dir", usa.Home, "-n", "50"); code != 0 || !strings.Contains(out, "msg="+one.String()) {
		t.Errorf("tail --dir = %d\n%s%s", code, out, errs)
	}
	if code, out, errs = runCLI(t, "audit", "show", "--dir", usa.Home, "0"); code != 0 || !strings.Contains(out, "inclusion proof") {
		t.Errorf("show --dir = %d\n%s%s", code, out, errs)
	}
	if code, _, errs = runCLI(t, "audit", "tail", "--dir", usa.Home, "--log", usa.Home); code != 2 {
		t.Errorf("tail --dir --log = %d, want 2 (usage)\n%s", code, errs)
	}

	// USA witnesses PAK's log; then PAK's log is rewritten.
	nodetest.Eventually(t, 15*time.Second, "USA witnesses PAK's log", nodetest.Offering(pak, func() bool {
		code, out, _ = runCLI(t, append([]string{"status"}, apiFlags(usa)...)...)
		return code == 0 && strings.Contains(out, "PAK: verified their log to ") && !strings.Contains(out, "verified their log to 0,")
	}))
	pak.RewriteAudit(t, 40)
	pr.WaitLinked(t)
	nodetest.Eventually(t, 15*time.Second, "status shows the fork", nodetest.Offering(pak, func() bool {
		code, out, _ = runCLI(t, append([]string{"status"}, apiFlags(usa)...)...)
		return code == 0 && strings.Contains(out, "! FORK PAK:") && strings.Contains(out, "ALARMS:") &&
			strings.Contains(out, "audit fork detected in liaison.pak/audit")
	}))

	// The rewritten log lacks both deliveries: reconcile lists them.
	code, out, errs = runCLI(t, reconcile...)
	if code != 1 || strings.Count(out, "only in mine (PAK lacks it)") != 2 || !strings.Contains(out, one.String()) ||
		!strings.Contains(out, two.String()) || !strings.Contains(errs, "the logs disagree") {
		t.Errorf("reconcile after the rewrite = %d\n%s%s", code, out, errs)
	}
}
