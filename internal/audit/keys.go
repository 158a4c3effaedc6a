package audit

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// cosignerKeyInfo is the HKDF label that derives the cosigning key from the
// node signing key. Changing it changes every node's cosigner identity.
const cosignerKeyInfo = "liaison audit cosignature/v1 key"

// NoteSigner returns a signed-note signer (C2SP signed-note, Ed25519, key
// type 0x01) named name, for checkpoints of the log whose origin is name.
func NoteSigner(name string, key ed25519.PrivateKey) (note.Signer, error) {
	skey, err := signerKey(name, key)
	if err != nil {
		return nil, err
	}
	return note.NewSigner(skey)
}

// NoteVerifier returns the signed-note verifier of checkpoints signed by
// [NoteSigner] with the same name and key.
func NoteVerifier(name string, pub ed25519.PublicKey) (note.Verifier, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ed25519 public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, fmt.Errorf("key name %q: %v", name, err)
	}
	return note.NewVerifier(vkey)
}

// CosignerKey derives the key a node cosigns its partners' checkpoints with
// from its signing key (HKDF-SHA256 over the seed), so that one key never
// signs both checkpoints and cosignatures, and the node keeps a single
// secret.
func CosignerKey(nodeKey ed25519.PrivateKey) (ed25519.PrivateKey, error) {
	if len(nodeKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("ed25519 private key has %d bytes, want %d", len(nodeKey), ed25519.PrivateKeySize)
	}
	seed, err := hkdf.Key(sha256.New, nodeKey.Seed(), nil, cosignerKeyInfo, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// CosignerVerifierKey formats the public half of a cosigning key as a
// signed-note verifier key of type 0x04 (C2SP tlog-cosignature,
// cosignature/v1), the string a node publishes so that its partners can
// check its cosignatures (see [Log.TrustWitness]).
func CosignerVerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("ed25519 public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return "", fmt.Errorf("key name %q: %v", name, err)
	}
	return fnote.VKeyToCosignatureV1(vkey)
}

// cosigner returns the cosignature/v1 signer for key, named name.
func cosigner(name string, key ed25519.PrivateKey) (note.Signer, error) {
	skey, err := signerKey(name, key)
	if err != nil {
		return nil, err
	}
	cs, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("cosigner name %q: %v", name, err)
	}
	return cs, nil
}

// signerKey formats key as a signed-note private key string named name.
func signerKey(name string, key ed25519.PrivateKey) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("ed25519 private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	vkey, err := note.NewEd25519VerifierKey(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		return "", fmt.Errorf("key name %q: %v", name, err)
	}
	// vkey is name+hash+base64; the signer key carries the same hash.
	// (The base64 key may itself contain '+', so cut by position.)
	hash, _, _ := strings.Cut(strings.TrimPrefix(vkey, name+"+"), "+")
	return "PRIVATE+KEY+" + name + "+" + hash + "+" +
		base64.StdEncoding.EncodeToString(append([]byte{1}, key.Seed()...)), nil
}
