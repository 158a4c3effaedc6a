package xmpp

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// User is an account of the node's XMPP domain. Only SCRAM-SHA-256 keys are
// kept, never the password (RFC 5802 §3, RFC 7677).
type User struct {
	Name       string // localpart
	Clearance  []byte // clearance under the local policy
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Users looks accounts up by localpart.
type Users interface {
	User(name string) (*User, bool)
}

// NewUser derives SCRAM-SHA-256 keys for password with a fresh salt.
func NewUser(name, password string, clearance []byte) (*User, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	u := &User{Name: strings.ToLower(name), Clearance: clearance, Salt: salt, Iterations: 4096}
	salted, err := pbkdf2.Key(sha256.New, password, salt, u.Iterations, sha256.Size)
	if err != nil {
		return nil, err
	}
	ck := hmacSHA256(salted, []byte("Client Key"))
	sk := sha256.Sum256(ck)
	u.StoredKey = sk[:]
	u.ServerKey = hmacSHA256(salted, []byte("Server Key"))
	return u, nil
}

// checkPassword verifies a plain password against the SCRAM keys.
func (u *User) checkPassword(password string) bool {
	salted, err := pbkdf2.Key(sha256.New, password, u.Salt, u.Iterations, sha256.Size)
	if err != nil {
		return false
	}
	sk := sha256.Sum256(hmacSHA256(salted, []byte("Client Key")))
	return subtle.ConstantTimeCompare(sk[:], u.StoredKey) == 1
}

// UserMap is an in-memory Users.
type UserMap struct {
	mu sync.RWMutex
	m  map[string]*User
}

// Add adds or replaces a user.
func (m *UserMap) Add(u *User) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]*User{}
	}
	m.m[u.Name] = u
}

// User implements Users.
func (m *UserMap) User(name string) (*User, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	u, ok := m.m[strings.ToLower(name)]
	return u, ok
}

func hmacSHA256(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// plainAuth checks a SASL PLAIN response (RFC 4616): authzid NUL authcid
// NUL password. It returns the user.
func plainAuth(users Users, resp []byte) (*User, error) {
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 {
		return nil, errors.New("malformed PLAIN response")
	}
	authz, name, pw := string(parts[0]), string(parts[1]), string(parts[2])
	u, ok := users.User(name)
	if !ok || !u.checkPassword(pw) {
		return nil, errors.New("not authorized")
	}
	if authz != "" && !strings.EqualFold(authz, name) && !strings.HasPrefix(strings.ToLower(authz), u.Name+"@") {
		return nil, fmt.Errorf("authzid %q not permitted", authz)
	}
	return u, nil
}

// scram is the server side of one SCRAM-SHA-256 exchange (RFC 5802).
type scram struct {
	users       Users
	user        *User
	gs2         string
	clientFirst string // client-first-message-bare
	serverFirst string
	nonce       string
}

// first handles client-first-message and returns server-first-message.
func (s *scram) first(msg []byte) ([]byte, error) {
	m := string(msg)
	// gs2-header: "n,," or "y,," (no channel binding offered by us).
	var rest string
	switch {
	case strings.HasPrefix(m, "n,"), strings.HasPrefix(m, "y,"):
		i := strings.IndexByte(m[2:], ',')
		if i < 0 {
			return nil, errors.New("malformed gs2 header")
		}
		if authz := m[2 : 2+i]; authz != "" && !strings.HasPrefix(authz, "a=") {
			return nil, errors.New("malformed authzid")
		}
		s.gs2 = m[:3+i]
		rest = m[3+i:]
	default:
		return nil, errors.New("channel binding not supported")
	}
	s.clientFirst = rest
	attrs := scramAttrs(rest)
	name, cnonce := attrs["n"], attrs["r"]
	if name == "" || cnonce == "" {
		return nil, errors.New("malformed client-first-message")
	}
	name = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(name)
	u, ok := s.users.User(name)
	if !ok {
		// Answer with a fake salt so that absence is not revealed early.
		u = &User{Name: name, Salt: []byte(name), Iterations: 4096}
	} else {
		s.user = u
	}
	nb := make([]byte, 18)
	rand.Read(nb)
	s.nonce = cnonce + base64.RawStdEncoding.EncodeToString(nb)
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(u.Salt) + ",i=" + strconv.Itoa(u.Iterations)
	return []byte(s.serverFirst), nil
}

// final handles client-final-message and returns server-final-message.
func (s *scram) final(msg []byte) ([]byte, *User, error) {
	m := string(msg)
	i := strings.LastIndex(m, ",p=")
	if i < 0 {
		return nil, nil, errors.New("malformed client-final-message")
	}
	withoutProof := m[:i]
	attrs := scramAttrs(m)
	if attrs["c"] != base64.StdEncoding.EncodeToString([]byte(s.gs2)) {
		return nil, nil, errors.New("channel binding mismatch")
	}
	if attrs["r"] != s.nonce {
		return nil, nil, errors.New("nonce mismatch")
	}
	proof, err := base64.StdEncoding.DecodeString(attrs["p"])
	if err != nil || len(proof) != sha256.Size || s.user == nil {
		return nil, nil, errors.New("not authorized")
	}
	authMsg := []byte(s.clientFirst + "," + s.serverFirst + "," + withoutProof)
	sig := hmacSHA256(s.user.StoredKey, authMsg)
	ck := make([]byte, len(proof))
	for j := range proof {
		ck[j] = proof[j] ^ sig[j]
	}
	h := sha256.Sum256(ck)
	if subtle.ConstantTimeCompare(h[:], s.user.StoredKey) != 1 {
		return nil, nil, errors.New("not authorized")
	}
	v := hmacSHA256(s.user.ServerKey, authMsg)
	return []byte("v=" + base64.StdEncoding.EncodeToString(v)), s.user, nil
}

func scramAttrs(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if len(kv) >= 2 && kv[1] == '=' {
			out[kv[:1]] = kv[2:]
		}
	}
	return out
}
