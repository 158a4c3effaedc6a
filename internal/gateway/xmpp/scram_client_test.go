package xmpp

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"testing"
)

// scramClientFinal computes a SCRAM-SHA-256 client-final-message, for tests.
func scramClientFinal(t *testing.T, password, clientFirstBare, serverFirst string) string {
	t.Helper()
	a := scramAttrs(serverFirst)
	salt, _ := base64.StdEncoding.DecodeString(a["s"])
	iter, _ := strconv.Atoi(a["i"])
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	ck := hmacSHA256(salted, []byte("Client Key"))
	sk := sha256.Sum256(ck)
	without := "c=biws,r=" + a["r"]
	sig := hmacSHA256(sk[:], []byte(clientFirstBare+","+serverFirst+","+without))
	for i := range ck {
		ck[i] ^= sig[i]
	}
	return without + ",p=" + base64.StdEncoding.EncodeToString(ck)
}
