package console_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"liaison/internal/api"
	"liaison/internal/api/apitest"
	"liaison/internal/console"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// actionTimeout bounds every browser action; a step that needs longer is
// a failure, not a slow test.
const actionTimeout = 10 * time.Second

// browser is one Chromium process shared by the tabs of a test.
type browser struct {
	t   *testing.T
	ctx context.Context // the browser's first tab; parent of every browserT
	dir string          // where screenshots go
}

// newBrowser starts headless Chromium, or skips the test when it is not
// installed (fails instead when LIAISON_REQUIRE_PEERS=1).
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("LIAISON_REQUIRE_PEERS") == "1" {
			t.Fatalf("chromium is required (LIAISON_REQUIRE_PEERS=1) but %s is absent: %v", chromiumPath, err)
		}
		t.Skipf("skipping browser test: %s is absent (apt-get install chromium, or run .ci/run)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// The consoles are httptest TLS servers with self-signed
		// certificates; trusting a test CA in Chromium is awkward, and
		// the test proves nothing about certificates.
		chromedp.Flag("ignore-certificate-errors", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser. It must run on ctx itself (a
	// context with a timeout would end the browser with it), so a timer
	// bounds it instead.
	watchdog := time.AfterFunc(20*time.Second, cancel)
	err := chromedp.Do(ctx)
	if !watchdog.Stop() || err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	dir := os.Getenv("LIAISON_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "artifacts")
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Screenshots of an earlier run of this test would mislead.
	old, _ := filepath.Glob(filepath.Join(dir, artefactName(t.Name())+"-*.png"))
	for _, f := range old {
		os.Remove(f)
	}
	return &browser{t: t, ctx: ctx, dir: dir}
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

// browserT is one user at one console: a tab in a browser context of its
// own, so that users do not share cookies.
type browserT struct {
	t    *testing.T
	ctx  context.Context
	base string // the console's origin, https://127.0.0.1:port
	who  string // prefix of screenshot names
}

func (b *browser) tab(base, who string) *browserT {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	watchdog := time.AfterFunc(actionTimeout, cancel)
	if err := chromedp.Do(ctx); !watchdog.Stop() || err != nil {
		b.t.Fatalf("opening a tab for %s: %v", who, err)
	}
	return &browserT{t: b.t, ctx: ctx, base: base, who: who}
}

// do runs actions under actionTimeout, failing the test with what on error.
func (bt *browserT) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	bt.t.Helper()
	ctx, cancel := context.WithTimeout(bt.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		bt.screenshot("failed")
		bt.t.Fatalf("%s: %s: %v", bt.who, what, err)
	}
}

func run[T any](bt *browserT, what string, a chromedp.Action[T]) T {
	bt.t.Helper()
	ctx, cancel := context.WithTimeout(bt.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		bt.screenshot("failed")
		bt.t.Fatalf("%s: %s: %v", bt.who, what, err)
	}
	return v
}

func (bt *browserT) open(path string) {
	bt.t.Helper()
	bt.do("open "+path, chromedp.Navigate(bt.base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
}

func (bt *browserT) login(token string) {
	bt.t.Helper()
	bt.open("/console/login")
	bt.fill("#token", token)
	bt.click("main form button[type=submit]")
	bt.waitVisible(`nav[aria-label="Console"]`)
}

func (bt *browserT) click(sel string) {
	bt.t.Helper()
	bt.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// fill types value into an input or textarea, or picks a select's option
// by value.
func (bt *browserT) fill(sel, value string) {
	bt.t.Helper()
	bt.waitVisible(sel) // a click before may still be navigating
	if run(bt, "tag of "+sel, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) instanceof HTMLSelectElement`, sel))) {
		bt.do("choose "+value+" in "+sel, chromedp.SetValue(chromedp.CSS(sel), value))
		return
	}
	run(bt, "clear "+sel, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).value = ""`, sel)))
	bt.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), value))
}

func (bt *browserT) waitVisible(sel string) {
	bt.t.Helper()
	bt.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

func (bt *browserT) text(sel string) string {
	bt.t.Helper()
	return run(bt, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// waitFor polls a JavaScript predicate until it is true.
func (bt *browserT) waitFor(what, predicate string) {
	bt.t.Helper()
	run(bt, "wait until "+what, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(actionTimeout), chromedp.WithPollingMutation()))
}

var nameRE = regexp.MustCompile(`[^a-z0-9-]+`)

func artefactName(s string) string { return nameRE.ReplaceAllString(strings.ToLower(s), "-") }

// screenshot saves the whole page as a PNG artefact.
func (bt *browserT) screenshot(name string) {
	bt.t.Helper()
	ctx, cancel := context.WithTimeout(bt.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		bt.t.Errorf("%s: screenshot %s: %v", bt.who, name, err)
		return
	}
	file := artefactName(bt.t.Name()+"-"+bt.who+"-"+name) + ".png"
	dir := os.Getenv("LIAISON_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(bt.t), "artifacts")
	}
	if err := os.WriteFile(filepath.Join(dir, "console", file), png, 0o644); err != nil {
		bt.t.Errorf("saving screenshot: %v", err)
	}
}

// a11yJS lists what the page gets wrong for assistive technology: form
// controls without a label, images without a text alternative, not exactly
// one h1, unnamed buttons and links, no document language, no main, and
// text below WCAG AA contrast.
const a11yJS = `(() => {
  const p = [];
  const shown = el => el.type !== "hidden" && el.getClientRects().length > 0;
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (!shown(el)) continue;
    if (!(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
      p.push("unlabelled " + el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + " name=" + el.name);
  }
  for (const el of document.querySelectorAll("img")) if (!el.hasAttribute("alt")) p.push("img without alt: " + el.src);
  for (const el of document.querySelectorAll("svg")) {
    if (el.closest("[aria-hidden=true]")) continue;
    if (!el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby")) p.push("svg without aria-label");
  }
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) p.push(h1 + " h1 elements, want 1");
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (!shown(el) && !el.classList.contains("skip")) continue;
    if (!el.textContent.trim() && !el.getAttribute("aria-label")) p.push("unnamed " + el.tagName.toLowerCase());
  }
  if (!document.documentElement.lang) p.push("no lang on html");
  if (document.querySelectorAll("main").length !== 1) p.push("not exactly one main");
  if (!document.title.trim()) p.push("no title");
  // WCAG AA contrast for every visible text: 4.5:1, or 3:1 for large text.
  const rgba = c => (c.match(/[\d.]+/g) || [0, 0, 0, 0]).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0.5) return c;
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length || el.closest(".skip")) continue;
    const s = getComputedStyle(el);
    if (s.visibility === "hidden") continue;
    const a = lum(rgba(s.color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) p.push("contrast " + ratio.toFixed(2) + " < " + need + " for " + el.tagName.toLowerCase() + "." + el.className + " " + JSON.stringify(el.textContent.trim().slice(0, 30)));
  }
  return p;
})()`

// checkA11y fails the test for each accessibility problem on the page,
// then saves a screenshot of it.
func (bt *browserT) checkA11y(page string) {
	bt.t.Helper()
	for _, p := range run(bt, "accessibility check", chromedp.Evaluate[[]string](a11yJS)) {
		bt.t.Errorf("%s: page %s: %s", bt.who, page, p)
	}
	bt.screenshot(page)
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
