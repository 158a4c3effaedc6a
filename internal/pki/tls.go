package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// PeerVerifier is called after a peer's certificate chain has been verified
// against a pinned partner CA and the party it names checked against that
// CA. It can refuse the party, e.g. when no agreement in force covers it. A
// nil PeerVerifier accepts every pinned partner.
type PeerVerifier func(party string, chains [][]*x509.Certificate) error

// CurvePreferences puts the hybrid post-quantum key exchange first.
var CurvePreferences = []tls.CurveID{tls.X25519MLKEM768, tls.X25519}

// ErrUnknownPeer is wrapped when a peer's chain does not end at a pinned CA.
var ErrUnknownPeer = errors.New("peer not pinned")

// ServerConfig returns a TLS 1.3 server configuration that presents the
// node's certificate and requires a client certificate issued by one of the
// partner CAs in cards.
func ServerConfig(id *Identity, cards []*Card, verify PeerVerifier) *tls.Config {
	return serverConfig(id, cards, verify)
}

// DynamicServerConfig is like [ServerConfig] but reads the pinned partner
// cards at every handshake, so that importing a card or an agreement
// entering or leaving force takes effect without restarting the listener.
func DynamicServerConfig(id *Identity, cards func() []*Card, verify PeerVerifier) *tls.Config {
	base := serverConfig(id, nil, verify)
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return serverConfig(id, cards(), verify), nil
	}
	return base
}

func serverConfig(id *Identity, cards []*Card, verify PeerVerifier) *tls.Config {
	pool := x509.NewCertPool()
	for _, c := range cards {
		pool.AddCert(c.CA())
	}
	cert := id.TLSCert
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: CurvePreferences,
		Certificates:     []tls.Certificate{cert},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := checkPeer(cs.VerifiedChains, cards, verify)
			return err
		},
	}
}

// ClientConfig returns a TLS 1.3 client configuration for dialling the
// partner described by card: it presents the node's certificate and accepts
// only a server certificate for card.Node issued by card's CA.
func ClientConfig(id *Identity, card *Card, verify PeerVerifier) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(card.CA())
	cert := id.TLSCert
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: CurvePreferences,
		Certificates:     []tls.Certificate{cert},
		RootCAs:          pool,
		ServerName:       card.Node,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := checkPeer(cs.VerifiedChains, []*Card{card}, verify)
			return err
		},
	}
}

// checkPeer finds, among verified chains, one whose root is a pinned card's
// CA and whose leaf names that card's party.
func checkPeer(chains [][]*x509.Certificate, cards []*Card, verify PeerVerifier) (string, error) {
	for _, chain := range chains {
		if len(chain) < 2 {
			continue
		}
		root := chain[len(chain)-1]
		for _, c := range cards {
			if !bytes.Equal(root.Raw, c.CACert) {
				continue
			}
			party, err := PartyFromCert(chain[0])
			if err != nil {
				return "", err
			}
			if party != c.Party {
				return "", fmt.Errorf("peer certificate names party %q but is issued by the CA of %q", party, c.Party)
			}
			if verify != nil {
				if err := verify(party, chains); err != nil {
					return "", err
				}
			}
			return party, nil
		}
	}
	return "", fmt.Errorf("%w: no verified chain ends at a pinned partner CA", ErrUnknownPeer)
}

// PeerParty returns the party of a TLS connection's verified peer.
func PeerParty(cs tls.ConnectionState) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", fmt.Errorf("%w: no verified peer certificate", ErrUnknownPeer)
	}
	return PartyFromCert(cs.VerifiedChains[0][0])
}
