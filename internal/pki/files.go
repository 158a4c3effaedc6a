package pki

import (
	"crypto"
	"crypto/hpke"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

// maxKeyFile bounds every file this package reads.
const maxKeyFile = 64 << 10

const hpkePEMType = "LIAISON HPKE PRIVATE KEY"

// ErrKeyFileMode is wrapped by errors for key files that group or others
// may read or write.
var ErrKeyFileMode = errors.New("key file is accessible by group or others")

// checkMode refuses a private key file that group or others can access.
func checkMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %#o, want 0600 (chmod 600 %s)", ErrKeyFileMode, path, m, path)
	}
	return nil
}

func readBounded(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxKeyFile {
		return nil, fmt.Errorf("%s is %d bytes, limit %d", path, fi.Size(), maxKeyFile)
	}
	return os.ReadFile(path)
}

func readPEM(path, typ string) (*pem.Block, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != typ {
		return nil, fmt.Errorf("%s: no %q PEM block", path, typ)
	}
	return block, nil
}

func readPrivateKey(path string) (crypto.PrivateKey, error) {
	if err := checkMode(path); err != nil {
		return nil, err
	}
	block, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func readCert(path string) (*x509.Certificate, error) {
	block, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func readHPKEKey(path string) (hpke.PrivateKey, error) {
	if err := checkMode(path); err != nil {
		return nil, err
	}
	block, err := readPEM(path, hpkePEMType)
	if err != nil {
		return nil, err
	}
	id, err := strconv.ParseUint(block.Headers["KEM"], 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%s: bad KEM header %q", path, block.Headers["KEM"])
	}
	kem, err := hpke.NewKEM(uint16(id))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k, err := kem.NewPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// writeFile writes data to a new file with mode perm, failing if it exists.
func writeFile(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writePrivateKey(path string, k crypto.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func writeHPKEKey(path string, k hpke.PrivateKey, epoch uint32) error {
	b, err := k.Bytes()
	if err != nil {
		return err
	}
	defer clear(b)
	return writeFile(path, pem.EncodeToMemory(&pem.Block{
		Type:    hpkePEMType,
		Headers: map[string]string{"KEM": strconv.Itoa(int(k.KEM().ID())), "Epoch": strconv.FormatUint(uint64(epoch), 10)},
		Bytes:   b,
	}), 0o600)
}

// destroyFile overwrites a key file with zeros, syncs it and removes it.
// Overwriting is best effort on journaling or copy-on-write file systems.
func destroyFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write(make([]byte, fi.Size()))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	return os.Remove(path)
}
