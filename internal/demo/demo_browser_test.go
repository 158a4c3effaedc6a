package demo

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"liaison/internal/console/consoletest"
)

// TestConsoleRealNodes drives the consoles of two real nodes, USA and PAK,
// federated over loopback TLS under the CIS-MOA, in headless Chromium: the
// USA officer logs in and sees the agreement in force and the link up,
// sends a FLASH with a label from the channel's catalogue, and PAK's
// officer watches it arrive live under PAK's own marking; a message with a
// dirty word is held at USA until two different reviewers release it, and
// then arrives at PAK; USA's auditor finds the review in the audit log by
// message id, and PAK's auditor sees USA as a witnessed partner.
func TestConsoleRealNodes(t *testing.T) {
	br := consoletest.NewBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := &story{n: &narrator{w: io.Discard, start: time.Now()}, parties: map[string]*party{}, dir: t.TempDir()}
	t.Cleanup(s.shutdown) // after the tabs close: cleanups run last first
	if err := s.setup(ctx); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if err := s.sign2005(ctx); err != nil {
		t.Fatalf("signing the CIS-MOA: %v", err)
	}
	if f := s.n.Failures(); len(f) > 0 {
		t.Fatalf("setup: %s", f[0])
	}
	// Fourteen of the agreement's fifteen years pass, so that its term
	// shows progress on the overview.
	s.clock.Set(date(2019, time.March, 1))
	usa, pak := s.parties["USA"], s.parties["PAK"]
	console := func(p *party) string { return "https://" + p.node.APIAddr().String() }

	off := br.Tab(console(usa), "usa-officer")
	off.Open("/console/login")
	off.CheckA11y("login")
	off.Login(usa.tokens["officer"])

	// Overview: the agreement in force, on a term 14/15 elapsed, and the
	// link to PAK up.
	if got := off.Text("#ag-h + table tbody"); !strings.Contains(got, "us-pak-cis-moa v1") || !strings.Contains(got, "in force") {
		t.Errorf("USA overview agreements = %q, want us-pak-cis-moa v1 in force", got)
	}
	if got := consoletest.Run(off, "term progress", chromedp.Evaluate[string](`document.querySelector("#ag-h + table progress").value + ""`)); got != "89" {
		t.Errorf("term progress on 2019-03-01 = %q%%, want 89%% of 2005-10-03 to 2020-10-03", got)
	}
	off.WaitFor("the PAK link is up", `[...document.querySelectorAll("#links-h + table tbody tr")].some(r => r.cells[0].textContent === "PAK" && r.cells[1].textContent === "up")`)
	off.CheckA11y("overview")

	// PAK's officer watches the channel before anything is sent.
	po := br.Tab(console(pak), "pak-officer")
	po.Login(pak.tokens["officer"])
	po.Open("/console/channels/exercise")
	po.WaitFor("the live stream is open", `document.getElementById("live-state").textContent === "live"`)
	consoletest.Run(po, "mark the page", chromedp.Evaluate[bool](`window.notReloaded = true`))

	// USA's officer sends a FLASH labelled from the catalogue.
	off.Click(`a[href="/console/channels/exercise"]`)
	off.WaitVisible("#send-h")
	const rel = "CONFIDENTIAL // REL TO USA, PAK"
	choice := consoletest.Run(off, "catalogue", chromedp.Evaluate[string](fmt.Sprintf(
		`([...document.querySelectorAll("#label option")].find(o => o.textContent === %q) || {value: ""}).value`, rel)))
	if choice == "" {
		t.Fatalf("USA's catalogue for exercise has no %q: %s", rel, off.Text("#label"))
	}
	send := func(prec, body, want string) {
		t.Helper()
		off.Open("/console/channels/exercise") // no flash from a send before
		off.Fill("#label", choice)
		off.Fill("#precedence", prec)
		off.Fill("#body", body)
		off.Click(`form[action$="/send"] button[type=submit]`)
		off.WaitVisible(".flash")
		if got := off.Text(".flash"); !strings.Contains(got, want) {
			t.Errorf("send flash = %q, want %q", got, want)
		}
	}
	const flash = "FLASH: contact, grid 42SXD 12345 67890"
	send("FLASH", flash, "PAK: queued")
	off.CheckA11y("channel")

	// It arrives on PAK's page without a reload, under PAK's marking.
	arrived := func(body string) string {
		return fmt.Sprintf(`[...document.querySelectorAll("#traffic li.msg .body")].some(e => e.textContent === %q)`, body)
	}
	po.WaitFor("the FLASH arrives", arrived(flash))
	if !consoletest.Run(po, "reload marker", chromedp.Evaluate[bool](`window.notReloaded === true`)) {
		t.Errorf("PAK's channel page reloaded; the message should arrive over the live stream")
	}
	if got := po.Text("#traffic li.msg .marking"); got != "CONFIDENTIAL // REL TO PAK, USA" {
		t.Errorf("marking on PAK = %q, want PAK's CONFIDENTIAL // REL TO PAK, USA", got)
	}
	if got := po.Text("#traffic li.msg .badge"); got != "FLASH" {
		t.Errorf("precedence on PAK = %q, want FLASH", got)
	}
	// Sent from the console, it is created at the node's (simulated) time.
	if got := strings.TrimSpace(po.Text("#traffic li.msg .muted")); !strings.HasPrefix(got, "2019-03-01 ") {
		t.Errorf("created on PAK's page = %q, want the nodes' date 2019-03-01", got)
	}
	po.CheckA11y("channel-live")

	// A dirty word holds the next message at USA for two reviewers.
	const dirty = "Move to phase line KESTREL at 0600"
	send("IMMEDIATE", dirty, "PAK: quarantined")
	held, err := usa.node.Quarantine(ctx)
	if err != nil || len(held) != 1 {
		t.Fatalf("USA quarantine = %v, %v; want one held message", held, err)
	}
	id := held[0].ID.String()
	row := fmt.Sprintf(`tr[data-id=%q]`, id)
	release := row + ` button[aria-label^="Release"]`

	ra := br.Tab(console(usa), "usa-reviewer-a")
	ra.Login(usa.tokens["reviewer-a"])
	ra.Click(`nav a[href="/console/quarantine"]`)
	ra.WaitVisible(release)
	ra.CheckA11y("quarantine")
	ra.Click(release)
	ra.WaitVisible(".flash")
	if got := ra.Text(".flash"); !strings.Contains(got, "pending") {
		t.Errorf("first release flash = %q, want pending", got)
	}
	if got := ra.Text(row + " td.needed"); got != "1" {
		t.Errorf("still needed = %q, want 1", got)
	}
	ra.Screenshot("quarantine-pending")
	ra.Click(release)
	ra.WaitVisible(".error")
	if got := ra.Text(".error"); !strings.Contains(got, "already approved") {
		t.Errorf("second approval by reviewer-a = %q, want a refusal", got)
	}
	ra.CheckA11y("review-refused")

	rb := br.Tab(console(usa), "usa-reviewer-b")
	rb.Login(usa.tokens["reviewer-b"])
	rb.Open("/console/quarantine")
	rb.Click(release)
	rb.WaitVisible(".flash")
	if got := rb.Text(".flash"); !strings.Contains(got, "released") || !strings.Contains(got, "reviewer-a, reviewer-b") {
		t.Errorf("second release flash = %q, want released by reviewer-a, reviewer-b", got)
	}
	rb.Screenshot("quarantine-released")
	po.WaitFor("the released message arrives", arrived(dirty))
	po.Screenshot("channel-released")

	// USA's auditor finds the review and the release by message id.
	au := br.Tab(console(usa), "usa-auditor")
	au.Login(usa.tokens["auditor"])
	au.Open("/console/audit")
	au.Fill("#message", id)
	au.Click(`form[action="/console/audit"] button[type=submit]`)
	au.WaitVisible(fmt.Sprintf(`#message[value=%q]`, id))
	kinds := consoletest.Run(au, "entry kinds", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#entries-h + table tbody tr")].map(r => r.cells[2].textContent + " " + r.cells[3].textContent + " " + r.cells[7].textContent)`))
	for _, want := range []string{"quarantined " + id, "reviewed " + id + " reviewer-a", "reviewed " + id + " reviewer-b", "released " + id} {
		if !hasPrefix(kinds, want) {
			t.Errorf("USA's audit entries for %s lack %q:\n%s", id, want, strings.Join(kinds, "\n"))
		}
	}
	au.CheckA11y("audit")

	// The partners witness each other's logs; PAK's audit page shows USA.
	usa.node.Witness(ctx)
	pak.node.Witness(ctx)
	if !waitFor(ctx, 10*time.Second, func() bool {
		st, err := pak.node.Status(ctx)
		if err != nil || st.Audit == nil {
			return false
		}
		for _, p := range st.Audit.Partners {
			if p.Party == "USA" && p.TheirSize > 0 {
				return true
			}
		}
		return false
	}) {
		t.Fatal("PAK did not witness USA's log within 10s")
	}
	pa := br.Tab(console(pak), "pak-auditor")
	pa.Login(pak.tokens["auditor"])
	pa.Open("/console/audit")
	witnessed := consoletest.Run(pa, "partners", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#wit-h + table tbody tr")].map(r => [...r.cells].map(c => c.textContent).join("|"))`))
	var usaRow []string
	for _, r := range witnessed {
		if c := strings.Split(r, "|"); c[0] == "USA" && len(c) == 4 {
			usaRow = c
		}
	}
	if usaRow == nil {
		t.Errorf("PAK's audit page lists no USA among its partners: %q", witnessed)
	} else if size, _ := strconv.Atoi(usaRow[1]); size == 0 || usaRow[3] == "—" {
		t.Errorf("PAK's audit page shows USA's log not witnessed: %q", usaRow)
	}
	pa.CheckA11y("audit-witnessed")

	// Back on USA's overview, the chart counts what USA's officer sent.
	off.Open("/console/")
	if got := consoletest.Run(off, "chart", chromedp.Evaluate[string](`(document.querySelector("#rates-h ~ svg.chart") || {getAttribute: () => "no chart"}).getAttribute("aria-label")`)); got != "Last hour: 2 accepted, 0 denied" {
		t.Errorf("USA's traffic chart = %q, want Last hour: 2 accepted, 0 denied", got)
	}
	off.CheckA11y("overview-traffic")
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
