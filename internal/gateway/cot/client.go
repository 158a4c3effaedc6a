package cot

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"liaison/internal/gateway/cot/takproto"
	"liaison/internal/message"
)

// outItem is one entry of a client's queue: an event in XML, or the marker
// that switches the connection to protocol 1 after the response was sent.
type outItem struct {
	xml      []byte
	v1       *v1Frame // shared by every client of one delivery; nil: build here
	switchV1 bool
}

// v1Frame is an event's protocol 1 payload, built once on first use.
type v1Frame struct {
	once    sync.Once
	payload []byte // nil if the event did not convert
}

func (f *v1Frame) get(xml []byte) []byte {
	f.once.Do(func() {
		if e, err := ParseEvent(xml); err == nil {
			f.payload = e.ToProto().Marshal()
		}
	})
	return f.payload
}

// client is one connected TAK client.
type client struct {
	g        *Gateway
	conn     net.Conn
	user     string
	remote   string
	channels []string
	out      chan outItem
	done     chan struct{}
	once     sync.Once
	uid      string // first SA's uid
	offerUID string
	sub      *submitter
}

func (c *client) name() string { return c.user + "@" + c.remote }

func (c *client) close() { c.once.Do(func() { close(c.done); c.conn.Close() }) }

// dropSlow disconnects a client that cannot keep up, and audits it once.
func (c *client) dropSlow(detail string) {
	c.once.Do(func() {
		c.g.audit(Record{Kind: "slow-client", Client: c.name(), Detail: detail})
		close(c.done)
		c.conn.Close()
	})
}

func (g *Gateway) serve(conn net.Conn, isTLS bool) {
	defer conn.Close()
	user, groups := "anonymous", g.cfg.AnonymousGroups
	if isTLS {
		tc := conn.(*tls.Conn)
		hctx, cancel := context.WithTimeout(g.ctx, 30*time.Second)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			g.log.Info("tls handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
			return
		}
		certs := tc.ConnectionState().PeerCertificates
		if len(certs) == 0 {
			g.audit(Record{Kind: "refused", Client: conn.RemoteAddr().String(), Detail: "no client certificate"})
			return
		}
		cn := certs[0].Subject.CommonName
		sum := sha256.Sum256(certs[0].Raw)
		u, ok := g.cfg.Users["sha256:"+hex.EncodeToString(sum[:])]
		if !ok {
			u, ok = g.cfg.Users[cn]
		}
		if !ok {
			g.audit(Record{Kind: "refused", Client: conn.RemoteAddr().String(), Detail: fmt.Sprintf("certificate %q maps to no user", cn)})
			return
		}
		user, groups = u.Name, u.Groups
	}
	c := &client{
		g: g, conn: conn, user: user, remote: conn.RemoteAddr().String(),
		channels: g.channelsFor(groups),
		out:      make(chan outItem, g.cfg.QueueLen),
		done:     make(chan struct{}),
		offerUID: "takp-" + message.NewID().String(),
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	c.sub = g.submitterFor(user)
	g.clients[c] = struct{}{}
	for _, ch := range c.channels {
		g.channels[ch].add(c)
	}
	g.mu.Unlock()
	defer func() {
		c.close()
		g.mu.Lock()
		delete(g.clients, c)
		for _, ch := range c.channels {
			if f := g.channels[ch]; f != nil {
				f.remove(c)
			}
		}
		g.mu.Unlock()
	}()
	// The offer goes first, straight to the queue (never full yet).
	c.out <- outItem{xml: controlEvent(c.offerUID, TypeTakpOffer, `<TakControl><TakProtocolSupport version="1"/><TakServerVersionInfo serverVersion="Liaison" apiVersion="3"/></TakControl>`, g.cfg.Now())}
	var wg sync.WaitGroup
	wg.Go(c.writeLoop)
	c.readLoop()
	c.close()
	wg.Wait()
}

func controlEvent(uid, typ, detail string, now time.Time) []byte {
	return fmt.Appendf(nil, `<event version="2.0" uid="%s" type="%s" how="m-g" time="%s" start="%s" stale="%s"><point lat="0" lon="0" hae="0" ce="9999999" le="9999999"/><detail>%s</detail></event>`,
		uid, typ, FormatTime(now), FormatTime(now), FormatTime(now.Add(time.Minute)), detail)
}

func (c *client) writeLoop() {
	w := bufio.NewWriterSize(c.conn, 64<<10)
	v1 := false
	var frame []byte
	for {
		var it outItem
		select {
		case it = <-c.out:
		case <-c.done:
			return
		}
		for {
			if it.switchV1 {
				v1 = true
			} else if !v1 {
				w.Write(it.xml)
			} else {
				f := it.v1
				if f == nil {
					f = &v1Frame{}
				}
				if p := f.get(it.xml); p != nil {
					frame = takproto.AppendStream(frame[:0], p)
					w.Write(frame)
				}
			}
			select {
			case it = <-c.out:
				continue
			default:
			}
			break
		}
		c.conn.SetWriteDeadline(time.Now().Add(c.g.cfg.SlowClient))
		if err := w.Flush(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.dropSlow(fmt.Sprintf("write blocked for %v; disconnected", c.g.cfg.SlowClient))
			}
			c.close()
			return
		}
	}
}

// send queues an event for the client, waiting at most SlowClient.
func (c *client) send(it outItem, t *time.Timer) bool {
	select {
	case c.out <- it:
		return true
	default:
	}
	t.Reset(c.g.cfg.SlowClient)
	defer t.Stop()
	select {
	case c.out <- it:
		return true
	case <-c.done:
		return false
	case <-t.C:
		c.dropSlow(fmt.Sprintf("queue of %d full for %v; disconnected", cap(c.out), c.g.cfg.SlowClient))
		return false
	}
}

func (c *client) readLoop() {
	br := bufio.NewReaderSize(c.conn, 64<<10)
	sp := NewSplitter(br, c.g.cfg.MaxEvent)
	for {
		c.conn.SetReadDeadline(time.Now().Add(c.g.cfg.IdleTimeout))
		raw, err := sp.Next()
		if err != nil {
			if errors.Is(err, ErrEventTooLarge) {
				c.g.audit(Record{Kind: "error", Client: c.name(), Detail: err.Error() + "; disconnected"})
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.g.log.Debug("client read", "client", c.name(), "err", err)
			}
			return
		}
		e, err := ParseEvent(raw)
		if err != nil {
			c.g.audit(Record{Kind: "error", Client: c.name(), Detail: err.Error()})
			continue
		}
		if e.Type == TypeTakpRequest {
			ok := e.TakRequest == "1"
			resp := controlEvent(c.offerUID, TypeTakpResponse, fmt.Sprintf(`<TakControl><TakResponse status="%t"/></TakControl>`, ok), c.g.cfg.Now())
			c.g.audit(Record{Kind: "negotiation", Client: c.name(), Detail: fmt.Sprintf("requested version %q, accepted %t", e.TakRequest, ok)})
			t := time.NewTimer(time.Hour)
			if !c.send(outItem{xml: resp}, t) {
				return
			}
			if ok {
				if !c.send(outItem{switchV1: true}, t) {
					return
				}
				c.readV1(br)
				return
			}
			continue
		}
		c.handle(e)
	}
}

func (c *client) readV1(br *bufio.Reader) {
	fr := takproto.NewReader(br, c.g.cfg.MaxEvent)
	for {
		c.conn.SetReadDeadline(time.Now().Add(c.g.cfg.IdleTimeout))
		p, err := fr.Next()
		if err != nil {
			if errors.Is(err, takproto.ErrFrameTooLarge) || errors.Is(err, takproto.ErrMalformed) {
				c.g.audit(Record{Kind: "error", Client: c.name(), Detail: err.Error() + "; disconnected"})
			}
			return
		}
		m, err := takproto.Unmarshal(p)
		if err != nil || m.Event == nil {
			if err != nil {
				c.g.audit(Record{Kind: "error", Client: c.name(), Detail: err.Error()})
			}
			continue
		}
		x, err := FromProto(m.Event)
		if err == nil {
			var e *Event
			if e, err = ParseEvent(x); err == nil {
				c.handle(e)
				continue
			}
		}
		c.g.audit(Record{Kind: "error", Client: c.name(), Detail: err.Error()})
	}
}

// handle acts on one event from a client: answers control traffic and
// submits the rest.
func (c *client) handle(e *Event) {
	switch e.Type {
	case TypePing:
		t := time.NewTimer(time.Hour)
		c.send(outItem{xml: controlEvent(e.UID, TypePong, "", c.g.cfg.Now())}, t)
		return
	case TypePong, TypeTakpOffer, TypeTakpResponse:
		return
	}
	if c.uid == "" && e.Callsign != "" {
		c.uid = e.UID
		c.g.mu.Lock()
		c.g.contacts[e.UID] = Contact{UID: e.UID, Callsign: e.Callsign, Endpoint: e.Endpoint, Party: c.g.cfg.Origin, User: c.user, Remote: c.remote}
		c.g.mu.Unlock()
	}
	c.g.submit(c.sub, c, c.name(), c.channels, e)
}

const maxSent = 1 << 16

// remember notes the sender of each event of message id, for echo
// suppression.
func (g *Gateway) remember(id message.ID, from []*client) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sent[id] = from
	g.sentOrder = append(g.sentOrder, id)
	if len(g.sentOrder) > maxSent {
		delete(g.sent, g.sentOrder[0])
		g.sentOrder = g.sentOrder[1:]
	}
}

func (g *Gateway) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 65536)
	channels := g.channelsFor(g.cfg.AnonymousGroups)
	g.mu.Lock()
	sub := g.submitterFor("anonymous")
	g.mu.Unlock()
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		d := buf[:n]
		var raw []byte
		if takproto.IsMesh(d) {
			p, _ := takproto.ParseMesh(d)
			m, err := takproto.Unmarshal(p)
			if err != nil || m.Event == nil {
				continue
			}
			if raw, err = FromProto(m.Event); err != nil {
				continue
			}
		} else {
			raw = append([]byte(nil), d...)
		}
		e, err := ParseEvent(raw)
		if err != nil {
			g.audit(Record{Kind: "error", Client: "udp@" + addr.String(), Detail: err.Error()})
			continue
		}
		switch e.Type {
		case TypePing, TypePong, TypeTakpOffer, TypeTakpRequest, TypeTakpResponse:
			continue
		}
		g.submit(sub, nil, "udp@"+addr.String(), channels, e)
	}
}
