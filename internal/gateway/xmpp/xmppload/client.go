package xmppload

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

const (
	nsTLS  = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind = "urn:ietf:params:xml:ns:xmpp-bind"
)

// client is one load session: STARTTLS, SASL PLAIN, resource binding.
type client struct {
	conn net.Conn
	r    *stream.Reader
	jid  string
	wmu  sync.Mutex
}

// dial opens an authenticated, bound session for user@domain at addr.
func dial(addr, domain, user, password string, tc *tls.Config) (*client, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	cl := &client{conn: c}
	fail := func(err error) (*client, error) {
		c.Close()
		return nil, fmt.Errorf("session %s@%s: %w", user, domain, err)
	}
	open := func() (*stream.Element, error) {
		if _, err := cl.conn.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" +
			domain + "' version='1.0'>")); err != nil {
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
			return nil, fmt.Errorf("expected features, got %q", f.Name.Local)
		}
		return f, nil
	}
	f, err := open()
	if err != nil {
		return fail(err)
	}
	if f.Child(nsTLS, "starttls") == nil {
		return fail(errors.New("no starttls offered"))
	}
	cl.conn.Write([]byte("<starttls xmlns='" + nsTLS + "'/>"))
	if e, _, err := cl.r.Next(); err != nil || e.Name.Local != "proceed" {
		return fail(fmt.Errorf("starttls: %v", err))
	}
	tlc := tls.Client(cl.conn, tc)
	if err := tlc.Handshake(); err != nil {
		return fail(err)
	}
	cl.conn, cl.r = tlc, nil
	if _, err = open(); err != nil {
		return fail(err)
	}
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	cl.conn.Write([]byte("<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + resp + "</auth>"))
	if e, _, err := cl.r.Next(); err != nil || e.Name.Local != "success" {
		name := ""
		if e != nil {
			name = e.Name.Local
		}
		return fail(fmt.Errorf("sasl: %q %v", name, err))
	}
	if _, err := open(); err != nil {
		return fail(err)
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
	cl.jid = strings.TrimSpace(b.Child(nsBind, "jid").Text)
	cl.r.SetLimit(1 << 20)
	cl.conn.Write([]byte("<presence/>"))
	c.SetDeadline(time.Time{})
	cl.conn.SetDeadline(time.Time{})
	return cl, nil
}

func (c *client) send(s []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(s)
	return err
}

// next returns the next stanza named local, skipping others.
func (c *client) next(local string, timeout time.Duration) (*stream.Element, []byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.conn.SetReadDeadline(time.Time{})
	for {
		e, raw, err := c.r.Next()
		if err != nil {
			return nil, nil, err
		}
		if e.Name.Local == local {
			return e, raw, nil
		}
	}
}

func (c *client) close() { c.conn.Close() }
