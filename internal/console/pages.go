package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"liaison/internal/api"
	"liaison/internal/message"
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 MST")
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02")
	},
	"lower": strings.ToLower,
	// slug makes a status such as "in force" a CSS class name.
	"slug":     func(s string) string { return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), " ", "-") },
	"in":       func(list []string, s string) bool { return slices.Contains(list, s) },
	"join":     strings.Join,
	"short":    func(s string) string { return shorten(s, 16) },
	"has":      func(roles []api.Role, r string) bool { return (&api.Principal{Roles: roles}).Has(api.Role(r)) },
	"chart":    chart,
	"timeline": timeline,
	"prec":     func() []string { return []string{"FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"} },
	"string":   func(b []byte) string { return string(b) },
	"depth":    func(q map[string]int, p string) int { return q[p] },
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// chart draws the last hour's accepted and denied counts as a small inline
// SVG bar chart, with a text alternative.
func chart(rates []api.Rate) template.HTML {
	const w, h = 360, 60
	if len(rates) == 0 {
		return template.HTML(`<p class="muted">No traffic in the last hour.</p>`)
	}
	max, acc, den := 1, 0, 0
	for _, r := range rates {
		if r.Accepted+r.Denied > max {
			max = r.Accepted + r.Denied
		}
		acc += r.Accepted
		den += r.Denied
	}
	bw := float64(w) / float64(len(rates))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="Last hour: %d accepted, %d denied">`, w, h, acc, den)
	for i, r := range rates {
		x := float64(i) * bw
		ah := float64(r.Accepted) / float64(max) * h
		dh := float64(r.Denied) / float64(max) * h
		fmt.Fprintf(&b, `<rect class="acc" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x, h-ah-dh, bw*0.9, ah)
		fmt.Fprintf(&b, `<rect class="den" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x, h-dh, bw*0.9, dh)
	}
	b.WriteString(`</svg>`)
	fmt.Fprintf(&b, `<p class="muted">Last hour: %d accepted, %d denied.</p>`, acc, den)
	return template.HTML(b.String())
}

// timeline places now on an agreement's term as a percentage.
func timeline(a api.Agreement, now time.Time) int {
	if a.Effective.IsZero() || a.Expiry.IsZero() || !a.Expiry.After(a.Effective) {
		return 0
	}
	// In float: 100 times a term of years in nanoseconds overflows int64.
	p := int(100 * float64(now.Sub(a.Effective)) / float64(a.Expiry.Sub(a.Effective)))
	return min(max(p, 0), 100)
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	st, err := c.cfg.Backend.Status(r.Context())
	if err != nil {
		code, msg := apiError(err)
		c.errorPage(w, r, s, code, msg)
		return
	}
	c.render(w, r, s, "overview", http.StatusOK, map[string]any{"Status": st})
}

func (c *Console) agreements(w http.ResponseWriter, r *http.Request, s *session) {
	as, err := c.cfg.Backend.Agreements(r.Context())
	if err != nil {
		code, msg := apiError(err)
		c.errorPage(w, r, s, code, msg)
		return
	}
	data := map[string]any{"Agreements": as, "Now": time.Now()}
	if st, err := c.cfg.Backend.Status(r.Context()); err == nil {
		data["Now"] = st.Time
	}
	q := r.URL.Query()
	from, to, ch := q.Get("from"), q.Get("to"), q.Get("channel")
	// The form keeps what was asked; From starts as this node's party.
	ask := map[string]string{"From": from, "To": to, "Channel": ch}
	if from == "" {
		ask["From"] = c.cfg.Backend.Party()
	}
	data["Ask"] = ask
	if from != "" && to != "" && ch != "" {
		p := c.cfg.Backend.May(r.Context(), strings.ToUpper(from), strings.ToUpper(to), ch)
		data["May"] = map[string]any{"From": from, "To": to, "Channel": ch, "Permit": p}
	}
	c.render(w, r, s, "agreements", http.StatusOK, data)
}

func (c *Console) installAgreement(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.need(w, r, s, api.RoleOperator) {
		return
	}
	f, _, err := r.FormFile("agreement")
	if err != nil {
		c.errorPage(w, r, s, http.StatusBadRequest, "choose the signed agreement file (YAML) to upload")
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		c.errorPage(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	a, err := c.cfg.Backend.InstallAgreement(r.Context(), data)
	if err != nil {
		code, msg := apiError(err)
		c.errorPage(w, r, s, code, "The agreement was refused: "+msg)
		return
	}
	redirect(w, r, "/console/agreements", fmt.Sprintf("Installed %s version %d: %s", a.ID, a.Version, a.Status))
}

func redirect(w http.ResponseWriter, r *http.Request, path, flash string) {
	http.Redirect(w, r, path+"?flash="+url.QueryEscape(flash), http.StatusSeeOther)
}

func (c *Console) channel(w http.ResponseWriter, r *http.Request, s *session) {
	ch := r.PathValue("channel")
	es, err := c.cfg.Backend.History(r.Context(), ch, 0, 1000)
	if err != nil {
		code, msg := apiError(err)
		c.errorPage(w, r, s, code, msg)
		return
	}
	cat, err := c.cfg.Backend.Catalog(r.Context(), ch)
	if err != nil {
		code, msg := apiError(err)
		c.errorPage(w, r, s, code, msg)
		return
	}
	var last uint64
	if len(es) > 0 {
		last = es[len(es)-1].Seq
	}
	// newest first on the page; the live stream prepends.
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	c.render(w, r, s, "channel", http.StatusOK, map[string]any{"Channel": ch, "Entries": es, "Catalog": cat, "Last": last})
}

func (c *Console) send(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.need(w, r, s, api.RoleSender) {
		return
	}
	ch := r.PathValue("channel")
	cat, err := c.cfg.Backend.Catalog(r.Context(), ch)
	if err != nil {
		code, msg := apiError(err)
		c.errorPage(w, r, s, code, msg)
		return
	}
	// The label is chosen from the catalogue by index, never taken as
	// free text from the form.
	var choice *api.LabelChoice
	for i := range cat {
		if fmt.Sprint(i) == r.FormValue("label") {
			choice = &cat[i]
		}
	}
	if choice == nil {
		c.errorPage(w, r, s, http.StatusBadRequest, "choose a label from the catalogue")
		return
	}
	body := r.FormValue("body")
	pm := api.PostMessage{Channel: ch, Precedence: r.FormValue("precedence"), Label: choice.Label, Body: &body}
	m, err := pm.Message(c.cfg.Backend.Party(), s.principal, c.cfg.Now())
	if err != nil {
		code, msg := apiError(err)
		c.errorPage(w, r, s, code, msg)
		return
	}
	rc, err := c.cfg.Backend.Submit(r.Context(), m)
	if err != nil {
		code, msg := apiError(err)
		c.errorPage(w, r, s, code, "Not sent: "+msg)
		return
	}
	var parts []string
	for _, rp := range rc.Recipients {
		part := rp.Party + ": " + rp.State
		if rp.State == "denied" || rp.State == "quarantined" {
			part += " (" + rp.Reason + ")"
		}
		parts = append(parts, part)
	}
	redirect(w, r, "/console/channels/"+url.PathEscape(ch), fmt.Sprintf("Sent %s. %s", rc.ID, strings.Join(parts, "; ")))
}

// events streams a channel to the page as server-sent events, with the
// session cookie as authentication.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *session) {
	var after uint64
	fmt.Sscan(r.URL.Query().Get("after"), &after)
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		fmt.Sscan(v, &after)
	}
	ch, err := c.cfg.Backend.Subscribe(r.Context(), r.PathValue("channel"), after)
	if err != nil {
		code, msg := apiError(err)
		http.Error(w, msg, code)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			io.WriteString(w, ": keep-alive\n\n")
		case e, ok := <-ch:
			if !ok {
				return
			}
			b, _ := json.Marshal(view(e))
			fmt.Fprintf(w, "id: %d\nevent: message\ndata: %s\n\n", e.Seq, b)
		}
		flush()
	}
}

// entryView is what the page's script renders for a live message.
type entryView struct {
	Seq        uint64          `json:"seq"`
	ID         string          `json:"id"`
	Origin     string          `json:"origin"`
	Originator string          `json:"originator"`
	Precedence string          `json:"precedence"`
	Created    string          `json:"created"`
	Marking    string          `json:"marking"`
	Colour     string          `json:"colour"`
	Body       string          `json:"body"`
	Recipients []api.Recipient `json:"recipients"`
}

func view(e api.Entry) entryView {
	m := e.Message
	body := string(m.Body)
	if !strings.HasPrefix(m.ContentType, "text/") {
		body = fmt.Sprintf("(%s, %d bytes)", m.ContentType, len(m.Body))
	}
	return entryView{Seq: e.Seq, ID: m.ID.String(), Origin: m.Origin, Originator: m.Originator, Precedence: m.Precedence.String(),
		Created: m.Created.UTC().Format("2006-01-02 15:04:05Z"), Marking: e.Marking, Colour: e.Colour, Body: shorten(body, 2000), Recipients: e.Recipients}
}

func (c *Console) quarantine(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.need(w, r, s, api.RoleReviewer, api.RoleAuditor) {
		return
	}
	hs, err := c.cfg.Backend.Quarantine(r.Context())
	if err != nil {
		code, msg := apiError(err)
		c.errorPage(w, r, s, code, msg)
		return
	}
	c.render(w, r, s, "quarantine", http.StatusOK, map[string]any{"Held": hs, "Me": s.principal.Name})
}

func (c *Console) review(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.need(w, r, s, api.RoleReviewer) {
		return
	}
	id, err := message.ParseID(r.PathValue("id"))
	if err != nil {
		c.errorPage(w, r, s, http.StatusBadRequest, err.Error())
		return
	}
	action := r.PathValue("action")
	if action != "release" && action != "deny" {
		c.errorPage(w, r, s, http.StatusBadRequest, fmt.Sprintf("unknown review action %q", action))
		return
	}
	res, err := c.cfg.Backend.Review(r.Context(), id, r.PathValue("recipient"), s.principal.Name, action == "release")
	if err != nil {
		code, msg := apiError(err)
		c.errorPage(w, r, s, code, "Review refused: "+msg)
		return
	}
	redirect(w, r, "/console/quarantine", fmt.Sprintf("%s to %s: %s (approved by %s)", id, r.PathValue("recipient"), res.Outcome, strings.Join(res.Approvals, ", ")))
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.need(w, r, s, api.RoleAuditor, api.RoleReviewer) {
		return
	}
	q := strings.TrimSpace(r.URL.Query().Get("message"))
	av, err := c.cfg.Backend.Audit(r.Context(), q, 200)
	if err != nil {
		code, msg := apiError(err)
		c.errorPage(w, r, s, code, msg)
		return
	}
	c.render(w, r, s, "audit", http.StatusOK, map[string]any{"Audit": av, "Query": q})
}
