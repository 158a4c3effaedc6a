package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// leanPoster posts one fixed request over kept-alive TLS connections with
// a minimal HTTP/1.1 client, in the spirit of wrk: the request bytes are
// built once and the answer is read by its Content-Length. The load
// generator shares the machine with the node, and Go's http.Client costs
// about as much CPU per request as the server; this one leaves that CPU to
// the node, which is what is measured (-client nethttp measures with
// http.Client instead).
type leanPoster struct {
	addr  string
	tls   *tls.Config
	req   []byte
	conns chan *leanConn
	check func(status int, body []byte) error
}

type leanConn struct {
	c  *tls.Conn
	br *bufio.Reader
}

// newLeanPoster posts body to path at addr, trusting ca, with token;
// check judges each answer.
func newLeanPoster(addr string, ca *x509.Certificate, token, path string, body []byte, senders int, check func(status int, body []byte) error) *leanPoster {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, addr, token, len(body))
	req.Write(body)
	return &leanPoster{
		addr:  addr,
		tls:   &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}},
		req:   req.Bytes(),
		conns: make(chan *leanConn, senders),
		check: check,
	}
}

// post sends the request once and checks the answer.
func (l *leanPoster) post(ctx context.Context) error {
	var c *leanConn
	select {
	case c = <-l.conns:
	default:
		d := tls.Dialer{Config: l.tls}
		nc, err := d.DialContext(ctx, "tcp", l.addr)
		if err != nil {
			return err
		}
		c = &leanConn{c: nc.(*tls.Conn), br: bufio.NewReaderSize(nc, 4096)}
	}
	status, body, err := c.roundTrip(l.req)
	if err != nil {
		c.c.Close()
		return err
	}
	select {
	case l.conns <- c:
	default:
		c.c.Close()
	}
	return l.check(status, body)
}

func (l *leanPoster) close() {
	for {
		select {
		case c := <-l.conns:
			c.c.Close()
		default:
			return
		}
	}
}

var errChunked = errors.New("lean client: response without Content-Length")

func (c *leanConn) roundTrip(req []byte) (int, []byte, error) {
	if _, err := c.c.Write(req); err != nil {
		return 0, nil, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	// "HTTP/1.1 201 Created\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, nil, fmt.Errorf("lean client: bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("lean client: bad status line %q", line)
	}
	n := -1
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			if n, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, nil, fmt.Errorf("lean client: bad Content-Length %q", v)
			}
		}
	}
	if n < 0 {
		return 0, nil, errChunked
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return 0, nil, err
	}
	return status, body, nil
}
