// Package xmppload is a bounded load generator of real XMPP client
// sessions: pairs of senders and receivers over STARTTLS with SASL PLAIN
// exchanging labelled (XEP-0258) 1:1 chat messages, at most a window of
// messages in flight per pair. It also starts Prosody 0.12 with the same
// accounts, so that a benchmark measures a baseline in the same run. The
// XMPP gateway's package benchmark and bench/xmpp both use it.
package xmppload

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"crypto/tls"
)

// Config is one load run. Accounts are sN and rN (N from 0 to Pairs-1) at
// Domain, all with Password.
type Config struct {
	Addr, Domain string
	TLS          *tls.Config
	Password     string
	Pairs        int // sender/receiver pairs (default 20)
	Total        int // messages over all pairs (default 20000)
	Window       int // messages in flight per pair (default 100)
	// FullJID addresses receivers by full JID (Prosody routes a bare-JID
	// chat message to the resource with the highest priority; full JIDs
	// avoid that lookup counting against it).
	FullJID bool
	// Label is the XML of the XEP-0258 <label> content, sent unescaped.
	Label []byte
	// Progress, when set, gets a line about every second.
	Progress io.Writer
}

// Result is one run's outcome.
type Result struct {
	Msgs    int
	Elapsed time.Duration
}

// Rate is messages received per second.
func (r Result) Rate() float64 { return float64(r.Msgs) / r.Elapsed.Seconds() }

// Body is the chat body (about 270 bytes; the stanza with a label is
// about 650 to 1,000 bytes).
var Body = strings.Repeat("Convoy departs 0600 from the northern gate. ", 6)

// Stanza is the labelled chat message sent to to.
func Stanza(to string, label []byte) []byte {
	return []byte("<message type='chat' to='" + html.EscapeString(to) + "' id='x'><body>" + Body +
		"</body><securitylabel xmlns='urn:xmpp:sec-label:0'><label>" + string(label) + "</label></securitylabel></message>")
}

// Run connects the sessions, then sends Total messages and times from the
// first send until every message is received. A receiver that gets an
// error stanza, or nothing for 60 s, fails the run.
func Run(ctx context.Context, c Config) (Result, error) {
	if c.Pairs <= 0 {
		c.Pairs = 20
	}
	if c.Total <= 0 {
		c.Total = 20000
	}
	if c.Window <= 0 {
		c.Window = 100
	}
	senders := make([]*client, c.Pairs)
	receivers := make([]*client, c.Pairs)
	defer func() {
		for i := range c.Pairs {
			if senders[i] != nil {
				senders[i].close()
			}
			if receivers[i] != nil {
				receivers[i].close()
			}
		}
	}()
	for i := range c.Pairs {
		var err error
		if receivers[i], err = dial(c.Addr, c.Domain, fmt.Sprintf("r%d", i), c.Password, c.TLS); err != nil {
			return Result{}, err
		}
		if senders[i], err = dial(c.Addr, c.Domain, fmt.Sprintf("s%d", i), c.Password, c.TLS); err != nil {
			return Result{}, err
		}
	}
	per := c.Total / c.Pairs
	var wg sync.WaitGroup
	var received atomic.Int64
	errs := make(chan error, 2*c.Pairs)
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		for i := range c.Pairs {
			senders[i].close()
			receivers[i].close()
		}
	})
	defer stop()
	start := time.Now()
	if c.Progress != nil {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					n := received.Load()
					fmt.Fprintf(c.Progress, "  %s: %d/%d received, %.0f msg/s\n", c.Domain, n, per*c.Pairs, float64(n)/time.Since(start).Seconds())
				}
			}
		}()
	}
	for i := range c.Pairs {
		to := fmt.Sprintf("r%d@%s", i, c.Domain)
		if c.FullJID {
			to = receivers[i].jid
		}
		st := Stanza(to, c.Label)
		credit := make(chan struct{}, c.Window)
		quit := make(chan struct{})
		abort := sync.OnceFunc(func() { close(quit); senders[i].close(); receivers[i].close() })
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range per {
				select {
				case credit <- struct{}{}:
				case <-quit:
					return
				}
				if err := senders[i].send(st); err != nil {
					errs <- fmt.Errorf("sender %d: %w", i, err)
					abort()
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for n := 0; n < per; {
				e, raw, err := receivers[i].next("message", 60*time.Second)
				if err != nil {
					errs <- fmt.Errorf("receiver %d after %d: %w", i, n, err)
					abort()
					return
				}
				if e.AttrValue("type") == "error" {
					errs <- fmt.Errorf("receiver %d got an error stanza: %.300s", i, raw)
					abort()
					return
				}
				if e.Child("", "body") == nil {
					continue
				}
				n++
				received.Add(1)
				<-credit
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(done)
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	select {
	case err := <-errs:
		return Result{}, err
	default:
	}
	if n := received.Load(); n != int64(per*c.Pairs) {
		return Result{}, errors.New("lost messages")
	}
	return Result{Msgs: per * c.Pairs, Elapsed: el}, nil
}
