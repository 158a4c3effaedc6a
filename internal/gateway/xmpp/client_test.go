package xmpp

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"liaison/internal/gateway/xmpp/stream"
)

// testClient is a minimal XMPP client for tests and the load generator:
// STARTTLS or direct TLS, SASL PLAIN or EXTERNAL, resource binding.
type testClient struct {
	conn net.Conn
	r    *stream.Reader
	jid  string
	wmu  sync.Mutex
}

type clientOpts struct {
	addr, domain, user, password string
	tls                          *tls.Config
	direct                       bool // direct TLS instead of STARTTLS
	external                     bool // SASL EXTERNAL with the TLS client certificate
}

func dialClient(o clientOpts) (*testClient, error) { return dialSession(o, "", 0) }

// dialResume authenticates and resumes XEP-0198 session previd.
func dialResume(o clientOpts, previd string, h int) (*testClient, error) {
	return dialSession(o, previd, h)
}

func dialSession(o clientOpts, previd string, h int) (*testClient, error) {
	c, err := net.DialTimeout("tcp", o.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	cl := &testClient{conn: c}
	fail := func(err error) (*testClient, error) {
		c.Close()
		return nil, err
	}
	if o.direct {
		tc := tls.Client(c, o.tls)
		if err := tc.Handshake(); err != nil {
			return fail(err)
		}
		cl.conn = tc
	}
	open := func() (*stream.Element, error) {
		if _, err := cl.conn.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" +
			o.domain + "' version='1.0'>")); err != nil {
			return nil, err
		}
		if cl.r == nil {
			cl.r = stream.NewReader(cl.conn)
		}
		if _, err := cl.r.Header(); err != nil {
			return nil, err
		}
		f, _, err := cl.r.Next()
		if err != nil {
			return nil, err
		}
		if f.Name.Local != "features" {
			return nil, fmt.Errorf("expected features, got %s", f.Name.Local)
		}
		return f, nil
	}
	f, err := open()
	if err != nil {
		return fail(err)
	}
	if !o.direct {
		if f.Child(nsTLS, "starttls") == nil {
			return fail(errors.New("no starttls offered"))
		}
		cl.conn.Write([]byte("<starttls xmlns='" + nsTLS + "'/>"))
		if e, _, err := cl.r.Next(); err != nil || e.Name.Local != "proceed" {
			return fail(fmt.Errorf("starttls: %v", err))
		}
		tc := tls.Client(cl.conn, o.tls)
		if err := tc.Handshake(); err != nil {
			return fail(err)
		}
		cl.conn, cl.r = tc, nil
		if f, err = open(); err != nil {
			return fail(err)
		}
	}
	mechs := map[string]bool{}
	if m := f.Child(nsSASL, "mechanisms"); m != nil {
		for _, x := range m.Children {
			mechs[strings.TrimSpace(x.Text)] = true
		}
	}
	if o.external {
		if !mechs["EXTERNAL"] {
			return fail(errors.New("EXTERNAL not offered"))
		}
		cl.conn.Write([]byte("<auth xmlns='" + nsSASL + "' mechanism='EXTERNAL'>=</auth>"))
	} else {
		resp := base64.StdEncoding.EncodeToString([]byte("\x00" + o.user + "\x00" + o.password))
		cl.conn.Write([]byte("<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + resp + "</auth>"))
	}
	if e, _, err := cl.r.Next(); err != nil || e.Name.Local != "success" {
		return fail(fmt.Errorf("sasl: %v %v", e, err))
	}
	if _, err := open(); err != nil {
		return fail(err)
	}
	if previd != "" {
		cl.conn.Write([]byte(fmt.Sprintf("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>", previd, h)))
		e, _, err := cl.r.Next()
		if err != nil || e.Name.Local != "resumed" {
			return fail(fmt.Errorf("resume failed: %v", err))
		}
		c.SetDeadline(time.Time{})
		cl.conn.SetDeadline(time.Time{})
		return cl, nil
	}
	cl.conn.Write([]byte("<iq type='set' id='b'><bind xmlns='" + nsBind + "'><resource>load</resource></bind></iq>"))
	e, _, err := cl.r.Next()
	if err != nil {
		return fail(err)
	}
	b := e.Child(nsBind, "bind")
	if b == nil || b.Child(nsBind, "jid") == nil {
		return fail(errors.New("bind failed"))
	}
	cl.jid = b.Child(nsBind, "jid").Text
	cl.r.SetLimit(1 << 20)
	cl.conn.Write([]byte("<presence/>"))
	c.SetDeadline(time.Time{})
	cl.conn.SetDeadline(time.Time{})
	return cl, nil
}

func (c *testClient) send(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write([]byte(s))
	return err
}

// next returns the next stanza named local, skipping others.
func (c *testClient) next(local string, timeout time.Duration) (*stream.Element, []byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.conn.SetReadDeadline(time.Time{})
	for {
		e, raw, err := c.r.Next()
		if err != nil {
			return nil, nil, err
		}
		if local == "" || e.Name.Local == local {
			return e, raw, nil
		}
	}
}

func (c *testClient) close() { c.conn.Close() }
