package xmpp

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"crypto/tls"
)

// loadResult is one run of the load generator.
type loadResult struct {
	msgs    int
	elapsed time.Duration
}

func (r loadResult) rate() float64 { return float64(r.msgs) / r.elapsed.Seconds() }

// runLoad connects pairs sender/receiver sessions (sN/rN) and sends total
// labelled 1:1 messages of about 650 bytes over TLS, at most window in
// flight per pair, and times until every message is received.
func runLoad(tb testing.TB, addr, domain string, tc *tls.Config, pairs, total, window int, fullJID bool) loadResult {
	tb.Helper()
	senders := make([]*testClient, pairs)
	receivers := make([]*testClient, pairs)
	for i := range pairs {
		var err error
		if receivers[i], err = dialClient(clientOpts{addr: addr, domain: domain, user: fmt.Sprintf("r%d", i), password: "pw", tls: tc}); err != nil {
			tb.Fatalf("receiver %d: %v", i, err)
		}
		if senders[i], err = dialClient(clientOpts{addr: addr, domain: domain, user: fmt.Sprintf("s%d", i), password: "pw", tls: tc}); err != nil {
			tb.Fatalf("sender %d: %v", i, err)
		}
	}
	defer func() {
		for i := range pairs {
			senders[i].close()
			receivers[i].close()
		}
	}()
	body := strings.Repeat("Convoy departs 0600 from the northern gate. ", 6)
	per := total / pairs
	var wg sync.WaitGroup
	errs := make(chan error, 2*pairs)
	start := time.Now()
	for i := range pairs {
		to := fmt.Sprintf("r%d@%s", i, domain)
		if fullJID {
			to = receivers[i].jid
		}
		st := labelledChat(to, "RESTRICTED", body)
		credit := make(chan struct{}, window)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range per {
				credit <- struct{}{}
				if err := senders[i].send(st); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for n := 0; n < per; {
				e, _, err := receivers[i].next("message", 60*time.Second)
				if err != nil {
					errs <- fmt.Errorf("receiver %d after %d: %w", i, n, err)
					return
				}
				if e.AttrValue("type") == "error" {
					errs <- fmt.Errorf("receiver %d got an error stanza", i)
					return
				}
				if e.Child("", "body") == nil {
					continue
				}
				n++
				<-credit
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	return loadResult{msgs: per * pairs, elapsed: el}
}

func benchNode(tb testing.TB, pairs int) (*testNode, *tls.Config) {
	n := startNode(tb)
	for i := range pairs {
		for _, p := range []string{"s", "r"} {
			u, err := NewUser(fmt.Sprintf("%s%d", p, i), "pw", []byte("RESTRICTED"))
			if err != nil {
				tb.Fatal(err)
			}
			n.users.Add(u)
		}
	}
	return n, &tls.Config{ServerName: "c.test", RootCAs: n.pki.pool}
}

const benchProsodyConfig = `run_as_root = true
pidfile = "@DIR@/prosody.pid"; data_path = "@DIR@/data"
interfaces = { "127.0.0.1" }; c2s_interfaces = { "127.0.0.1" }; use_ipv6 = false
c2s_ports = { @C2S@ }; s2s_ports = { }; c2s_direct_tls_ports = { }; s2s_direct_tls_ports = { }
http_ports = { }; https_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping" }
modules_disabled = { "s2s"; "dialback"; "admin_shell"; "offline" }
authentication = "internal_plain"; storage = "internal"
c2s_require_encryption = true
certificates = "@DIR@/certs"
log = { { levels = { min = "warn" }, to = "file", filename = "@DIR@/prosody.log" } }
VirtualHost "b.test"
`

// benchProsody starts Prosody for b.test on a free loopback port with
// plain-stored accounts sN/rN (password "pw") and returns its address.
func benchProsody(tb testing.TB, pki *testPKI, pairs int) string {
	tb.Helper()
	bin, err := exec.LookPath("prosody")
	if err != nil {
		tb.Skip("prosody not installed")
	}
	dir := tb.TempDir()
	certs := filepath.Join(dir, "certs")
	acc := filepath.Join(dir, "data", "b%2etest", "accounts")
	os.MkdirAll(certs, 0o700)
	os.MkdirAll(acc, 0o700)
	pki.leafIn(tb, certs, "b.test", []string{"b.test"})
	for i := range pairs {
		for _, p := range []string{"s", "r"} {
			os.WriteFile(filepath.Join(acc, fmt.Sprintf("%s%d.dat", p, i)), []byte(`return { ["password"] = "pw"; };`), 0o600)
		}
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := strings.NewReplacer("@DIR@", dir, "@C2S@", fmt.Sprint(port)).Replace(benchProsodyConfig)
	cfgFile := filepath.Join(dir, "prosody.cfg.lua")
	os.WriteFile(cfgFile, []byte(cfg), 0o600)
	cmd := exec.Command(bin, "--config", cfgFile, "-F")
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			tb.Fatalf("prosody did not listen: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling a child process's port, with a deadline
	}
}

// BenchmarkLabelledChat routes labelled 1:1 messages between real TLS
// sessions through Liaison's gateway (in-memory core) and through Prosody
// 0.12 with the same load, in the same run. Run with -benchtime=1x.
func BenchmarkLabelledChat(b *testing.B) {
	const pairs, total, window = 20, 20000, 100
	n, tc := benchNode(b, pairs)
	paddr := benchProsody(b, n.pki, pairs)
	ptc := &tls.Config{ServerName: "b.test", RootCAs: n.pki.pool}
	var liaison, prosody loadResult
	for b.Loop() {
		liaison = runLoad(b, n.addr, "c.test", tc, pairs, total, window, false)
		prosody = runLoad(b, paddr, "b.test", ptc, pairs, total, window, true)
	}
	b.ReportMetric(liaison.rate(), "liaison-msg/s")
	b.ReportMetric(prosody.rate(), "prosody-msg/s")
	b.ReportMetric(liaison.rate()/prosody.rate(), "ratio")
}
