package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestAgreementCLI(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	step := func(code int, want string, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		got := run(append([]string{"agreement"}, args...), &out, &errb)
		all := out.String() + errb.String()
		if got != code || !strings.Contains(all, want) {
			t.Fatalf("%v: exit %d, output:\n%s\nwant exit %d and %q", args, got, all, code, want)
		}
		return all
	}
	pubRE := regexp.MustCompile(`public: (\S+)`)
	pubs := map[string]string{}
	for _, party := range []string{"XAA", "XBB"} {
		out := step(0, "alg: ed25519", "keygen", "--out", p(party+".key"))
		pubs[party] = pubRE.FindStringSubmatch(out)[1]
		if fi, err := os.Stat(p(party + ".key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file: %v %v", fi, err)
		}
	}
	step(1, "exists", "keygen", "--out", p("XAA.key"))

	step(0, "", "new", "--out", p("a.yaml"))
	step(1, "parties[0].keys[0]: public key", "validate", p("a.yaml"))
	b, _ := os.ReadFile(p("a.yaml"))
	s := strings.NewReplacer(
		"REPLACE-WITH-XAA-PUBLIC-KEY", pubs["XAA"], "REPLACE-WITH-XBB-PUBLIC-KEY", pubs["XBB"],
		"REPLACE-WITH-XAA-CA-FINGERPRINT", strings.Repeat("a", 64), "REPLACE-WITH-XBB-CA-FINGERPRINT", strings.Repeat("b", 64),
	).Replace(string(b))
	if err := os.WriteFile(p("a.yaml"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	step(0, "valid structure", "validate", p("a.yaml"))
	step(0, "draft", "status", p("a.yaml"))
	step(2, "required", "approve", p("a.yaml"), "--party", "XAA")
	step(1, `"XCC" is not a party`, "approve", p("a.yaml"), "--party", "XCC", "--authority", "x", "--method", "y", "--date", "2025-11-01")
	step(0, "approval by XAA recorded", "approve", p("a.yaml"), "--party", "XAA", "--authority", "Council of Ministers", "--method", "decree", "--date", "2025-11-01", "--ref", "D-1")
	step(0, "approved", "approve", "--party", "XBB", "--authority", "Federal Cabinet", "--method", "federal cabinet, by circulation summary", "--date", "2025-11-02", p("a.yaml"))
	step(1, "not one of the party's listed keys", "sign", p("a.yaml"), "--party", "XAA", "--key", p("XBB.key"))
	step(0, "signed by XAA", "sign", p("a.yaml"), "--party", "XAA", "--key", p("XAA.key"))
	step(1, "signature by XBB is missing", "verify", p("a.yaml"))
	step(0, "signed by XBB", "sign", p("a.yaml"), "--party", "XBB", "--key", p("XBB.key"))
	step(0, "all 2 signatures", "verify", p("a.yaml"))
	step(0, "not yet in force", "status", p("a.yaml"), "--at", "2025-12-01")
	step(0, "in force", "status", p("a.yaml"), "--at", "2026-06-01")
	step(0, "expired", "status", p("a.yaml"), "--at", "2031-01-01")
	step(0, "XBB    verified", "show", p("a.yaml"), "--at", "2026-06-01")

	step(0, "suspend notice by XBB", "suspend", p("a.yaml"), "--party", "XBB", "--key", p("XBB.key"), "--date", "2027-01-01")
	step(0, "suspended by XBB", "status", p("a.yaml"), "--at", "2027-02-01")
	step(0, "resume notice", "resume", p("a.yaml"), "--party", "XBB", "--key", p("XBB.key"), "--date", "2027-03-01")
	step(0, "in force", "status", p("a.yaml"), "--at", "2027-04-01")
	step(0, "terminate notice", "terminate", p("a.yaml"), "--party", "XAA", "--key", p("XAA.key"), "--date", "2028-01-01")
	step(0, "terminated by XAA", "status", p("a.yaml"), "--at", "2028-07-01")
	step(0, "all 2 signatures and 3 notices verify", "verify", p("a.yaml"))

	step(0, "supersedes sha256:", "renew", p("a.yaml"), "--out", p("b.yaml"), "--effective", "2031-01-01", "--expiry", "2036-01-01")
	step(1, "exists", "renew", p("a.yaml"), "--out", p("b.yaml"))
	step(1, "term: expiry", "renew", p("a.yaml"), "--out", p("c.yaml"), "--expiry", "2020-01-01")
	step(0, "draft", "status", p("b.yaml"))
	step(0, "v2", "validate", p("b.yaml"))

	// Tampering after signing is caught.
	b, _ = os.ReadFile(p("a.yaml"))
	os.WriteFile(p("a.yaml"), bytes.Replace(b, []byte("XBB: CONFIDENTIAL"), []byte("XBB: SECRET"), 1), 0o644)
	step(1, "does not verify", "verify", p("a.yaml"))
	step(2, "missing agreement FILE", "verify")
	step(0, "Usage: liaison agreement sign", "sign", "--help")
}
