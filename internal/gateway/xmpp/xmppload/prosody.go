package xmppload

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ProsodyDomain is the domain of the Prosody that StartProsody runs.
const ProsodyDomain = "b.test"

const prosodyConfig = `run_as_root = true
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

// ErrNoProsody is returned when prosody is not on PATH.
var ErrNoProsody = errors.New("prosody not installed")

// Prosody is a running Prosody.
type Prosody struct {
	Addr string
	cmd  *exec.Cmd
}

// Close stops Prosody.
func (p *Prosody) Close() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// StartProsody runs Prosody for ProsodyDomain on a free loopback port, with
// its files under dir (which must exist), the PEM certificate and key
// certFile and keyFile (for b.test), and plain-stored accounts sN and rN
// for N below pairs with password. It returns once Prosody listens.
func StartProsody(dir, certFile, keyFile string, pairs int, password string) (*Prosody, error) {
	bin, err := exec.LookPath("prosody")
	if err != nil {
		return nil, ErrNoProsody
	}
	certs := filepath.Join(dir, "certs")
	acc := filepath.Join(dir, "data", "b%2etest", "accounts")
	for _, d := range []string{certs, acc} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	for src, dst := range map[string]string{certFile: "b.test.crt", keyFile: "b.test.key"} {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(certs, dst), b, 0o600); err != nil {
			return nil, err
		}
	}
	for i := range pairs {
		for _, p := range []string{"s", "r"} {
			rec := fmt.Sprintf("return { [\"password\"] = %q; };", password)
			if err := os.WriteFile(filepath.Join(acc, fmt.Sprintf("%s%d.dat", p, i)), []byte(rec), 0o600); err != nil {
				return nil, err
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := strings.NewReplacer("@DIR@", dir, "@C2S@", fmt.Sprint(port)).Replace(prosodyConfig)
	cfgFile := filepath.Join(dir, "prosody.cfg.lua")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--config", cfgFile, "-F")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Prosody{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Close()
			return nil, fmt.Errorf("prosody did not listen on %s: %v", p.Addr, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a child process's port, with a deadline
	}
}
