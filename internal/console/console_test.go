package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"liaison/internal/api"
	"liaison/internal/api/apitest"
)

const (
	senderTok = "s3nder"
	rev1Tok   = "rev-one"
	rev2Tok   = "rev-two"
)

func newConsole(t *testing.T) (*httptest.Server, *apitest.Fake) {
	t.Helper()
	fb := apitest.NewFake("XAA")
	srv, err := api.New(api.Config{Backend: fb, Tokens: []api.Token{
		{Name: "sam", SHA256: api.HashToken(senderTok), Roles: []api.Role{api.RoleSender}},
		{Name: "rita", SHA256: api.HashToken(rev1Tok), Roles: []api.Role{api.RoleReviewer}},
		{Name: "raj", SHA256: api.HashToken(rev2Tok), Roles: []api.Role{api.RoleReviewer}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Backend: fb, Auth: srv})
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("/console/", c)
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(ts.Close)
	return ts, fb
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see where the console sends them.
func browser(t *testing.T, ts *httptest.Server) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := ts.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func get(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string, http.Header) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func login(t *testing.T, ts *httptest.Server, token string) (*http.Client, string) {
	t.Helper()
	c := browser(t, ts)
	code, _, h := post(t, c, ts.URL+"/console/login", url.Values{"token": {token}})
	if code != http.StatusSeeOther || h.Get("Location") != "/console/" {
		t.Fatalf("login = %d to %q, want 303 to /console/", code, h.Get("Location"))
	}
	code, body, _ := get(t, c, ts.URL+"/console/")
	m := csrfRE.FindStringSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("overview after login = %d, csrf found %v", code, m != nil)
	}
	return c, m[1]
}

func TestLoginRequired(t *testing.T) {
	ts, _ := newConsole(t)
	c := browser(t, ts)
	for _, p := range []string{"/console/", "/console/agreements", "/console/quarantine", "/console/audit", "/console/channels/x"} {
		code, _, h := get(t, c, ts.URL+p)
		if code != http.StatusSeeOther || h.Get("Location") != "/console/login" {
			t.Errorf("GET %s unauthenticated = %d to %q, want 303 to login", p, code, h.Get("Location"))
		}
	}
	code, body, _ := post(t, c, ts.URL+"/console/login", url.Values{"token": {"wrong"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "not valid") {
		t.Errorf("bad token login = %d, want 401 with an explanation", code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	ts, _ := newConsole(t)
	_, _, h := get(t, browser(t, ts), ts.URL+"/console/login")
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
}

func TestNoExternalRequests(t *testing.T) {
	re := regexp.MustCompile(`(?i)(src|href|url\()\s*=?\s*["']?(https?:)?//`)
	fs.WalkDir(assets, ".", func(p string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			return nil
		}
		b, _ := assets.ReadFile(p)
		if loc := re.FindIndex(b); loc != nil {
			t.Errorf("%s loads from outside the node: %q", p, b[loc[0]:loc[1]+20])
		}
		return nil
	})
}

func TestSendNeedsCSRF(t *testing.T) {
	ts, fb := newConsole(t)
	c, csrf := login(t, ts, senderTok)
	code, body, _ := get(t, c, ts.URL+"/console/channels/exercise")
	if code != 200 || !strings.Contains(body, "XAA CONFIDENTIAL") {
		t.Fatalf("channel page = %d; want the catalogue's marking in the label choice", code)
	}
	form := url.Values{"label": {"0"}, "precedence": {"FLASH"}, "body": {"contact at grid 123"}}
	if code, body, _ := post(t, c, ts.URL+"/console/channels/exercise/send", form); code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
		t.Errorf("send without CSRF = %d, want 403 naming CSRF", code)
	}
	if len(fb.Msgs) != 0 {
		t.Fatalf("a message was submitted without a CSRF token")
	}
	form.Set("csrf", csrf)
	code, _, h := post(t, c, ts.URL+"/console/channels/exercise/send", form)
	if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "flash=Sent") {
		t.Fatalf("send = %d to %q, want 303 with a Sent flash", code, h.Get("Location"))
	}
	if len(fb.Msgs) != 1 || string(fb.Msgs[0].Body) != "contact at grid 123" || fb.Msgs[0].Originator != "sam" {
		t.Fatalf("fake holds %+v, want one message from sam", fb.Msgs)
	}
	form.Set("label", "<x/>")
	if code, _, _ := post(t, c, ts.URL+"/console/channels/exercise/send", form); code != http.StatusBadRequest {
		t.Errorf("send with a free-text label = %d, want 400", code)
	}
}

func TestTwoPersonReview(t *testing.T) {
	ts, fb := newConsole(t)
	sender, csrf := login(t, ts, senderTok)
	post(t, sender, ts.URL+"/console/channels/exercise/send", url.Values{"csrf": {csrf}, "label": {"0"}, "precedence": {"ROUTINE"}, "body": {"x"}})
	if len(fb.Msgs) != 1 {
		t.Fatal("no message to review")
	}
	path := "/console/quarantine/" + fb.Msgs[0].ID.String() + "/XBB/release"

	if code, _, _ := post(t, sender, ts.URL+path, url.Values{"csrf": {csrf}}); code != http.StatusForbidden {
		t.Errorf("sender reviewing = %d, want 403", code)
	}
	r1, c1 := login(t, ts, rev1Tok)
	_, _, h := post(t, r1, ts.URL+path, url.Values{"csrf": {c1}})
	if !strings.Contains(h.Get("Location"), "pending") {
		t.Errorf("first approval went to %q, want pending", h.Get("Location"))
	}
	code, body, _ := post(t, r1, ts.URL+path, url.Values{"csrf": {c1}})
	if code != http.StatusConflict || !strings.Contains(body, "already approved") {
		t.Errorf("same reviewer again = %d, want 409 saying already approved", code)
	}
	r2, c2 := login(t, ts, rev2Tok)
	_, _, h = post(t, r2, ts.URL+path, url.Values{"csrf": {c2}})
	if !strings.Contains(h.Get("Location"), "released") {
		t.Errorf("second reviewer went to %q, want released", h.Get("Location"))
	}
}

func TestPagesRender(t *testing.T) {
	ts, _ := newConsole(t)
	c, _ := login(t, ts, rev1Tok)
	for _, p := range []string{"/console/", "/console/agreements?from=XAA&to=XBB&channel=exercise", "/console/quarantine", "/console/audit", "/console/static/console.css"} {
		if code, body, _ := get(t, c, ts.URL+p); code != 200 || len(body) == 0 {
			t.Errorf("GET %s = %d", p, code)
		}
	}
	_, body, _ := get(t, c, ts.URL+"/console/agreements?from=XAA&to=XBB&channel=exercise")
	if !strings.Contains(body, "<strong>yes</strong>") {
		t.Errorf("may answer missing from the agreements page")
	}
}

func TestNotFound(t *testing.T) {
	ts, _ := newConsole(t)
	c, _ := login(t, ts, rev1Tok)
	code, body, _ := get(t, c, ts.URL+"/console/no/such/page")
	if code != http.StatusNotFound || !strings.Contains(body, "There is no console page /console/no/such/page") || !strings.Contains(body, `<nav aria-label="Console">`) {
		t.Errorf("unknown page = %d; want 404 inside the console's navigation", code)
	}
	if code, _, h := get(t, browser(t, ts), ts.URL+"/console/no/such/page"); code != http.StatusSeeOther || h.Get("Location") != "/console/login" {
		t.Errorf("unknown page without a session = %d to %q, want the login page", code, h.Get("Location"))
	}
}

// TestTimeline places now on terms as long as real agreements', where 100
// times the term in nanoseconds does not fit in an int64.
func TestTimeline(t *testing.T) {
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	cis := api.Agreement{Effective: day(2005, time.October, 3), Expiry: day(2020, time.October, 3)}
	for _, tc := range []struct {
		a    api.Agreement
		now  time.Time
		want int
	}{
		{cis, day(2005, time.October, 3), 0},
		{cis, day(2013, time.April, 4), 50},
		{cis, day(2019, time.March, 1), 89},
		{cis, day(2020, time.October, 3), 100},
		{cis, day(2001, time.January, 1), 0},
		{cis, day(2030, time.January, 1), 100},
		{api.Agreement{Effective: day(2000, time.January, 1), Expiry: day(2100, time.January, 1)}, day(2075, time.January, 1), 75},
		{api.Agreement{}, day(2019, time.March, 1), 0},
	} {
		if got := timeline(tc.a, tc.now); got != tc.want {
			t.Errorf("timeline(%s to %s, %s) = %d, want %d", tc.a.Effective.Format(time.DateOnly), tc.a.Expiry.Format(time.DateOnly), tc.now.Format(time.DateOnly), got, tc.want)
		}
	}
}
