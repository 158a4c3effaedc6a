package xmpp

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const prosodyConfig = `run_as_root = true
pidfile = "@DIR@/prosody.pid"; data_path = "@DIR@/data"
interfaces = { "@IP@" }; c2s_interfaces = { "@IP@" }; s2s_interfaces = { "@IP@" }; use_ipv6 = false
local_interfaces = { "@IP@" }
c2s_ports = { @C2S@ }; s2s_ports = { 5269 }; c2s_direct_tls_ports = { }; s2s_direct_tls_ports = { }
http_ports = { }; https_ports = { }; component_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping" }
modules_disabled = { "dialback"; "s2s_bidi"; "admin_shell" }
authentication = "internal_hashed"; storage = "internal"
c2s_require_encryption = true; s2s_require_encryption = true
s2s_secure_auth = true
certificates = "@DIR@/certs"
ssl = { cafile = "@DIR@/certs/ca.crt" }
unbound = { hoststxt = "@DIR@/hosts", resolvconf = "@DIR@/resolv.conf" }
log = { { levels = { min = "debug" }, to = "file", filename = "@DIR@/prosody.log" } }
VirtualHost "b.test"
`

// prosodyPeer is a real Prosody 0.12 for domain b.test on its own loopback
// address, trusting the test CA, with dialback off (XEP-0178 only).
type prosodyPeer struct {
	dir, ip string
	c2s     int
	cmd     *exec.Cmd
}

var labNet atomic.Int32

// labIPs returns two loopback addresses unused by other test processes:
// the partner (Prosody) and Liaison. S2S resolves names from a hosts file
// and dials port 5269, so each domain needs its own address.
func labIPs() (partnerIP, liaisonIP string) {
	n := (os.Getpid()+int(labNet.Add(1)))%200 + 20
	return fmt.Sprintf("127.%d.%d.2", n, os.Getpid()%250+1), fmt.Sprintf("127.%d.%d.3", n, os.Getpid()%250+1)
}

func startProsody(t *testing.T, pki *testPKI, ip, liaisonIP string) *prosodyPeer {
	t.Helper()
	bin, err := exec.LookPath("prosody")
	if err != nil {
		skipOrFail(t, "prosody not installed (apt-get install prosody lua-unbound)")
	}
	ctl, err := exec.LookPath("prosodyctl")
	if err != nil {
		skipOrFail(t, "prosodyctl not installed")
	}
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	os.MkdirAll(certs, 0o700)
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	pki.leafIn(t, certs, "b.test", []string{"b.test", "conference.b.test"})
	ca, _ := os.ReadFile(pki.caFile)
	os.WriteFile(filepath.Join(certs, "ca.crt"), ca, 0o600)
	os.WriteFile(filepath.Join(dir, "hosts"), []byte(fmt.Sprintf("%s b.test conference.b.test\n%s c.test conference.c.test\n", ip, liaisonIP)), 0o600)
	os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o600)
	p := &prosodyPeer{dir: dir, ip: ip, c2s: 25222}
	cfg := strings.NewReplacer("@DIR@", dir, "@IP@", ip, "@C2S@", fmt.Sprint(p.c2s)).Replace(prosodyConfig)
	cfgFile := filepath.Join(dir, "prosody.cfg.lua")
	os.WriteFile(cfgFile, []byte(cfg), 0o600)
	if out, err := exec.Command(ctl, "--config", cfgFile, "register", "carol", "b.test", "carolpw").CombinedOutput(); err != nil {
		t.Fatalf("prosodyctl register: %v\n%s", err, out)
	}
	p.cmd = exec.Command(bin, "--config", cfgFile, "-F")
	console, _ := os.Create(filepath.Join(dir, "console.log"))
	p.cmd.Stdout, p.cmd.Stderr = console, console
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting prosody: %v", err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
			if len(log) > 60000 {
				log = log[len(log)-60000:]
			}
			t.Logf("prosody log tail:\n%s", log)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(p.c2s)), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "console.log"))
			t.Fatalf("prosody did not listen on %s:%d: %v\n%s", ip, p.c2s, err, log)
		}
		time.Sleep(50 * time.Millisecond) // polling a child process's port, with a deadline
	}
	return p
}

func TestProsodyS2S(t *testing.T) {
	pki := newTestPKI(t)
	ipB, ipC := labIPs()
	s2sLn, err := net.Listen("tcp", net.JoinHostPort(ipC, "5269"))
	if err != nil {
		skipOrFail(t, "cannot listen on %s:5269: %v", ipC, err)
	}
	prosody := startProsody(t, pki, ipB, ipC)
	var expired atomic.Bool
	n := startNodeWith(t, pki, []Partner{{
		Domain: "b.test", Party: "XBB", Addr: net.JoinHostPort(ipB, "5269"), Roots: pki.pool,
		Channel: "xcc-xbb-chat", Clearance: []byte("RESTRICTED"), DefaultLabel: fakeLabel("UNCLASSIFIED"),
		InForce: func(time.Time) bool { return !expired.Load() },
	}})
	go n.srv.ServeS2S(s2sLn)
	_, port, _ := net.SplitHostPort(n.addr)
	args := []string{"--port", port, "--domain", "c.test", "--ca", pki.caFile,
		"--partner-host", ipB, "--partner-port", fmt.Sprint(prosody.c2s), "--partner-domain", "b.test"}
	res, log := runPeer(t, "s2s.py", append(args, "--phase", "active")...)
	for _, want := range []string{"login-both", "chat-liaison-to-prosody", "chat-prosody-to-liaison",
		"unlabelled-gets-default", "above-peer-clearance-bounced", "above-peer-clearance-not-delivered",
		"muc-remote-join", "muc-liaison-to-prosody", "muc-prosody-to-liaison"} {
		if !res[want] {
			t.Errorf("check %s did not pass\n%s", want, log)
		}
	}
	if t.Failed() {
		return
	}
	for _, m := range n.core.msgs["xcc-xbb-chat"] {
		if labelClass(m.Label) == "SECRET" {
			t.Errorf("message above the peer clearance reached the core: %q", m.Body)
		}
	}
	expired.Store(true)
	before := n.core.count("xcc-xbb-chat")
	res, log = runPeer(t, "s2s.py", append(args, "--phase", "expired")...)
	for _, want := range []string{"expired-liaison-to-prosody-bounced", "expired-prosody-to-liaison-refused"} {
		if !res[want] {
			t.Errorf("check %s did not pass\n%s", want, log)
		}
	}
	if got := n.core.count("xcc-xbb-chat"); got != before {
		t.Errorf("%d messages crossed after expiry", got-before)
	}
}
