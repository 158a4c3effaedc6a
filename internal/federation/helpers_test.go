package federation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"liaison/internal/message"
)

// testCA is a throwaway certificate authority for one party.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " node CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a node certificate naming party; notAfter zero means valid.
func (ca *testCA) leaf(t testing.TB, party string, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if notAfter.IsZero() {
		notAfter = time.Now().Add(24 * time.Hour)
	}
	u, _ := url.Parse("liaison:party:" + party)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: party + " node"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter,
		URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func partyOf(c *x509.Certificate) (string, error) {
	for _, u := range c.URIs {
		if u.Scheme == "liaison" && strings.HasPrefix(u.Opaque, "party:") {
			return strings.TrimPrefix(u.Opaque, "party:"), nil
		}
	}
	return "", errors.New("no liaison:party URI")
}

// fakeOutbox is an in-memory queue per peer that orders like the store:
// precedence, then sequence; leased items are skipped. Each precedence is
// a FIFO with lazy deletion, so a 100,000-message backlog stays cheap.
type fakeOutbox struct {
	mu       sync.Mutex
	q        map[string]*[4][]*fakeItem
	byID     map[message.ID]*fakeItem
	refused  map[message.ID]string
	acked    int
	ackCalls int
	notify   chan struct{}
	leaseErr error
	shared   [][2]int // given to the messages put from now on
	// hook, if set, runs at the start of every Lease, outside the lock.
	hook func(ctx context.Context, n int)
}

type fakeItem struct {
	Outgoing
	leased, gone bool
}

func newOutbox() *fakeOutbox {
	return &fakeOutbox{q: map[string]*[4][]*fakeItem{}, byID: map[message.ID]*fakeItem{}, refused: map[message.ID]string{}, notify: make(chan struct{}, 1)}
}

// putMsg queues a message whose wire bytes carry its own id.
func (o *fakeOutbox) putMsg(peer string, p message.Precedence, size int) message.ID {
	return o.putMsgWatch(peer, p, size, nil)
}

// putMsgWatch is putMsg calling watch with the id before it is queued.
func (o *fakeOutbox) putMsgWatch(peer string, p message.Precedence, size int, watch func(message.ID)) message.ID {
	id := message.NewID()
	if watch != nil {
		watch(id)
	}
	o.mu.Lock()
	o.add(peer, &fakeItem{Outgoing: Outgoing{ID: id, Precedence: p, Wire: testWire(id, size), Shared: o.shared}})
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
	return id
}

// add queues it for peer; o.mu is held.
func (o *fakeOutbox) add(peer string, it *fakeItem) {
	q := o.q[peer]
	if q == nil {
		q = new([4][]*fakeItem)
		o.q[peer] = q
	}
	q[it.Precedence] = append(q[it.Precedence], it)
	o.byID[it.ID] = it
}

func (o *fakeOutbox) Lease(ctx context.Context, peer string, n int) ([]Outgoing, error) {
	o.mu.Lock()
	hook := o.hook
	o.mu.Unlock()
	if hook != nil {
		hook(ctx, n)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.leaseErr != nil {
		return nil, o.leaseErr
	}
	var out []Outgoing
	q := o.q[peer]
	if q == nil {
		return nil, nil
	}
	for p := range q {
		for len(q[p]) > 0 && q[p][0].gone {
			q[p] = q[p][1:]
		}
		for _, it := range q[p] {
			if len(out) == n {
				return out, nil
			}
			if !it.leased && !it.gone {
				it.leased = true
				out = append(out, it.Outgoing)
			}
		}
	}
	return out, nil
}

func (o *fakeOutbox) remove(ids ...message.ID) {
	for _, id := range ids {
		if it := o.byID[id]; it != nil {
			it.gone = true
			delete(o.byID, id)
		}
	}
}

func (o *fakeOutbox) Ack(ctx context.Context, peer string, ids ...message.ID) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.acked += len(ids)
	o.ackCalls++
	o.remove(ids...)
	return nil
}

func (o *fakeOutbox) Release(ctx context.Context, peer string, ids ...message.ID) error {
	o.mu.Lock()
	for _, id := range ids {
		if it := o.byID[id]; it != nil {
			it.leased = false
		}
	}
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
	return nil
}

func (o *fakeOutbox) Refused(ctx context.Context, peer string, id message.ID, code, reason string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused[id] = code + ": " + reason
	o.remove(id)
	return nil
}

func (o *fakeOutbox) Notify() <-chan struct{} { return o.notify }

func (o *fakeOutbox) len(peer string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.byID) // tests use one peer per outbox
}

// fakeInbox de-duplicates like the store and records arrival order.
type fakeInbox struct {
	mu      sync.Mutex
	seen    map[message.ID]bool
	order   []message.ID
	calls   int // messages stored or found duplicate
	batches int // AcceptBatch calls
	refuse  func(wire []byte) error
	gate    chan struct{}    // when set, Accept waits for a token
	onNew   func(message.ID) // called for each new message, under the lock
}

func newInbox() *fakeInbox {
	return &fakeInbox{seen: map[message.ID]bool{}}
}

func (in *fakeInbox) AcceptBatch(ctx context.Context, from string, wires [][]byte) []error {
	in.mu.Lock()
	in.batches++
	in.mu.Unlock()
	errs := make([]error, len(wires))
	for i, w := range wires {
		errs[i] = in.accept(ctx, w)
	}
	return errs
}

func (in *fakeInbox) accept(ctx context.Context, wire []byte) error {
	if in.gate != nil {
		select {
		case <-in.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if in.refuse != nil {
		if err := in.refuse(wire); err != nil {
			return err
		}
	}
	id, err := wireID(wire)
	if err != nil {
		return &RefusalError{Code: "malformed", Reason: err.Error()}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.calls++
	if !in.seen[id] {
		in.seen[id] = true
		in.order = append(in.order, id)
		if in.onNew != nil {
			in.onNew(id)
		}
	}
	return nil
}

// orderCopy is the ids stored so far, in order.
func (in *fakeInbox) orderCopy() []message.ID {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.order)
}

func (in *fakeInbox) batchCount() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.batches
}

func (in *fakeInbox) unique() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.order)
}

// testWire makes fake "sealed" bytes: the id, then filler of size n.
func testWire(id message.ID, n int) []byte {
	b := make([]byte, 16+n)
	copy(b, id[:])
	for i := 16; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

func wireID(b []byte) (message.ID, error) {
	var id message.ID
	if len(b) < 16 {
		return id, fmt.Errorf("wire of %d bytes", len(b))
	}
	copy(id[:], b)
	for i := 16; i < len(b); i++ {
		if b[i] != byte(i) {
			return id, fmt.Errorf("corrupt byte at %d", i)
		}
	}
	return id, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
