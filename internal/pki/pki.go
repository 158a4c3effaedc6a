// Package pki holds a Liaison node's identity: its Ed25519 signing key, its
// HPKE key pairs (one per key epoch), its node CA and TLS certificate, and
// the signed node card that partners pin.
//
// Start with [Init], which creates a node home, and [Load], which reads one
// back. [Identity.Card] produces the public [Card] a partner imports;
// [ParseCard] verifies one. [ServerConfig] and [ClientConfig] build the
// mutually authenticated TLS 1.3 configurations federation links use.
//
// # Trust
//
// The co-signed agreement pins each party's node CA by fingerprint
// ([Card.CAFingerprint]). A card is signed twice over the same
// deterministic bytes: by the node signing key it carries (proof of
// possession) and by the node CA (binding the signing and HPKE keys to the
// pinned CA). A TLS peer is accepted only when its chain ends at a pinned
// partner CA and the party named in its certificate is the party of that CA.
//
// # Files
//
// Private keys are written with mode 0600 and [Load] refuses a home where
// any of them is readable by group or others. The package does no logging.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// File names inside a node home.
const (
	SigningKeyFile = "node.key"
	CAKeyFile      = "ca.key"
	CACertFile     = "ca.crt"
	TLSKeyFile     = "tls.key"
	TLSCertFile    = "tls.crt"
	ConfigFile     = "liaison.yaml"
	CardsDir       = "cards"
	hpkeKeyPrefix  = "hpke-"
	hpkeKeySuffix  = ".key"
)

// KEM names accepted by [InitOptions].
const (
	KEMMLKEM768X25519 = "mlkem768-x25519"
	KEMMLKEM1024P384  = "mlkem1024-p384"
)

// KEMByName returns the HPKE KEM for a name accepted by [InitOptions].
func KEMByName(name string) (hpke.KEM, error) {
	switch name {
	case "", KEMMLKEM768X25519:
		return hpke.MLKEM768X25519(), nil
	case KEMMLKEM1024P384:
		return hpke.MLKEM1024P384(), nil
	}
	return nil, fmt.Errorf("unknown kem %q (want %s or %s)", name, KEMMLKEM768X25519, KEMMLKEM1024P384)
}

// Identity is a node's key material, loaded from its home directory.
type Identity struct {
	Party string // party id, e.g. "USA"
	Dir   string // node home

	SigningKey ed25519.PrivateKey
	KEM        hpke.KEM
	CACert     *x509.Certificate
	CAKey      crypto.Signer
	TLSCert    tls.Certificate

	mu sync.Mutex // guards the fields below
	// Epoch is the current HPKE key epoch; HPKEPriv is its key (nil after
	// the current epoch was zeroised). Rotate changes them: once the node
	// runs, read them through Current.
	Epoch    uint32
	HPKEPriv hpke.PrivateKey
	previous map[uint32]hpke.PrivateKey // older epochs kept until retired
}

// NodeName returns the node's DNS name, the lower-cased party followed by
// ".liaison" (e.g. "usa.liaison"). It is a SAN of the TLS certificate and the
// server name partners dial.
func NodeName(party string) string { return strings.ToLower(party) + ".liaison" }

// HPKEKey returns the HPKE private key of an epoch: the current one or an
// older one not yet retired.
func (id *Identity) HPKEKey(epoch uint32) (hpke.PrivateKey, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if epoch == id.Epoch && id.HPKEPriv != nil {
		return id.HPKEPriv, nil
	}
	if k, ok := id.previous[epoch]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("no hpke key for epoch %d", epoch)
}

// Current returns the current epoch and its HPKE private key.
func (id *Identity) Current() (uint32, hpke.PrivateKey) {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.Epoch, id.HPKEPriv
}

// Epochs lists the epochs whose keys are held, oldest first.
func (id *Identity) Epochs() []uint32 {
	id.mu.Lock()
	defer id.mu.Unlock()
	var es []uint32
	for e := range id.previous {
		es = append(es, e)
	}
	if id.HPKEPriv != nil {
		es = append(es, id.Epoch)
	}
	sort.Slice(es, func(i, j int) bool { return es[i] < es[j] })
	return es
}

// Load reads a node home created by [Init]. It refuses a home in which any
// private key file is readable or writable by group or others.
func Load(dir string) (*Identity, error) {
	id := &Identity{Dir: dir, previous: map[uint32]hpke.PrivateKey{}}
	sk, err := readPrivateKey(filepath.Join(dir, SigningKeyFile))
	if err != nil {
		return nil, err
	}
	edk, ok := sk.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", filepath.Join(dir, SigningKeyFile))
	}
	id.SigningKey = edk
	cak, err := readPrivateKey(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	signer, ok := cak.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", filepath.Join(dir, CAKeyFile))
	}
	id.CAKey = signer
	if id.CACert, err = readCert(filepath.Join(dir, CACertFile)); err != nil {
		return nil, err
	}
	if !publicKeysEqual(id.CACert.PublicKey, signer.Public()) {
		return nil, fmt.Errorf("%s does not match %s", CAKeyFile, CACertFile)
	}
	if id.Party, err = PartyFromCert(id.CACert); err != nil {
		return nil, err
	}
	if err := checkMode(filepath.Join(dir, TLSKeyFile)); err != nil {
		return nil, err
	}
	if id.TLSCert, err = tls.LoadX509KeyPair(filepath.Join(dir, TLSCertFile), filepath.Join(dir, TLSKeyFile)); err != nil {
		return nil, fmt.Errorf("load tls certificate: %w", err)
	}
	if err := id.loadHPKE(); err != nil {
		return nil, err
	}
	return id, nil
}

func (id *Identity) loadHPKE() error {
	entries, err := os.ReadDir(id.Dir)
	if err != nil {
		return err
	}
	found := false
	for _, e := range entries {
		var epoch uint32
		name := e.Name()
		if !strings.HasPrefix(name, hpkeKeyPrefix) || !strings.HasSuffix(name, hpkeKeySuffix) {
			continue
		}
		if _, err := fmt.Sscanf(name, hpkeKeyPrefix+"%d"+hpkeKeySuffix, &epoch); err != nil || name != hpkeFileName(epoch) {
			return fmt.Errorf("unexpected hpke key file name %q", name)
		}
		k, err := readHPKEKey(filepath.Join(id.Dir, name))
		if err != nil {
			return err
		}
		if !found || epoch > id.Epoch {
			if id.HPKEPriv != nil {
				id.previous[id.Epoch] = id.HPKEPriv
			}
			id.Epoch, id.HPKEPriv, found = epoch, k, true
		} else {
			id.previous[epoch] = k
		}
	}
	if !found {
		return fmt.Errorf("no hpke key in %s", id.Dir)
	}
	id.KEM = id.HPKEPriv.KEM()
	return nil
}

func hpkeFileName(epoch uint32) string {
	return fmt.Sprintf("%s%d%s", hpkeKeyPrefix, epoch, hpkeKeySuffix)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	return false
}

var _ crypto.Signer = (*ecdsa.PrivateKey)(nil)

// ErrNoParty is returned by [PartyFromCert] for a certificate that names no
// Liaison party.
var ErrNoParty = errors.New("certificate names no liaison party")
