package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// InitOptions configures [Init]. Only Party is required.
type InitOptions struct {
	Party string // party id, 2-16 of A-Z, 0-9, '-' (e.g. "USA")
	// Addr is the federation listen address; DefaultAddr if empty. Its host
	// becomes a SAN of the TLS certificate.
	Addr string
	// APIAddr is the API listen address; DefaultAPIAddr if empty.
	APIAddr string
	// KEM is KEMMLKEM768X25519 (the default) or KEMMLKEM1024P384.
	KEM string
	// Policies lists SPIF files (paths relative to dir) for liaison.yaml.
	Policies []string
	// Peers are partner nodes this node dials, for liaison.yaml.
	Peers []Peer
	// OperatorTokenSHA256 is the hex SHA-256 of the operator's API token,
	// written into liaison.yaml (the token itself is not).
	OperatorTokenSHA256 string
	// Now is the issue time of the certificates; time.Now() if zero.
	Now time.Time
}

// Peer is a partner node to dial: its party and federation endpoint.
type Peer struct{ Party, Endpoint string }

// Defaults for [InitOptions].
const (
	DefaultAddr    = "127.0.0.1:7443"
	DefaultAPIAddr = "127.0.0.1:8443"
	caValidity     = 10 * 365 * 24 * time.Hour
	tlsValidity    = 2 * 365 * 24 * time.Hour
)

var partyRE = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{1,15}$`)

// ValidParty reports whether s is a well-formed party id.
func ValidParty(s string) bool { return partyRE.MatchString(s) }

// Init creates a node home in dir (created with mode 0700 if absent) and
// returns its identity. It refuses a directory that already holds a node.
func Init(dir string, opts InitOptions) (*Identity, error) {
	if !ValidParty(opts.Party) {
		return nil, fmt.Errorf("invalid party %q (want 2-16 of A-Z, 0-9, '-')", opts.Party)
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.APIAddr == "" {
		opts.APIAddr = DefaultAPIAddr
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("invalid address %q: %v", opts.Addr, err)
	}
	if _, _, err := net.SplitHostPort(opts.APIAddr); err != nil {
		return nil, fmt.Errorf("invalid api address %q: %v", opts.APIAddr, err)
	}
	kem, err := KEMByName(opts.KEM)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for _, f := range []string{SigningKeyFile, ConfigFile, CAKeyFile, hpkeFileName(1)} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("%s already holds a node (%s exists)", dir, f)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, CardsDir), 0o700); err != nil {
		return nil, err
	}

	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hk, err := kem.GenerateKey()
	if err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate(opts.Party, now), caTemplate(opts.Party, now), caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tlsDER, err := x509.CreateCertificate(rand.Reader, leafTemplate(opts.Party, host, now), caCert, tlsKey.Public(), caKey)
	if err != nil {
		return nil, err
	}

	certPEM := func(der ...[]byte) []byte {
		var out []byte
		for _, d := range der {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
		}
		return out
	}
	steps := []func() error{
		func() error { return writePrivateKey(filepath.Join(dir, SigningKeyFile), sk) },
		func() error { return writeHPKEKey(filepath.Join(dir, hpkeFileName(1)), hk, 1) },
		func() error { return writePrivateKey(filepath.Join(dir, CAKeyFile), caKey) },
		func() error { return writeFile(filepath.Join(dir, CACertFile), certPEM(caDER), 0o644) },
		func() error { return writePrivateKey(filepath.Join(dir, TLSKeyFile), tlsKey) },
		func() error { return writeFile(filepath.Join(dir, TLSCertFile), certPEM(tlsDER, caDER), 0o644) },
		func() error {
			return writeFile(filepath.Join(dir, ConfigFile), []byte(configYAML(dir, opts)), 0o600)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("init %s: %w", dir, err)
		}
	}
	return Load(dir)
}

func partyURI(party string) *url.URL { return &url.URL{Scheme: "liaison", Opaque: "party:" + party} }

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

func caTemplate(party string, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{party}, CommonName: party + " Liaison node CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{partyURI(party)},
	}
}

func leafTemplate(party, host string, now time.Time) *x509.Certificate {
	t := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{party}, CommonName: NodeName(party)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(tlsValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{NodeName(party)},
		URIs:         []*url.URL{partyURI(party)},
	}
	if ip := net.ParseIP(host); ip != nil {
		t.IPAddresses = append(t.IPAddresses, ip)
	} else if host != "" {
		t.DNSNames = append(t.DNSNames, host)
	}
	return t
}

// PartyFromCert returns the party a certificate names: its single
// "liaison:party:<PARTY>" URI SAN, which must agree with its Subject
// Organization when that is set.
func PartyFromCert(cert *x509.Certificate) (string, error) {
	party := ""
	for _, u := range cert.URIs {
		if u.Scheme == "liaison" && len(u.Opaque) > len("party:") && u.Opaque[:len("party:")] == "party:" {
			if party != "" {
				return "", fmt.Errorf("certificate %q names more than one party", cert.Subject.CommonName)
			}
			party = u.Opaque[len("party:"):]
		}
	}
	if party == "" {
		return "", fmt.Errorf("%w: %q", ErrNoParty, cert.Subject.CommonName)
	}
	if !ValidParty(party) {
		return "", fmt.Errorf("certificate names invalid party %q", party)
	}
	if o := cert.Subject.Organization; len(o) > 0 && (len(o) != 1 || o[0] != party) {
		return "", fmt.Errorf("certificate organization %q disagrees with party %q", o, party)
	}
	return party, nil
}

var _ hpke.KEM = hpke.MLKEM768X25519()
