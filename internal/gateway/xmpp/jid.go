package xmpp

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// jid is a parsed JID (RFC 7622). Local and domain parts are lowercased;
// full PRECIS enforcement is left to a later change (mellium.im/xmpp/jid).
type jid struct{ Local, Domain, Resource string }

func parseJID(s string) (jid, error) {
	if s == "" || len(s) > 3071 || !utf8.ValidString(s) {
		return jid{}, fmt.Errorf("malformed jid %q", s)
	}
	var j jid
	if i := strings.IndexByte(s, '/'); i >= 0 {
		j.Resource = s[i+1:]
		s = s[:i]
		if j.Resource == "" || len(j.Resource) > 1023 {
			return jid{}, fmt.Errorf("malformed jid resource in %q", s)
		}
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		j.Local = strings.ToLower(s[:i])
		s = s[i+1:]
		if j.Local == "" || len(j.Local) > 1023 || strings.ContainsAny(j.Local, "\"&'/:<>@ ") {
			return jid{}, fmt.Errorf("malformed jid localpart %q", j.Local)
		}
	}
	j.Domain = strings.ToLower(strings.TrimSuffix(s, "."))
	if j.Domain == "" || len(j.Domain) > 1023 || strings.ContainsAny(j.Domain, "\"&'/:<>@ ") {
		return jid{}, fmt.Errorf("malformed jid domain %q", s)
	}
	return j, nil
}

func (j jid) Bare() string {
	if j.Local == "" {
		return j.Domain
	}
	return j.Local + "@" + j.Domain
}

func (j jid) String() string {
	if j.Resource == "" {
		return j.Bare()
	}
	return j.Bare() + "/" + j.Resource
}
