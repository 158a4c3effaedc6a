// Package consoletest drives the web console in Debian's headless
// Chromium with chromedp, for tests: against the in-memory fakes of the
// console's own tests and against real nodes.
//
// [NewBrowser] starts one browser per test (skipping the test where
// Chromium is absent, failing it instead when LIAISON_REQUIRE_PEERS=1);
// [Browser.Tab] opens a tab in a browser context of its own, one per
// user, so users do not share cookies. Every step is bounded by
// [ActionTimeout] and fails the test with a screenshot when it does not
// complete. Screenshots go to $LIAISON_ARTIFACTS/console, or
// artifacts/console at the repository root.
package consoletest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// ActionTimeout bounds every browser action; a step that needs longer is
// a failure, not a slow test.
const ActionTimeout = 10 * time.Second

// Browser is one Chromium process shared by the tabs of a test.
type Browser struct {
	t   *testing.T
	ctx context.Context // the browser's first tab; parent of every browserT
	dir string          // where screenshots go
}

// NewBrowser starts headless Chromium, or skips the test when it is not
// installed (fails instead when LIAISON_REQUIRE_PEERS=1).
func NewBrowser(t *testing.T) *Browser {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("LIAISON_REQUIRE_PEERS") == "1" {
			t.Fatalf("chromium is required (LIAISON_REQUIRE_PEERS=1) but %s is absent: %v", ChromiumPath, err)
		}
		t.Skipf("skipping browser test: %s is absent (apt-get install chromium, or run .ci/run)", ChromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
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
		t.Fatalf("starting %s: %v", ChromiumPath, err)
	}
	dir := os.Getenv("LIAISON_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "artifacts")
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
	return &Browser{t: t, ctx: ctx, dir: dir}
}

// RepoRoot is the directory above the working directory that holds go.mod.
func RepoRoot(t *testing.T) string {
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

// Tab is one user at one console: a tab in a browser context of its
// own, so that users do not share cookies.
type Tab struct {
	t    *testing.T
	ctx  context.Context
	base string // the console's origin, https://127.0.0.1:port
	who  string // prefix of screenshot names
}

// Tab opens a tab for the user who (a prefix of screenshot names) at the
// console whose origin is base (https://127.0.0.1:port).
func (b *Browser) Tab(base, who string) *Tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	watchdog := time.AfterFunc(ActionTimeout, cancel)
	if err := chromedp.Do(ctx); !watchdog.Stop() || err != nil {
		b.t.Fatalf("opening a tab for %s: %v", who, err)
	}
	return &Tab{t: b.t, ctx: ctx, base: base, who: who}
}

// Do runs actions under ActionTimeout, failing the test with what on error.
func (bt *Tab) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	bt.t.Helper()
	ctx, cancel := context.WithTimeout(bt.ctx, ActionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		bt.Screenshot("failed")
		bt.t.Fatalf("%s: %s: %v", bt.who, what, err)
	}
}

// Run runs an action that yields a value under ActionTimeout, failing the
// test with what on error.
func Run[T any](bt *Tab, what string, a chromedp.Action[T]) T {
	bt.t.Helper()
	ctx, cancel := context.WithTimeout(bt.ctx, ActionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		bt.Screenshot("failed")
		bt.t.Fatalf("%s: %s: %v", bt.who, what, err)
	}
	return v
}

// Open navigates to path on the console and waits for its heading.
func (bt *Tab) Open(path string) {
	bt.t.Helper()
	bt.Do("open "+path, chromedp.Navigate(bt.base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
}

// Login logs in at the login page with a bearer token.
func (bt *Tab) Login(token string) {
	bt.t.Helper()
	bt.Open("/console/login")
	bt.Fill("#token", token)
	bt.Click("main form button[type=submit]")
	bt.WaitVisible(`nav[aria-label="Console"]`)
}

// Click clicks the element sel selects.
func (bt *Tab) Click(sel string) {
	bt.t.Helper()
	bt.Do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// Fill types value into an input or textarea, or picks a select's option
// by value.
func (bt *Tab) Fill(sel, value string) {
	bt.t.Helper()
	bt.WaitVisible(sel) // a click before may still be navigating
	if Run(bt, "tag of "+sel, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) instanceof HTMLSelectElement`, sel))) {
		bt.Do("choose "+value+" in "+sel, chromedp.SetValue(chromedp.CSS(sel), value))
		return
	}
	Run(bt, "clear "+sel, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).value = ""`, sel)))
	bt.Do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), value))
}

// WaitVisible waits until the element sel selects is visible.
func (bt *Tab) WaitVisible(sel string) {
	bt.t.Helper()
	bt.Do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// Text is the text of the element sel selects.
func (bt *Tab) Text(sel string) string {
	bt.t.Helper()
	return Run(bt, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// WaitFor polls a JavaScript predicate until it is true.
func (bt *Tab) WaitFor(what, predicate string) {
	bt.t.Helper()
	Run(bt, "wait until "+what, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(ActionTimeout), chromedp.WithPollingMutation()))
}

var nameRE = regexp.MustCompile(`[^a-z0-9-]+`)

func artefactName(s string) string { return nameRE.ReplaceAllString(strings.ToLower(s), "-") }

// Screenshot saves the whole page as a PNG artefact.
func (bt *Tab) Screenshot(name string) {
	bt.t.Helper()
	ctx, cancel := context.WithTimeout(bt.ctx, ActionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		bt.t.Errorf("%s: screenshot %s: %v", bt.who, name, err)
		return
	}
	file := artefactName(bt.t.Name()+"-"+bt.who+"-"+name) + ".png"
	dir := os.Getenv("LIAISON_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(bt.t), "artifacts")
	}
	if err := os.WriteFile(filepath.Join(dir, "console", file), png, 0o644); err != nil {
		bt.t.Errorf("saving screenshot: %v", err)
	}
}

// A11yJS lists what the page gets wrong for assistive technology: form
// controls without a label, images without a text alternative, not exactly
// one h1, unnamed buttons and links, no document language, no main, and
// text below WCAG AA contrast.
const A11yJS = `(() => {
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

// CheckA11y fails the test for each accessibility problem on the page,
// then saves a screenshot of it.
func (bt *Tab) CheckA11y(page string) {
	bt.t.Helper()
	for _, p := range Run(bt, "accessibility check", chromedp.Evaluate[[]string](A11yJS)) {
		bt.t.Errorf("%s: page %s: %s", bt.who, page, p)
	}
	bt.Screenshot(page)
}
