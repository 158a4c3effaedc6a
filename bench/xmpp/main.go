// Command xmpp measures labelled 1:1 XMPP chat through a real Liaison node
// next to Prosody 0.12 in the same run. It starts one node (USA, SQLite
// store on disk, audit log, an agreement with PAK whose channel carries the
// XMPP gateway's direct chat), its XMPP gateway with sN/rN accounts, and a
// Prosody with the same accounts, then runs the same bounded load
// (internal/gateway/xmpp/xmppload: real sessions over STARTTLS, at most
// -window messages in flight per pair) against each and prints msg/s and
// the ratio.
//
//	go run ./bench/xmpp -senders 20 -messages 20000
//
// The PAK node exists only to co-sign the agreement; it is closed before
// the load starts, so direct-chat messages (whose channel names PAK as a
// member) wait in the node's outbound queue as they would with PAK down.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"liaison/bench/internal/rig"
	"liaison/internal/gateway/xmpp/xmppload"
	"liaison/internal/node"
)

func main() {
	senders := flag.Int("senders", 20, "sender/receiver pairs")
	messages := flag.Int("messages", 20000, "messages per run, over all pairs")
	window := flag.Int("window", 100, "messages in flight per pair")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the node run to `file`")
	skipProsody := flag.Bool("no-prosody", false, "measure the node only")
	flag.Parse()
	if err := run(*senders, *messages, *window, *cpuprofile, *skipProsody); err != nil {
		fmt.Fprintln(os.Stderr, "xmpp bench:", err)
		os.Exit(1)
	}
}

const password = "load-pw"

func run(pairs, total, window int, cpuprofile string, skipProsody bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "liaison-xmpp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ca, err := newCA(filepath.Join(dir, "ca"))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

	fmt.Println("setting up: USA and PAK nodes, agreement, then USA alone with its XMPP gateway")
	usa, err := rig.NewParty(ctx, dir, "USA", nil)
	if err != nil {
		return err
	}
	pak, err := rig.NewParty(ctx, dir, "PAK", nil)
	if err != nil {
		return err
	}
	if err := rig.Exchange(ctx, usa, pak); err != nil {
		return err
	}
	if err := rig.Agree(ctx, usa, pak); err != nil {
		return err
	}
	pak.Node.Close()
	usa.Node.Close()

	certFile, keyFile, err := ca.issue("usa.test", "usa.test")
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "gateways:\n  xmpp:\n    enabled: true\n    domain: usa.test\n    c2s: 127.0.0.1:0\n    tls_cert: %s\n    tls_key: %s\n    direct_channel: %s\n    users:\n",
		certFile, keyFile, rig.Channel)
	for i := range pairs {
		for _, p := range []string{"s", "r"} {
			fmt.Fprintf(&b, "      - {name: %s%d, password: %s, classification: CONFIDENTIAL, releasable_to: [USA, PAK]}\n", p, i, password)
		}
	}
	cfgFile := filepath.Join(usa.Home, node.ConfigFile)
	f, err := os.OpenFile(cfgFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(b.String())
	f.Close()
	if err != nil {
		return err
	}
	n, err := node.Open(ctx, usa.Home, node.Options{
		Logger:                  slog.New(slog.DiscardHandler),
		Federation:              node.FederationTuning{BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond},
		AuditCheckpointInterval: 200 * time.Millisecond,
		WitnessInterval:         time.Hour,
	})
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		return err
	}
	defer n.Close()
	usa.Node = n
	addr := n.XMPPAddr("c2s")
	if addr == nil {
		return fmt.Errorf("the node's XMPP gateway is not listening")
	}
	lbl := usa.Label() // CONFIDENTIAL releasable to USA and PAK, under USA's policy
	fmt.Printf("node XMPP c2s on %s; %d pairs, %d messages, window %d, label CONFIDENTIAL (%d bytes), stanza %d bytes\n",
		addr, pairs, total, window, len(lbl), len(xmppload.Stanza("r0@usa.test", lbl)))

	var prosody *xmppload.Prosody
	if !skipProsody {
		pc, pk, err := ca.issue("b.test", "b.test")
		if err != nil {
			return err
		}
		pdir := filepath.Join(dir, "prosody")
		os.MkdirAll(pdir, 0o700)
		if prosody, err = xmppload.StartProsody(pdir, pc, pk, pairs, password); err != nil {
			return err
		}
		defer prosody.Close()
	}

	fmt.Println("liaison node:")
	if cpuprofile != "" {
		pf, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(pf)
		defer pf.Close()
	}
	lr, err := xmppload.Run(ctx, xmppload.Config{Addr: addr.String(), Domain: "usa.test", Password: password,
		TLS: &tls.Config{ServerName: "usa.test", RootCAs: roots}, Pairs: pairs, Total: total, Window: window,
		Label: lbl, Progress: os.Stdout})
	if cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return fmt.Errorf("node run: %w", err)
	}
	fmt.Printf("liaison node: %d labelled messages in %v: %.0f msg/s\n", lr.Msgs, lr.Elapsed.Round(time.Millisecond), lr.Rate())
	if st, err := n.Status(ctx); err == nil {
		acc := 0
		for _, r := range st.Rates {
			acc += r.Accepted
		}
		fmt.Printf("node after the run: %d messages accepted (store), outbound queues %v, audit entries %d\n", acc, st.Queues, rig.AuditEntries(ctx, usa))
	}
	if prosody == nil {
		return nil
	}
	fmt.Println("prosody 0.12:")
	pr, err := xmppload.Run(ctx, xmppload.Config{Addr: prosody.Addr, Domain: xmppload.ProsodyDomain, Password: password,
		TLS: &tls.Config{ServerName: "b.test", RootCAs: roots}, Pairs: pairs, Total: total, Window: window,
		Label: lbl, FullJID: true, Progress: os.Stdout})
	if err != nil {
		return fmt.Errorf("prosody run: %w", err)
	}
	fmt.Printf("prosody:      %d labelled messages in %v: %.0f msg/s\n", pr.Msgs, pr.Elapsed.Round(time.Millisecond), pr.Rate())
	fmt.Printf("ratio liaison node / prosody: %.2f× (goal ≥ 3×)\n", lr.Rate()/pr.Rate())
	return nil
}

// ca issues the XMPP servers' certificates.
type ca struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	n    int64
}

func newCA(dir string) (*ca, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "xmpp bench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{dir: dir, cert: cert, key: key, n: 1}, nil
}

func (c *ca) issue(cn string, dns ...string) (certFile, keyFile string, err error) {
	c.n++
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(c.n), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: dns,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return "", "", err
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(c.dir, cn+".crt"), filepath.Join(c.dir, cn+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}
