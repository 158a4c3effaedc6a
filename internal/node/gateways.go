package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"liaison/internal/agreement"
	"liaison/internal/api"
	"liaison/internal/gateway/cot"
	"liaison/internal/gateway/xmpp"
	"liaison/internal/label"
	"liaison/internal/message"
)

// gateways are the protocol gateways the node runs.
type gateways struct {
	cot  *cot.Gateway
	xmpp *xmpp.Server
	lns  map[string]net.Listener // xmpp listeners by role: c2s, c2s_tls, s2s
}

// CoTGateway is the running TAK gateway, or nil.
func (n *Node) CoTGateway() *cot.Gateway { return n.gw.cot }

// XMPPAddr is the bound address of an XMPP listener ("c2s", "c2s_tls"
// or "s2s"), or nil.
func (n *Node) XMPPAddr(role string) net.Addr {
	if ln := n.gw.lns[role]; ln != nil {
		return ln.Addr()
	}
	return nil
}

// startGateways starts the configured gateways (in Start).
func (n *Node) startGateways(ctx context.Context) error {
	if cc := n.cfg.Gateways.CoT; cc != nil && cc.Enabled {
		if err := n.startCoT(ctx, cc); err != nil {
			return fmt.Errorf("cot gateway: %w", err)
		}
	}
	if xc := n.cfg.Gateways.XMPP; xc != nil && xc.Enabled {
		if err := n.startXMPP(ctx, xc); err != nil {
			return fmt.Errorf("xmpp gateway: %w", err)
		}
	}
	return nil
}

// closeGateways stops the gateways (in Close, before the store closes).
func (n *Node) closeGateways() {
	if n.gw.cot != nil {
		n.gw.cot.Close()
	}
	if n.gw.xmpp != nil {
		n.gw.xmpp.Close()
	}
	for _, ln := range n.gw.lns {
		ln.Close()
	}
}

// serverCert is the configured certificate, or the node's own.
func (n *Node) serverCert(certFile, keyFile string) (tls.Certificate, error) {
	if certFile == "" {
		return n.id.TLSCert, nil
	}
	return tls.LoadX509KeyPair(n.cfg.Path(certFile), n.cfg.Path(keyFile))
}

func (n *Node) startCoT(ctx context.Context, cc *CoTConfig) error {
	cfg := cot.Config{
		Origin: n.party, TCP: cc.TCP, TLS: cc.TLS, UDP: cc.UDP,
		Users: map[string]cot.User{}, AnonymousGroups: cc.AnonymousGroups, Channels: cc.Channels,
		StartAfter: map[string]uint64{}, DefaultLabels: map[string][]byte{},
		Precedence: cc.Precedence, MaxEvent: cc.MaxEvent,
		Logger: n.log.With(slog.String("component", "cot")), Auditor: cotAuditor{n}, Now: n.clock.Now,
	}
	for k, u := range cc.Users {
		cfg.Users[k] = cot.User{Name: u.Name, Groups: u.Groups}
	}
	if cc.TLS != "" {
		cert, err := n.serverCert(cc.TLSCert, cc.TLSKey)
		if err != nil {
			return err
		}
		pem, err := os.ReadFile(n.cfg.Path(cc.ClientCA))
		if err != nil {
			return fmt.Errorf("client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("client_ca %q holds no PEM certificate", cc.ClientCA)
		}
		cfg.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	}
	// Unmarked events get the default label of the agreement channel in
	// force at that moment; history is not replayed to clients.
	cfg.DefaultLabel = n.channelDefault
	for _, ch := range cc.Channels {
		cfg.StartAfter[ch] = n.historyHead(ctx, ch)
	}
	g, err := cot.New(cfg, cotCore{n}, &cotLabeler{n: n, classes: cc.Classifications})
	if err != nil {
		return err
	}
	if err := g.Start(ctx); err != nil {
		return err
	}
	n.gw.cot = g
	tcp, tl, udp := g.Addrs()
	n.log.Info("cot gateway up", slog.Any("tls", tl), slog.Any("tcp", tcp), slog.Any("udp", udp))
	return nil
}

// historyHead is the sequence of a channel's last message (0 if none).
func (n *Node) historyHead(ctx context.Context, channel string) uint64 {
	var head uint64
	for {
		es, err := n.store.History(ctx, channel, head, 1024)
		if err != nil || len(es) == 0 {
			return head
		}
		head = es[len(es)-1].Seq
		if len(es) < 1024 {
			return head
		}
	}
}

// channelDef returns the agreement channel named channel with this party
// as a member (the last installed agreement's), or nil.
func (n *Node) channelDef(channel string) *agreement.Channel {
	n.mu.RLock()
	set := n.agreements
	n.mu.RUnlock()
	var ch *agreement.Channel
	for _, d := range set.All() {
		if c := d.Channel(channel); c != nil && containsString(c.Members, n.party) {
			ch = c
		}
	}
	return ch
}

// channelDefault is the agreement channel's default label, or nil.
func (n *Node) channelDefault(channel string) []byte {
	if c := n.channelDef(channel); c != nil && c.DefaultLabel != "" {
		return []byte(c.DefaultLabel)
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (n *Node) startXMPP(ctx context.Context, xc *XMPPConfig) error {
	cert, err := n.serverCert(xc.TLSCert, xc.TLSKey)
	if err != nil {
		return err
	}
	users := &xmpp.UserMap{}
	for _, u := range xc.Users {
		var xu *xmpp.User
		if u.SCRAM != "" {
			xu, err = parseSCRAM(u.Name, u.SCRAM)
		} else {
			xu, err = xmpp.NewUser(u.Name, u.Password, nil)
		}
		if err != nil {
			return fmt.Errorf("user %q: %w", u.Name, err)
		}
		xu.Clearance = []byte(u.Clearance)
		if u.Clearance == "" {
			xu.Clearance = encodeClearanceSpec(u.Classification, u.ReleasableTo, u.Handling)
		}
		users.Add(xu)
	}
	cfg := xmpp.Config{
		Domain: xc.Domain, MUCDomain: xc.MUCDomain, Party: n.party,
		TLS:   &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
		Users: users, Core: xmppCore{n}, Auditor: xmppAuditor{n}, DirectChannel: xc.DirectChannel,
		Logger: n.log.With(slog.String("component", "xmpp")), Now: n.clock.Now,
	}
	labels := &xmppLabels{n: n, rooms: map[string]string{}}
	for _, r := range xc.Rooms {
		cfg.Rooms = append(cfg.Rooms, xmpp.Room{Name: r.Name, Channel: r.Channel, Desc: r.Description})
		labels.rooms[r.Name] = r.Channel
	}
	for _, p := range xc.Partners {
		card, ok := n.card(p.Party)
		if !ok || card.CA() == nil {
			return fmt.Errorf("partner %s: no pinned card of party %s (its CA authenticates the S2S link)", p.Domain, p.Party)
		}
		roots := x509.NewCertPool()
		roots.AddCert(card.CA())
		party, channel := p.Party, p.Channel
		cfg.Partners = append(cfg.Partners, xmpp.Partner{
			Domain: p.Domain, Party: party, Addr: p.Address, Roots: roots, Channel: channel,
			Clearance:    encodePartyClearance(party, channel),
			DefaultLabel: n.channelDefault(channel),
			InForce:      func(time.Time) bool { return n.May(context.Background(), n.party, party, channel).Allowed },
		})
	}
	cfg.Labels = labels
	s, err := xmpp.New(cfg)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		s.Close()
		return err
	}
	n.gw.xmpp = s
	n.gw.lns = map[string]net.Listener{}
	serve := map[string]func(net.Listener) error{"c2s": s.ServeC2S, "c2s_tls": s.ServeC2STLS, "s2s": s.ServeS2S}
	for role, addr := range map[string]string{"c2s": xc.C2S, "c2s_tls": xc.C2STLS, "s2s": xc.S2S} {
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s %q: %w", role, addr, err)
		}
		n.gw.lns[role] = ln
		n.log.Info("xmpp gateway listening", slog.String("role", role), slog.String("addr", ln.Addr().String()), slog.String("domain", xc.Domain))
		fn := serve[role]
		n.wg.Go(func() {
			if err := fn(ln); err != nil && !errors.Is(err, net.ErrClosed) {
				n.log.Error("xmpp listener stopped", slog.String("role", role), slog.Any("error", err))
			}
		})
	}
	return nil
}

// cotCore and xmppCore adapt the node to the gateways' Core interfaces.
type (
	cotCore  struct{ n *Node }
	xmppCore struct{ n *Node }
)

var _ xmpp.BatchCore = xmppCore{}

// Submit hands a gateway's message to the node; a refusal is an error.
func (c cotCore) Submit(ctx context.Context, m *message.Message) error {
	_, err := c.n.Submit(ctx, m)
	return err
}

// Submit hands a gateway's message to the node; a refusal is an error.
func (c xmppCore) Submit(ctx context.Context, m *message.Message) error {
	_, err := c.n.Submit(ctx, m)
	return err
}

// SubmitBatch hands a gateway's messages to the node in one store write
// (xmpp.BatchCore); errs[i] is the refusal of ms[i], if any.
func (c xmppCore) SubmitBatch(ctx context.Context, ms []*message.Message) []error {
	res := c.n.SubmitBatch(ctx, ms)
	errs := make([]error, len(res))
	for i, r := range res {
		errs[i] = r.Err
	}
	return errs
}

// Subscribe streams a channel with each message's label under this
// node's policy.
func (c cotCore) Subscribe(ctx context.Context, channel string, after uint64) (<-chan cot.Delivery, error) {
	return relay(ctx, c.n, channel, after, func(e api.Entry, local []byte) cot.Delivery {
		return cot.Delivery{Seq: e.Seq, Msg: e.Message, LocalLabel: local}
	})
}

// Subscribe streams a channel with each message's label under this
// node's policy.
func (c xmppCore) Subscribe(ctx context.Context, channel string, after uint64) (<-chan xmpp.Delivery, error) {
	return relay(ctx, c.n, channel, after, func(e api.Entry, local []byte) xmpp.Delivery {
		return xmpp.Delivery{Seq: e.Seq, Msg: e.Message, LocalLabel: local}
	})
}

// relay maps the node's subscription to a gateway's deliveries. The local
// label is the one this node's policy governs (node.LocalLabel); nil if
// no label parses, which the gateways refuse to deliver.
func relay[D any](ctx context.Context, n *Node, channel string, after uint64, mk func(api.Entry, []byte) D) (<-chan D, error) {
	es := n.subscribe(ctx, channel, after, false)
	out := make(chan D)
	go func() {
		defer close(out)
		// Labels are parsed once (parseLabel's cache) and the same few
		// come again and again: keep their rendering too.
		xml := map[*label.Label][]byte{}
		for e := range es {
			var local []byte
			if l := n.LocalLabel(e.Message); l != nil {
				var ok bool
				if local, ok = xml[l]; !ok {
					local, _ = l.MarshalXML4774(l.Kind)
					if len(xml) >= 64 {
						clear(xml)
					}
					xml[l] = local
				}
			}
			select {
			case out <- mk(e, local):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
