package console_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestBrowserFederation drives two consoles, XAA's and XBB's, in headless
// Chromium: an operator logs in, sees the agreement in force, asks the
// "may" question, sends a labelled message that arrives live on the
// partner's console, and a held message is released by two different
// reviewers and then found in the audit log.
func TestBrowserFederation(t *testing.T) {
	br := newBrowser(t)
	tsA, tsB, fa := twoConsoles(t)

	sam := br.tab(tsA.URL, "xaa-sam")
	sam.open("/console/login")
	sam.checkA11y("login")
	sam.login("s3nder")

	// Overview: the agreement and its status.
	if got := sam.text("#ag-h + table tbody"); !strings.Contains(got, "in force") {
		t.Errorf("overview agreements = %q, want an agreement in force", got)
	}
	// The status is styled as in force (the class is a slug of the status).
	if got := run(sam, "status colour", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#ag-h + table .status")).color`)); got != "rgb(11, 107, 44)" {
		t.Errorf("in-force status colour = %q, want the good colour rgb(11, 107, 44)", got)
	}
	sam.checkA11y("overview")

	// Agreements: the "may" form, filled in as a user would.
	sam.click(`nav a[href="/console/agreements"]`)
	sam.waitVisible("#may-h")
	sam.fill("#from", "XAA")
	sam.fill("#to", "XBB")
	sam.fill("#channel", "exercise")
	sam.click(`#may-h ~ form button[type=submit]`)
	sam.waitVisible(".answer")
	if got := sam.text(".answer"); !strings.Contains(got, "XAA → XBB on exercise: yes") {
		t.Errorf("may answer = %q, want yes for XAA → XBB on exercise", got)
	}
	if got := run(sam, "asked values", chromedp.Evaluate[string](`from.value + " " + to.value + " " + channel.value`)); got != "XAA XBB exercise" {
		t.Errorf("the may form shows %q after asking, want the question kept", got)
	}
	sam.checkA11y("agreements")

	// XBB's operator watches the channel before anything is sent.
	bo := br.tab(tsB.URL, "xbb-sam")
	bo.login("s3nder")
	bo.open("/console/channels/exercise")
	bo.waitFor("the live stream is open", `document.getElementById("live-state").textContent === "live"`)
	bo.waitVisible("#no-traffic")
	// A marker that a reload would lose.
	run(bo, "mark the page", chromedp.Evaluate[bool](`window.notReloaded = true`))

	// XAA sends a labelled message, reaching the channel from the
	// agreement's channel link.
	sam.click(`a[href="/console/channels/exercise"]`)
	sam.waitVisible("#send-h")
	sam.fill("#label", "1") // the second choice, XAA RESTRICTED
	sam.fill("#precedence", "PRIORITY")
	sam.fill("#body", "rendezvous at grid 4711")
	sam.click(`form[action$="/send"] button[type=submit]`)
	sam.waitVisible(".flash")
	if got := sam.text(".flash"); !strings.Contains(got, "XBB: delivered") {
		t.Errorf("send flash = %q, want XBB: delivered", got)
	}
	sam.checkA11y("channel")

	// It arrives on XBB's page without a reload, with its marking.
	bo.waitFor("the message arrives", `[...document.querySelectorAll("#traffic li.msg .body")].some(e => e.textContent === "rendezvous at grid 4711")`)
	if !run(bo, "reload marker", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Errorf("XBB's channel page reloaded; the message should arrive over the live stream")
	}
	if run(bo, "empty note", chromedp.Evaluate[bool](`document.getElementById("no-traffic") !== null`)) {
		t.Errorf("the note that the channel is empty stays after a message arrived")
	}
	if got := bo.text("#traffic li.msg .marking"); got != "XAA RESTRICTED" {
		t.Errorf("marking on XBB = %q, want XAA RESTRICTED", got)
	}
	if got := run(bo, "announcement", chromedp.Evaluate[string](`announce.textContent`)); got != "New priority message from XAA, XAA RESTRICTED." {
		t.Errorf("screen reader announcement = %q", got)
	}
	if got := bo.text("#traffic li.msg .badge"); got != "PRIORITY" {
		t.Errorf("precedence on XBB = %q, want PRIORITY", got)
	}
	bo.checkA11y("channel-live")

	// A message with the quarantine word is held.
	sam.open("/console/channels/exercise")
	sam.fill("#body", "ZULU extraction at dawn")
	// No label is chosen for the sender: the form will not go without one.
	if !run(sam, "label required", chromedp.Evaluate[bool](`label.validity.valueMissing && !document.querySelector('form[action$="/send"]').checkValidity()`)) {
		t.Errorf("the send form can be submitted without choosing a label")
	}
	sam.fill("#label", "0")
	sam.click(`form[action$="/send"] button[type=submit]`)
	sam.waitVisible(".flash")
	if got := sam.text(".flash"); !strings.Contains(got, "XBB: quarantined") {
		t.Errorf("send flash = %q, want XBB: quarantined", got)
	}
	held, err := fa.Quarantine(context.Background())
	if err != nil || len(held) != 1 {
		t.Fatalf("XAA quarantine = %v, %v; want one held message", held, err)
	}
	id := held[0].ID.String()
	release := fmt.Sprintf(`tr[data-id=%q] button[aria-label^="Release"]`, id)

	rita := br.tab(tsA.URL, "xaa-rita")
	rita.login("rev-one")
	rita.click(`nav a[href="/console/quarantine"]`)
	rita.waitVisible(release)
	rita.checkA11y("quarantine")
	rita.click(release)
	rita.waitVisible(".flash")
	if got := rita.text(".flash"); !strings.Contains(got, "pending") {
		t.Errorf("first release flash = %q, want pending", got)
	}
	row := fmt.Sprintf(`tr[data-id=%q]`, id)
	if got := rita.text(row + " td.approvals"); !strings.HasPrefix(got, "rita\n") || !strings.Contains(got, "You approved") {
		t.Errorf("approved by = %q, want rita and a note that rita approved", got)
	}
	if got := rita.text(row + " td.needed"); got != "1" {
		t.Errorf("still needed = %q, want 1", got)
	}
	rita.screenshot("quarantine-pending")

	// The same reviewer cannot approve twice.
	rita.click(release)
	rita.waitVisible(".error")
	if got := rita.text(".error"); !strings.Contains(got, "already approved") {
		t.Errorf("second approval by rita = %q, want a refusal", got)
	}
	if n := run(rita, "current nav", chromedp.Evaluate[int](`document.querySelectorAll("nav [aria-current]").length`)); n != 0 {
		t.Errorf("the error page marks %d navigation links as the current page, want none", n)
	}
	rita.checkA11y("review-refused")
	rita.click(`main a[href="/console/quarantine"]`) // Back
	rita.waitVisible(release)

	raj := br.tab(tsA.URL, "xaa-raj")
	raj.login("rev-two")
	raj.open("/console/quarantine")
	raj.click(release)
	raj.waitVisible(".flash")
	if got := raj.text(".flash"); !strings.Contains(got, "released") {
		t.Errorf("second release flash = %q, want released", got)
	}
	raj.screenshot("quarantine-released")
	bo.waitFor("the released message arrives", `[...document.querySelectorAll("#traffic li.msg .body")].some(e => e.textContent === "ZULU extraction at dawn")`)
	bo.screenshot("channel-released")

	// The audit page finds the release by message id.
	raj.click(`nav a[href="/console/audit"]`)
	raj.waitVisible("#entries-h") // the audit page has loaded; fill nothing on the page we left
	raj.fill("#message", id)
	raj.click(`form[action="/console/audit"] button[type=submit]`)
	raj.waitVisible(fmt.Sprintf(`#message[value=%q]`, id))
	entries := raj.text("#entries-h + table tbody")
	for _, want := range []string{id, "release", "rita, raj"} {
		if !strings.Contains(entries, want) {
			t.Errorf("audit entries for %s lack %q:\n%s", id, want, entries)
		}
	}
	raj.checkA11y("audit")
}

// TestBrowserKeyboard checks that a keyboard user can skip to the content
// and sees where focus is in the navigation.
func TestBrowserKeyboard(t *testing.T) {
	br := newBrowser(t)
	tsA, _, _ := twoConsoles(t)
	u := br.tab(tsA.URL, "xaa-rita")
	u.login("rev-one")
	u.open("/console/")

	u.do("tab", chromedp.KeyEvent(kb.Tab))
	if got := run(u, "focused", chromedp.Evaluate[string](`document.activeElement.className + " " + document.activeElement.getBoundingClientRect().left`)); !strings.HasPrefix(got, "skip ") || strings.HasPrefix(got, "skip -") {
		t.Errorf("first Tab focuses %q, want the skip link, on screen", got)
	}
	u.screenshot("skip-link")
	u.do("follow the skip link", chromedp.KeyEvent(kb.Enter))
	u.waitFor("focus is on main", `document.activeElement.id === "main"`)

	u.open("/console/")
	u.do("tab twice", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab))
	got := run(u, "focused nav link", chromedp.Evaluate[[]string](`(() => {
	  const el = document.activeElement, s = getComputedStyle(el);
	  return [el.closest("nav") ? el.textContent : el.tagName, s.outlineStyle, s.outlineWidth];
	})()`))
	if got[0] != "Overview" {
		t.Errorf("second Tab focuses %q, want the first navigation link", got[0])
	}
	if got[1] == "none" || got[2] == "0px" {
		t.Errorf("the focused navigation link has outline %s %s; focus must be visible", got[1], got[2])
	}
	u.screenshot("nav-focus")
}

// TestBrowserA11yCheck shows that the accessibility check finds what it
// looks for, on a page that gets each thing wrong.
func TestBrowserA11yCheck(t *testing.T) {
	br := newBrowser(t)
	u := br.tab("", "bad-page")
	const page = `<html><body><h1>One</h1><h1>Two</h1>
<input id="a" name="a"><select name="s"></select><textarea name="t"></textarea>
<img src="x.png"><svg width="10" height="10"></svg><button></button>
<p style="color:#aaa;background:#fff">faint</p></body></html>`
	u.do("open the bad page", chromedp.Navigate("data:text/html,"+url.PathEscape(page)), chromedp.WaitVisible(chromedp.CSS("h1")))
	got := strings.Join(run(u, "accessibility check", chromedp.Evaluate[[]string](a11yJS)), "\n")
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
	br := newBrowser(t)
	tsA, _, _ := twoConsoles(t)
	u := br.tab(tsA.URL, "xaa-olga")

	u.open("/console/login")
	u.fill("#token", "not-a-token")
	u.click("main form button[type=submit]")
	u.waitVisible(".error")
	if got := u.text(".error"); !strings.Contains(got, "not valid") {
		t.Errorf("bad token = %q, want an explanation", got)
	}
	if focused := run(u, "focus", chromedp.Evaluate[string](`document.activeElement.id`)); focused != "token" {
		t.Errorf("after a refused login focus is on %q, want the token field", focused)
	}
	u.checkA11y("login-refused")

	u.login("all-roles")
	for _, p := range []struct{ path, name string }{
		{"/console/", "overview"},
		{"/console/agreements", "agreements-operator"},
		{"/console/agreements?from=XAA&to=XCC&channel=exercise", "agreements-may-no"},
		{"/console/channels/exercise", "channel-empty"},
		{"/console/quarantine", "quarantine-empty"},
		{"/console/audit", "audit-empty"},
		{"/console/no/such/page", "not-found"},
	} {
		u.open(p.path)
		u.checkA11y(p.name)
	}
}
