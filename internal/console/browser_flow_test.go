package console_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"liaison/internal/api"
	"liaison/internal/api/apitest"
	"liaison/internal/console"
	"liaison/internal/console/consoletest"
)

// TestBrowserFederation drives two consoles, XAA's and XBB's, in headless
// Chromium: an operator logs in, sees the agreement in force, asks the
// "may" question, sends a labelled message that arrives live on the
// partner's console, and a held message is released by two different
// reviewers and then found in the audit log.
func TestBrowserFederation(t *testing.T) {
	br := consoletest.NewBrowser(t)
	tsA, tsB, fa := twoConsoles(t)

	sam := br.Tab(tsA.URL, "xaa-sam")
	sam.Open("/console/login")
	sam.CheckA11y("login")
	sam.Login("s3nder")

	// Overview: the agreement and its status.
	if got := sam.Text("#ag-h + table tbody"); !strings.Contains(got, "in force") {
		t.Errorf("overview agreements = %q, want an agreement in force", got)
	}
	// The status is styled as in force (the class is a slug of the status).
	if got := consoletest.Run(sam, "status colour", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#ag-h + table .status")).color`)); got != "rgb(11, 107, 44)" {
		t.Errorf("in-force status colour = %q, want the good colour rgb(11, 107, 44)", got)
	}
	sam.CheckA11y("overview")

	// Agreements: the "may" form, filled in as a user would.
	sam.Click(`nav a[href="/console/agreements"]`)
	sam.WaitVisible("#may-h")
	sam.Fill("#from", "XAA")
	sam.Fill("#to", "XBB")
	sam.Fill("#channel", "exercise")
	sam.Click(`#may-h ~ form button[type=submit]`)
	sam.WaitVisible(".answer")
	if got := sam.Text(".answer"); !strings.Contains(got, "XAA → XBB on exercise: yes") {
		t.Errorf("may answer = %q, want yes for XAA → XBB on exercise", got)
	}
	if got := consoletest.Run(sam, "asked values", chromedp.Evaluate[string](`from.value + " " + to.value + " " + channel.value`)); got != "XAA XBB exercise" {
		t.Errorf("the may form shows %q after asking, want the question kept", got)
	}
	sam.CheckA11y("agreements")

	// XBB's operator watches the channel before anything is sent.
	bo := br.Tab(tsB.URL, "xbb-sam")
	bo.Login("s3nder")
	bo.Open("/console/channels/exercise")
	bo.WaitFor("the live stream is open", `document.getElementById("live-state").textContent === "live"`)
	bo.WaitVisible("#no-traffic")
	// A marker that a reload would lose.
	consoletest.Run(bo, "mark the page", chromedp.Evaluate[bool](`window.notReloaded = true`))

	// XAA sends a labelled message, reaching the channel from the
	// agreement's channel link.
	sam.Click(`a[href="/console/channels/exercise"]`)
	sam.WaitVisible("#send-h")
	sam.Fill("#label", "1") // the second choice, XAA RESTRICTED
	sam.Fill("#precedence", "PRIORITY")
	sam.Fill("#body", "rendezvous at grid 4711")
	sam.Click(`form[action$="/send"] button[type=submit]`)
	sam.WaitVisible(".flash")
	if got := sam.Text(".flash"); !strings.Contains(got, "XBB: delivered") {
		t.Errorf("send flash = %q, want XBB: delivered", got)
	}
	sam.CheckA11y("channel")

	// It arrives on XBB's page without a reload, with its marking.
	bo.WaitFor("the message arrives", `[...document.querySelectorAll("#traffic li.msg .body")].some(e => e.textContent === "rendezvous at grid 4711")`)
	if !consoletest.Run(bo, "reload marker", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Errorf("XBB's channel page reloaded; the message should arrive over the live stream")
	}
	if consoletest.Run(bo, "empty note", chromedp.Evaluate[bool](`document.getElementById("no-traffic") !== null`)) {
		t.Errorf("the note that the channel is empty stays after a message arrived")
	}
	if got := bo.Text("#traffic li.msg .marking"); got != "XAA RESTRICTED" {
		t.Errorf("marking on XBB = %q, want XAA RESTRICTED", got)
	}
	if got := consoletest.Run(bo, "announcement", chromedp.Evaluate[string](`announce.textContent`)); got != "New priority message from XAA, XAA RESTRICTED." {
		t.Errorf("screen reader announcement = %q", got)
	}
	if got := bo.Text("#traffic li.msg .badge"); got != "PRIORITY" {
		t.Errorf("precedence on XBB = %q, want PRIORITY", got)
	}
	bo.CheckA11y("channel-live")

	// A message with the quarantine word is held.
	sam.Open("/console/channels/exercise")
	sam.Fill("#body", "ZULU extraction at dawn")
	// No label is chosen for the sender: the form will not go without one.
	if !consoletest.Run(sam, "label required", chromedp.Evaluate[bool](`label.validity.valueMissing && !document.querySelector('form[action$="/send"]').checkValidity()`)) {
		t.Errorf("the send form can be submitted without choosing a label")
	}
	sam.Fill("#label", "0")
	sam.Click(`form[action$="/send"] button[type=submit]`)
	sam.WaitVisible(".flash")
	if got := sam.Text(".flash"); !strings.Contains(got, "XBB: quarantined") {
		t.Errorf("send flash = %q, want XBB: quarantined", got)
	}
	held, err := fa.Quarantine(context.Background())
	if err != nil || len(held) != 1 {
		t.Fatalf("XAA quarantine = %v, %v; want one held message", held, err)
	}
	id := held[0].ID.String()
	release := fmt.Sprintf(`tr[data-id=%q] button[aria-label^="Release"]`, id)

	rita := br.Tab(tsA.URL, "xaa-rita")
	rita.Login("rev-one")
	rita.Click(`nav a[href="/console/quarantine"]`)
	rita.WaitVisible(release)
	rita.CheckA11y("quarantine")
	rita.Click(release)
	rita.WaitVisible(".flash")
	if got := rita.Text(".flash"); !strings.Contains(got, "pending") {
		t.Errorf("first release flash = %q, want pending", got)
	}
	row := fmt.Sprintf(`tr[data-id=%q]`, id)
	if got := rita.Text(row + " td.approvals"); !strings.HasPrefix(got, "rita\n") || !strings.Contains(got, "You approved") {
		t.Errorf("approved by = %q, want rita and a note that rita approved", got)
	}
	if got := rita.Text(row + " td.needed"); got != "1" {
		t.Errorf("still needed = %q, want 1", got)
	}
	rita.Screenshot("quarantine-pending")

	// The same reviewer cannot approve twice.
	rita.Click(release)
	rita.WaitVisible(".error")
	if got := rita.Text(".error"); !strings.Contains(got, "already approved") {
		t.Errorf("second approval by rita = %q, want a refusal", got)
	}
	if n := consoletest.Run(rita, "current nav", chromedp.Evaluate[int](`document.querySelectorAll("nav [aria-current]").length`)); n != 0 {
		t.Errorf("the error page marks %d navigation links as the current page, want none", n)
	}
	rita.CheckA11y("review-refused")
	rita.Click(`main a[href="/console/quarantine"]`) // Back
	rita.WaitVisible(release)

	raj := br.Tab(tsA.URL, "xaa-raj")
	raj.Login("rev-two")
	raj.Open("/console/quarantine")
	raj.Click(release)
	raj.WaitVisible(".flash")
	if got := raj.Text(".flash"); !strings.Contains(got, "released") {
		t.Errorf("second release flash = %q, want released", got)
	}
	raj.Screenshot("quarantine-released")
	bo.WaitFor("the released message arrives", `[...document.querySelectorAll("#traffic li.msg .body")].some(e => e.textContent === "ZULU extraction at dawn")`)
	bo.Screenshot("channel-released")

	// The audit page finds the release by message id.
	raj.Click(`nav a[href="/console/audit"]`)
	raj.WaitVisible("#entries-h") // the audit page has loaded; fill nothing on the page we left
	raj.Fill("#message", id)
	raj.Click(`form[action="/console/audit"] button[type=submit]`)
	raj.WaitVisible(fmt.Sprintf(`#message[value=%q]`, id))
	entries := raj.Text("#entries-h + table tbody")
	for _, want := range []string{id, "release", "rita, raj"} {
		if !strings.Contains(entries, want) {
			t.Errorf("audit entries for %s lack %q:\n%s", id, want, entries)
		}
	}
	raj.CheckA11y("audit")
}

// TestBrowserKeyboard checks that a keyboard user can skip to the content
// and sees where focus is in the navigation.
func TestBrowserKeyboard(t *testing.T) {
	br := consoletest.NewBrowser(t)
	tsA, _, _ := twoConsoles(t)
	u := br.Tab(tsA.URL, "xaa-rita")
	u.Login("rev-one")
	u.Open("/console/")

	u.Do("tab", chromedp.KeyEvent(kb.Tab))
	if got := consoletest.Run(u, "focused", chromedp.Evaluate[string](`document.activeElement.className + " " + document.activeElement.getBoundingClientRect().left`)); !strings.HasPrefix(got, "skip ") || strings.HasPrefix(got, "skip -") {
		t.Errorf("first Tab focuses %q, want the skip link, on screen", got)
	}
	u.Screenshot("skip-link")
	u.Do("follow the skip link", chromedp.KeyEvent(kb.Enter))
	u.WaitFor("focus is on main", `document.activeElement.id === "main"`)

	u.Open("/console/")
	u.Do("tab twice", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab))
	got := consoletest.Run(u, "focused nav link", chromedp.Evaluate[[]string](`(() => {
	  const el = document.activeElement, s = getComputedStyle(el);
	  return [el.closest("nav") ? el.textContent : el.tagName, s.outlineStyle, s.outlineWidth];
	})()`))
	if got[0] != "Overview" {
		t.Errorf("second Tab focuses %q, want the first navigation link", got[0])
	}
	if got[1] == "none" || got[2] == "0px" {
		t.Errorf("the focused navigation link has outline %s %s; focus must be visible", got[1], got[2])
	}
	u.Screenshot("nav-focus")
}

// TestBrowserA11yCheck shows that the accessibility check finds what it
// looks for, on a page that gets each thing wrong.
func TestBrowserA11yCheck(t *testing.T) {
	br := consoletest.NewBrowser(t)
	u := br.Tab("", "bad-page")
	const page = `<html><body><h1>One</h1><h1>Two</h1>
<input id="a" name="a"><select name="s"></select><textarea name="t"></textarea>
<img src="x.png"><svg width="10" height="10"></svg><button></button>
<p style="color:#aaa;background:#fff">faint</p></body></html>`
	u.Do("open the bad page", chromedp.Navigate("data:text/html,"+url.PathEscape(page)), chromedp.WaitVisible(chromedp.CSS("h1")))
	got := strings.Join(consoletest.Run(u, "accessibility check", chromedp.Evaluate[[]string](consoletest.A11yJS)), "\n")
	for _, want := range []string{"unlabelled input#a", "unlabelled select", "unlabelled textarea", "img without alt",
		"svg without aria-label", "2 h1 elements", "unnamed button", "no lang", "not exactly one main", "no title", `contrast 2.32 < 4.5 for p. "faint"`} {
		if !strings.Contains(got, want) {
			t.Errorf("check of a bad page does not report %q; it reports:\n%s", want, got)
		}
	}
}

// TestBrowserPages checks every page, as a user holding every role, for
// accessibility, in the states the federation test does not reach.
func TestBrowserPages(t *testing.T) {
	br := consoletest.NewBrowser(t)
	tsA, _, _ := twoConsoles(t)
	u := br.Tab(tsA.URL, "xaa-olga")

	u.Open("/console/login")
	u.Fill("#token", "not-a-token")
	u.Click("main form button[type=submit]")
	u.WaitVisible(".error")
	if got := u.Text(".error"); !strings.Contains(got, "not valid") {
		t.Errorf("bad token = %q, want an explanation", got)
	}
	if focused := consoletest.Run(u, "focus", chromedp.Evaluate[string](`document.activeElement.id`)); focused != "token" {
		t.Errorf("after a refused login focus is on %q, want the token field", focused)
	}
	u.CheckA11y("login-refused")

	u.Login("all-roles")
	for _, p := range []struct{ path, name string }{
		{"/console/", "overview"},
		{"/console/agreements", "agreements-operator"},
		{"/console/agreements?from=XAA&to=XCC&channel=exercise", "agreements-may-no"},
		{"/console/channels/exercise", "channel-empty"},
		{"/console/quarantine", "quarantine-empty"},
		{"/console/audit", "audit-empty"},
		{"/console/no/such/page", "not-found"},
	} {
		u.Open(p.path)
		u.CheckA11y(p.name)
	}
}

// twoConsoles runs consoles for XAA and XBB on two linked fakes. XAA holds
// messages containing "ZULU" for review.
func twoConsoles(t *testing.T) (a, b *httptest.Server, fa *apitest.Fake) {
	t.Helper()
	fa, fb := apitest.NewFake("XAA"), apitest.NewFake("XBB")
	fa.QuarantineWord = "ZULU"
	apitest.Link(fa, fb)
	serve := func(f *apitest.Fake) *httptest.Server {
		srv, err := api.New(api.Config{Backend: f, Tokens: []api.Token{
			{Name: "sam", SHA256: api.HashToken("s3nder"), Roles: []api.Role{api.RoleSender}},
			{Name: "rita", SHA256: api.HashToken("rev-one"), Roles: []api.Role{api.RoleReviewer}},
			{Name: "raj", SHA256: api.HashToken("rev-two"), Roles: []api.Role{api.RoleReviewer}},
			{Name: "olga", SHA256: api.HashToken("all-roles"), Roles: []api.Role{api.RoleOperator, api.RoleReviewer, api.RoleAuditor, api.RoleSender}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := console.New(console.Config{Backend: f, Auth: srv})
		if err != nil {
			t.Fatal(err)
		}
		srv.Handle("/console/", c)
		ts := httptest.NewTLSServer(srv)
		t.Cleanup(ts.Close)
		return ts
	}
	return serve(fa), serve(fb), fa
}
