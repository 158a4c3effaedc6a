package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"liaison/internal/message"
)

// route is one API endpoint. The table below is the API: docs/API.md lists
// exactly these patterns (a test checks it).
type route struct {
	pattern string
	roles   []Role // empty: no authentication (health only)
	maxBody int64  // 0: the route reads no body
	handle  func(*Server, http.ResponseWriter, *http.Request) error
}

const (
	maxAgreementBody = 1 << 20
	// A message body travels base64 in JSON: 4/3 of the largest body plus
	// room for the label and fields.
	maxMessageBody = message.MaxBody/3*4 + 4 + 2*message.MaxLabel
	// A batch is for many small messages: a large one goes on its own.
	maxBatchBody = 16 << 20
	// MaxBatch is how many messages one POST /v1/messages/batch may carry.
	MaxBatch = 256
)

var routes = []route{
	{pattern: "GET /healthz", handle: (*Server).healthz},
	{pattern: "GET /readyz", handle: (*Server).readyz},
	{pattern: "POST /v1/messages", roles: []Role{RoleSender}, maxBody: maxMessageBody, handle: (*Server).postMessage},
	{pattern: "POST /v1/messages/batch", roles: []Role{RoleSender}, maxBody: maxBatchBody, handle: (*Server).postBatch},
	{pattern: "GET /v1/messages/{id}", roles: []Role{RoleSender, RoleAuditor, RoleReviewer}, handle: (*Server).getMessage},
	{pattern: "GET /v1/channels/{channel}/messages", roles: []Role{RoleSender, RoleAuditor}, handle: (*Server).history},
	{pattern: "GET /v1/channels/{channel}/stream", roles: []Role{RoleSender, RoleAuditor}, handle: (*Server).stream},
	{pattern: "GET /v1/channels/{channel}/labels", roles: []Role{RoleSender}, handle: (*Server).catalog},
	{pattern: "GET /v1/agreements", roles: []Role{RoleSender, RoleAuditor, RoleReviewer}, handle: (*Server).agreements},
	{pattern: "POST /v1/agreements", roles: []Role{RoleOperator}, maxBody: maxAgreementBody, handle: (*Server).installAgreement},
	{pattern: "GET /v1/may", roles: []Role{RoleSender, RoleAuditor, RoleReviewer}, handle: (*Server).may},
	{pattern: "GET /v1/quarantine", roles: []Role{RoleReviewer, RoleAuditor}, handle: (*Server).quarantine},
	{pattern: "POST /v1/quarantine/{id}/{recipient}/release", roles: []Role{RoleReviewer}, handle: (*Server).release},
	{pattern: "POST /v1/quarantine/{id}/{recipient}/deny", roles: []Role{RoleReviewer}, handle: (*Server).deny},
	{pattern: "POST /v1/keys/rotate", roles: []Role{RoleOperator}, handle: (*Server).rotateKey},
	{pattern: "GET /v1/status", roles: []Role{RoleSender, RoleAuditor, RoleReviewer}, handle: (*Server).status},
	{pattern: "GET /v1/audit/reconcile", roles: []Role{RoleAuditor}, handle: (*Server).reconcileAudit},
}

// Patterns returns every route pattern the API serves (for docs checks).
func Patterns() []string {
	ps := []string{"GET /metrics"}
	for _, r := range routes {
		ps = append(ps, r.pattern)
	}
	return ps
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Backend.Ready(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, "not-ready", err.Error())
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// PostMessage is the body of POST /v1/messages.
type PostMessage struct {
	// ID is optional: a client that retries after a lost answer sends the
	// same UUIDv7 and the node accepts the message once.
	ID         string `json:"id,omitempty"`
	Channel    string `json:"channel"`
	Precedence string `json:"precedence"`
	// Label is the originator's STANAG 4774 label XML.
	Label       string `json:"label"`
	ContentType string `json:"content_type,omitempty"`
	// Exactly one of Body (UTF-8 text) and BodyBase64 is given.
	Body       *string `json:"body,omitempty"`
	BodyBase64 *string `json:"body_base64,omitempty"`
	TraceID    string  `json:"trace_id,omitempty"`
}

// Message builds the core message from a post by principal p of party.
func (pm *PostMessage) Message(party string, p *Principal, now time.Time) (*message.Message, error) {
	bad := func(format string, args ...any) error {
		return Errorf(http.StatusBadRequest, "bad-message", format, args...)
	}
	m := &message.Message{Channel: pm.Channel, Origin: party, Created: now.UTC(), TraceID: pm.TraceID}
	if p != nil {
		m.Originator = p.Name
	}
	if pm.ID == "" {
		m.ID = message.NewID()
	} else {
		id, err := message.ParseID(pm.ID)
		if err != nil {
			return nil, bad("%v", err)
		}
		m.ID = id
	}
	prec, err := message.ParsePrecedence(pm.Precedence)
	if err != nil {
		return nil, bad("%v", err)
	}
	m.Precedence = prec
	if strings.TrimSpace(pm.Label) == "" {
		return nil, Errorf(http.StatusBadRequest, "no-label", "label is required: every message carries a STANAG 4774 label")
	}
	m.Label = []byte(pm.Label)
	m.ContentType = pm.ContentType
	if m.ContentType == "" {
		m.ContentType = "text/plain; charset=utf-8"
	}
	switch {
	case pm.Body != nil && pm.BodyBase64 != nil:
		return nil, bad("give body or body_base64, not both")
	case pm.Body != nil:
		m.Body = []byte(*pm.Body)
	case pm.BodyBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*pm.BodyBase64)
		if err != nil {
			return nil, bad("body_base64: %v", err)
		}
		m.Body = b
	default:
		return nil, bad("body or body_base64 is required")
	}
	if err := m.Validate(); err != nil {
		return nil, bad("%v", err)
	}
	return m, nil
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) error {
	var pm PostMessage
	if err := decodeJSON(r, &pm); err != nil {
		return err
	}
	r, drop := s.announce(r)
	defer drop()
	m, err := pm.Message(s.cfg.Backend.Party(), PrincipalFrom(r.Context()), time.Now())
	if err != nil {
		return err
	}
	rc, err := s.cfg.Backend.Submit(r.Context(), m)
	if err != nil {
		return err
	}
	writeJSON(w, receiptStatus(rc), rc)
	return nil
}

// announce tells a backend that is an Announcer that a message is on its
// way with r's context. Handlers call it once the request's body is read:
// from there to the store there is only checking, no waiting on the
// network, so a client that sends its body slowly cannot hold commits.
func (s *Server) announce(r *http.Request) (_ *http.Request, drop func()) {
	a, ok := s.cfg.Backend.(Announcer)
	if !ok {
		return r, func() {}
	}
	ctx, drop := a.Announce(r.Context())
	return r.WithContext(ctx), drop
}

// receiptStatus is the status a receipt is answered with: 201 for a new
// message, 200 for a duplicate.
func receiptStatus(rc *Receipt) int {
	if rc.Duplicate {
		return http.StatusOK
	}
	return http.StatusCreated
}

// PostBatch is the body of POST /v1/messages/batch.
type PostBatch struct {
	Messages []PostMessage `json:"messages"`
}

// BatchResult is one message's outcome in the answer to POST
// /v1/messages/batch: the status and receipt that POST /v1/messages would
// have answered for it, or its error.
type BatchResult struct {
	Status  int        `json:"status"`
	Receipt *Receipt   `json:"receipt,omitempty"`
	Error   *ErrorBody `json:"error,omitempty"`
}

// ErrorBody is the "error" member of an error answer.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// BatchAnswer is the answer to POST /v1/messages/batch: one result per
// message, in order, and how many were accepted (new or duplicate) and
// refused.
type BatchAnswer struct {
	Results  []BatchResult `json:"results"`
	Accepted int           `json:"accepted"`
	Refused  int           `json:"refused"`
}

// postBatch submits up to MaxBatch messages in one request, for senders
// that feed many small messages: each message is checked, guarded and
// answered as POST /v1/messages would, and those that pass are stored in
// one transaction. A refused message does not stop the others.
func (s *Server) postBatch(w http.ResponseWriter, r *http.Request) error {
	var pb PostBatch
	if err := decodeJSON(r, &pb); err != nil {
		return err
	}
	r, drop := s.announce(r)
	defer drop()
	if n := len(pb.Messages); n == 0 || n > MaxBatch {
		return Errorf(http.StatusBadRequest, "bad-batch", "a batch carries 1-%d messages, got %d", MaxBatch, n)
	}
	now := time.Now()
	p := PrincipalFrom(r.Context())
	ans := BatchAnswer{Results: make([]BatchResult, len(pb.Messages))}
	ms := make([]*message.Message, 0, len(pb.Messages))
	idx := make([]int, 0, len(pb.Messages))
	for i := range pb.Messages {
		m, err := pb.Messages[i].Message(s.cfg.Backend.Party(), p, now)
		if err != nil {
			ans.Results[i] = s.batchError(r, err)
			continue
		}
		ms = append(ms, m)
		idx = append(idx, i)
	}
	if len(ms) > 0 {
		for k, res := range s.cfg.Backend.SubmitBatch(r.Context(), ms) {
			i := idx[k]
			if res.Err != nil {
				ans.Results[i] = s.batchError(r, res.Err)
				continue
			}
			ans.Results[i] = BatchResult{Status: receiptStatus(res.Receipt), Receipt: res.Receipt}
		}
	}
	for _, res := range ans.Results {
		if res.Error == nil {
			ans.Accepted++
		} else {
			ans.Refused++
		}
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// batchError is the result of a message of a batch that failed with err.
func (s *Server) batchError(r *http.Request, err error) BatchResult {
	st, code, msg := s.problem(r, err)
	return BatchResult{Status: st, Error: &ErrorBody{Code: code, Message: msg}}
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	st, err := s.cfg.Backend.MessageStatus(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) error {
	after, err := queryUint(r, "after", 0)
	if err != nil {
		return err
	}
	limit, err := queryUint(r, "limit", 100)
	if err != nil {
		return err
	}
	if limit == 0 || limit > 1000 {
		return Errorf(http.StatusBadRequest, "bad-query", "limit must be 1-1000, got %d", limit)
	}
	es, err := s.cfg.Backend.History(r.Context(), r.PathValue("channel"), after, int(limit))
	if err != nil {
		return err
	}
	next := after
	if len(es) > 0 {
		next = es[len(es)-1].Seq
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": es, "next": next})
	return nil
}

// stream serves a channel as server-sent events: one "message" event per
// entry, its id the sequence number, so a client resumes with
// Last-Event-ID.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) error {
	after, err := queryUint(r, "after", 0)
	if err != nil {
		return err
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, perr := parseUint(v); perr == nil {
			after = n
		}
	}
	ch, err := s.cfg.Backend.Subscribe(r.Context(), r.PathValue("channel"), after)
	if err != nil {
		return err
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": liaison stream\n\n")
	if flusher != nil {
		flusher.Flush()
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
		case e, ok := <-ch:
			if !ok {
				return nil
			}
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: message\ndata: %s\n\n", e.Seq, b); err != nil {
				return nil
			}
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func parseUint(s string) (uint64, error) {
	var n uint64
	_, err := fmt.Sscan(s, &n)
	return n, err
}

func (s *Server) agreements(w http.ResponseWriter, r *http.Request) error {
	as, err := s.cfg.Backend.Agreements(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"agreements": as})
	return nil
}

func (s *Server) installAgreement(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return Errorf(http.StatusBadRequest, "no-agreement", "the request body must be the signed agreement YAML")
	}
	a, err := s.cfg.Backend.InstallAgreement(r.Context(), body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a)
	return nil
}

func (s *Server) may(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from, to, ch := q.Get("from"), q.Get("to"), q.Get("channel")
	if from == "" || to == "" || ch == "" {
		return Errorf(http.StatusBadRequest, "bad-query", "from, to and channel are required")
	}
	writeJSON(w, http.StatusOK, s.cfg.Backend.May(r.Context(), from, to, ch))
	return nil
}

func (s *Server) quarantine(w http.ResponseWriter, r *http.Request) error {
	hs, err := s.cfg.Backend.Quarantine(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"held": hs})
	return nil
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) error { return s.review(w, r, true) }
func (s *Server) deny(w http.ResponseWriter, r *http.Request) error    { return s.review(w, r, false) }

func (s *Server) review(w http.ResponseWriter, r *http.Request, approve bool) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	p := PrincipalFrom(r.Context())
	res, err := s.cfg.Backend.Review(r.Context(), id, r.PathValue("recipient"), p.Name, approve)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	st, err := s.cfg.Backend.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) catalog(w http.ResponseWriter, r *http.Request) error {
	cat, err := s.cfg.Backend.Catalog(r.Context(), r.PathValue("channel"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"labels": cat})
	return nil
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request) error {
	epoch, err := s.cfg.Backend.RotateKey(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"epoch": epoch})
	return nil
}

func (s *Server) reconcileAudit(w http.ResponseWriter, r *http.Request) error {
	peer := r.URL.Query().Get("peer")
	if peer == "" {
		return Errorf(http.StatusBadRequest, "bad-query", "peer is required, e.g. ?peer=XBB")
	}
	rec, ok := s.cfg.Backend.(AuditReconciler)
	if !ok {
		return Errorf(http.StatusNotImplemented, "not-implemented", "this node cannot reconcile audit logs")
	}
	d, err := rec.ReconcileAudit(r.Context(), peer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}
