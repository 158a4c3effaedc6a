package node

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liaison/internal/api"
)

// metrics are the node's Prometheus metrics. Queue depths and link states
// are read from the node when scraped, so they are never stale.
type metrics struct {
	n           *Node
	accepted    prometheus.Counter
	decisions   *prometheus.CounterVec
	delivered   *prometheus.CounterVec
	received    *prometheus.CounterVec
	auditErrors prometheus.Counter
	handovers   *prometheus.CounterVec
	queueDesc   *prometheus.Desc
	linkDesc    *prometheus.Desc
	commitsDesc *prometheus.Desc
	writesDesc  *prometheus.Desc
	commitTime  *prometheus.Desc
}

func newMetrics(n *Node) *metrics {
	return &metrics{
		n: n,
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liaison_messages_accepted_total", Help: "Messages accepted from local senders."}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liaison_guard_decisions_total", Help: "Guard decisions by recipient, state and code."}, []string{"peer", "state", "code"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liaison_deliveries_total", Help: "Outgoing messages acknowledged or refused by partners."}, []string{"peer", "outcome"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liaison_received_total", Help: "Messages from partners accepted or refused."}, []string{"peer", "outcome"}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liaison_audit_append_errors_total", Help: "Audit entries that could not be appended."}),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liaison_flash_handovers_total", Help: "FLASH messages handed to a partner's link as they were accepted (handed), or released to the link's own leases because the link went down meanwhile (released)."}, []string{"peer", "outcome"}),
		queueDesc: prometheus.NewDesc("liaison_queue_depth", "Messages queued for a partner, by precedence.", []string{"peer", "precedence"}, nil),
		linkDesc:  prometheus.NewDesc("liaison_link_up", "1 if the link to a partner is up.", []string{"peer", "state"}, nil),
		commitsDesc: prometheus.NewDesc("liaison_store_commits_total",
			"Store commits: durable (flushed before they returned) or relaxed (bookkeeping that recovery redoes, flushed by a later durable commit).", []string{"sync"}, nil),
		writesDesc: prometheus.NewDesc("liaison_store_commit_writes_total",
			"Write requests the store's commits held; divided by the commits, how many share each flush (group commit).", nil, nil),
		commitTime: prometheus.NewDesc("liaison_store_commit_seconds_total",
			"Time the store spent in commits: writing its log and waiting for the disk.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.accepted.Describe(ch)
	m.decisions.Describe(ch)
	m.delivered.Describe(ch)
	m.received.Describe(ch)
	m.auditErrors.Describe(ch)
	m.handovers.Describe(ch)
	ch <- m.queueDesc
	ch <- m.linkDesc
	ch <- m.commitsDesc
	ch <- m.writesDesc
	ch <- m.commitTime
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.accepted.Collect(ch)
	m.decisions.Collect(ch)
	m.delivered.Collect(ch)
	m.received.Collect(ch)
	m.auditErrors.Collect(ch)
	m.handovers.Collect(ch)
	if c := m.n.commits; c != nil {
		st := c.CommitStats()
		ch <- prometheus.MustNewConstMetric(m.commitsDesc, prometheus.CounterValue, float64(st.Durable), "durable")
		ch <- prometheus.MustNewConstMetric(m.commitsDesc, prometheus.CounterValue, float64(st.Relaxed), "relaxed")
		ch <- prometheus.MustNewConstMetric(m.writesDesc, prometheus.CounterValue, float64(st.Writes))
		ch <- prometheus.MustNewConstMetric(m.commitTime, prometheus.CounterValue, st.CommitTime.Seconds())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if peers, err := m.n.store.Peers(ctx); err == nil {
		for _, p := range peers {
			q, err := m.n.store.QueueDepth(ctx, p)
			if err != nil {
				continue
			}
			for prec, k := range q {
				ch <- prometheus.MustNewConstMetric(m.queueDesc, prometheus.GaugeValue, float64(k), p, prec.String())
			}
		}
	}
	m.n.mu.RLock()
	defer m.n.mu.RUnlock()
	for p, l := range m.n.links {
		v := 0.0
		if l.State == "up" {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(m.linkDesc, prometheus.GaugeValue, v, p, l.State)
	}
}

// rates counts accepted and denied messages per minute for the last hour,
// by the node's clock, for the console's charts.
type rates struct {
	mu      sync.Mutex // guards buckets
	buckets map[int64][2]int
}

func newRates() *rates { return &rates{buckets: map[int64][2]int{}} }

func (r *rates) add(at time.Time, accepted, denied int) {
	m := at.Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[m]
	b[0] += accepted
	b[1] += denied
	r.buckets[m] = b
	for k := range r.buckets {
		if k < m-60 {
			delete(r.buckets, k)
		}
	}
}

// last returns the 60 minutes ending at now, oldest first.
func (r *rates) last(now time.Time) []api.Rate {
	m := now.Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]api.Rate, 0, 60)
	any := false
	for k := m - 59; k <= m; k++ {
		b := r.buckets[k]
		any = any || b[0] > 0 || b[1] > 0
		out = append(out, api.Rate{Minute: time.Unix(k*60, 0).UTC(), Accepted: b[0], Denied: b[1]})
	}
	if !any {
		return nil
	}
	return out
}
