// Package browser drives a real headless Chromium from tests, through the
// DevTools protocol (chromedp): one browser per test binary, a fresh
// incognito context per test, and helpers that fail the test with what went
// wrong (the selector, the page's URL, the console errors).
//
// A page's console errors, uncaught exceptions and Content-Security-Policy
// violations fail the test that opened it, so a page that works only by luck
// does not pass. Axe runs axe-core in the page and fails on serious or
// critical accessibility violations.
//
// The browser is found through ROSTER_TEST_CHROMIUM (the chromium binary) and
// axe-core through ROSTER_TEST_AXE (its axe.min.js); .ci/install-browser.sh
// installs both. Without them the tests skip, or fail when
// ROSTER_TEST_REQUIRE_SERVICES=1.
package browser

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/roster-dev/roster/internal/testenv"
)

// Timeout bounds each wait of a helper: long enough for a loaded 2-core
// machine, short enough that a missing element fails the test in
// reasonable time instead of at the package's timeout.
const Timeout = 20 * time.Second

// Browser is a running headless Chromium.
type Browser struct {
	ctx         context.Context // the browser's chromedp context
	axe         string          // axe.min.js source
	screenshots string          // folder for Screenshot
	clipboard   sync.Mutex      // held by Copy: the clipboard is the browser's, not a page's
}

// Start runs headless Chromium for the test t and its subtests; it stops
// when t ends. Tests of one binary share it by running as subtests of the
// test that started it, each with its own Page.
func Start(t testing.TB) *Browser {
	t.Helper()
	exe := os.Getenv("ROSTER_TEST_CHROMIUM")
	if exe == "" {
		testenv.Missing(t, "Chromium (ROSTER_TEST_CHROMIUM)")
	}
	axePath := os.Getenv("ROSTER_TEST_AXE")
	if axePath == "" {
		testenv.Missing(t, "axe-core (ROSTER_TEST_AXE, the path of axe.min.js)")
	}
	axe, err := os.ReadFile(axePath)
	if err != nil {
		t.Fatalf("read axe-core: %v", err)
	}
	shots := os.Getenv("ROSTER_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatalf("screenshot folder: %v", err)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// The rest keep a shared, loaded machine from changing what a test
		// sees: no throttled timers in tabs Chromium thinks are hidden, no
		// /dev/shm exhaustion in containers, no prompts.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// The first Do starts the browser (and a first tab, unused). The
	// browser lives as long as the context of that first call, so the
	// start is bounded by a timer that cancels it rather than by a child
	// context with a deadline.
	timer := time.AfterFunc(time.Minute, cancel)
	err = chromedp.Do(ctx)
	timer.Stop()
	if err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return &Browser{ctx: ctx, axe: string(axe), screenshots: shots}
}

// ScreenshotDir is where Screenshot writes: ROSTER_SCREENSHOTS, or a
// temporary folder of the test that started the browser.
func (b *Browser) ScreenshotDir() string { return b.screenshots }

// Page is one tab in a fresh incognito browser context: no cookies or
// storage shared with other pages.
type Page struct {
	t    testing.TB
	b    *Browser
	ctx  context.Context
	base *url.URL

	mu       sync.Mutex
	problems []string
	tolerate []string
}

// NewPage opens a tab in a new incognito context for t; relative paths
// given to its helpers resolve against baseURL, whose origin may use the
// clipboard. The page closes when t ends, and fails t if the page logged
// an error that was not tolerated.
func (b *Browser) NewPage(t testing.TB, baseURL string) *Page {
	t.Helper()
	base, err := url.Parse(baseURL)
	if err != nil {
		t.Fatalf("base URL: %v", err)
	}
	// Chromium asks for /favicon.ico by itself; a page without one is not
	// broken.
	p := &Page{t: t, b: b, base: base, tolerate: []string{"/favicon.ico"}}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.observe))
	p.ctx = ctx
	t.Cleanup(func() {
		cancel()
		if probs := p.TakeProblems(); len(probs) > 0 {
			t.Errorf("the page logged errors:\n  %s", strings.Join(probs, "\n  "))
		}
	})
	// As in Start: the tab lives as long as the context of its first Do.
	timer := time.AfterFunc(Timeout, cancel)
	err = chromedp.Do(ctx)
	timer.Stop()
	if err != nil {
		t.Fatalf("open tab: %v", err)
	}
	startCtx, cancelStart := context.WithTimeout(ctx, Timeout)
	defer cancelStart()
	bctx := chromedp.FromContext(ctx).BrowserContextID
	origin := base.Scheme + "://" + base.Host
	// Browser.setPermission, per permission: the protocol's older
	// Browser.grantPermissions is gone from the cdproto chromedp uses.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(startCtx, browser.SetPermission, browser.SetPermissionParams{
			Permission:       &browser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
			Setting:          browser.PermissionSettingGranted,
			Origin:           origin,
			BrowserContextID: bctx,
		})
		if err != nil {
			t.Fatalf("grant %s: %v", name, err)
		}
	}
	// The clipboard API wants a focused document; a headless tab that is
	// not in front is not focused unless told to act as if it were.
	if _, err := chromedp.Call(startCtx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		t.Fatalf("focus emulation: %v", err)
	}
	return p
}

// DisableScripts turns off the page's JavaScript from the next navigation
// on, as a user with JavaScript off has it; the helpers still work.
func (p *Page) DisableScripts() {
	p.t.Helper()
	ctx, cancel := p.timeout()
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		p.t.Fatalf("disable scripts: %v", err)
	}
}

// observe records what the page reports as an error. It runs on the tab's
// event loop, so it only appends.
func (p *Page) observe(ev any) {
	var msg string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg = "uncaught exception: " + d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		if d.URL != "" {
			msg += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
		}
	case *log.EventEntryAdded:
		// Errors of every source: javascript, network (a failed load),
		// security (a CSP violation), ...
		if e.Entry.Level != log.EntryLevelError {
			return
		}
		msg = fmt.Sprintf("console %s error: %s", e.Entry.Source, e.Entry.Text)
		if e.Entry.URL != "" {
			msg += " (" + e.Entry.URL + ")"
		}
	case *runtime.EventConsoleAPICalled:
		if e.Type != runtime.ConsoleAPICalledTypeError && e.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range e.Args {
			switch {
			case len(a.Value) > 0:
				parts = append(parts, string(a.Value))
			case a.Description != "":
				parts = append(parts, a.Description)
			}
		}
		msg = "console." + string(e.Type) + ": " + strings.Join(parts, " ")
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.tolerate {
		if strings.Contains(msg, s) {
			return
		}
	}
	p.problems = append(p.problems, msg)
}

// Tolerate lets console errors that contain substr pass from now on: for a
// test that provokes one on purpose (a 404 page, a refused fetch).
func (p *Page) Tolerate(substr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tolerate = append(p.tolerate, substr)
}

// TakeProblems returns the errors the page logged so far and forgets them.
func (p *Page) TakeProblems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.problems
	p.problems = nil
	return out
}

// CheckProblems fails the test now if the page logged errors.
func (p *Page) CheckProblems() {
	p.t.Helper()
	if probs := p.TakeProblems(); len(probs) > 0 {
		p.t.Fatalf("the page logged errors:\n  %s", strings.Join(probs, "\n  "))
	}
}

func (p *Page) timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.ctx, Timeout)
}

// URL resolves a path against the page's base URL.
func (p *Page) URL(path string) string {
	u, err := p.base.Parse(path)
	if err != nil {
		p.t.Fatalf("URL %q: %v", path, err)
	}
	return u.String()
}

// Go navigates to path (relative to the base URL) and waits for the load
// event. It returns the HTTP status of the document.
func (p *Page) Go(path string) int {
	p.t.Helper()
	ctx, cancel := p.timeout()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(p.URL(path)))
	if err != nil {
		p.t.Fatalf("navigate to %s: %v", path, err)
	}
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// Location is the page's current URL.
func (p *Page) Location() string {
	p.t.Helper()
	ctx, cancel := p.timeout()
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		p.t.Fatalf("location: %v", err)
	}
	return loc
}

// Path is the path (and query) of the page's current URL.
func (p *Page) Path() string {
	p.t.Helper()
	u, err := url.Parse(p.Location())
	if err != nil {
		p.t.Fatalf("location: %v", err)
	}
	return u.RequestURI()
}

// Click clicks the first element matching the CSS selector, once it is
// visible, with real mouse events (so the page sees a user gesture).
func (p *Page) Click(sel string) {
	p.t.Helper()
	ctx, cancel := p.timeout()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		p.t.Fatalf("click %s on %s: %v", sel, p.Location(), err)
	}
}

// ClickNav clicks sel and waits for the navigation it causes (a link, a
// form post and its 303) to load.
func (p *Page) ClickNav(sel string) {
	p.t.Helper()
	ctx, cancel := p.timeout()
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel))))
	if err != nil {
		p.t.Fatalf("click %s on %s and wait for the next page: %v", sel, p.Location(), err)
	}
}

// Fill replaces the value of the input or textarea sel by typing value into
// it, as a user does.
func (p *Page) Fill(sel, value string) {
	p.t.Helper()
	ctx, cancel := p.timeout()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), value)); err != nil {
		p.t.Fatalf("fill %s on %s: %v", sel, p.Location(), err)
	}
}

// Select chooses the option with value in the select element sel, and
// fires the input and change events a user's choice fires.
func (p *Page) Select(sel, value string) {
	p.t.Helper()
	ok := Eval[bool](p, `((sel, v) => {
		const el = document.querySelector(sel);
		if (!el || ![...el.options].some(o => o.value === v)) return false;
		el.value = v;
		el.dispatchEvent(new Event('input', {bubbles: true}));
		el.dispatchEvent(new Event('change', {bubbles: true}));
		return true;
	})(`+jsString(sel)+`, `+jsString(value)+`)`)
	if !ok {
		p.t.Fatalf("select %q in %s: no such select or option on %s", value, sel, p.Location())
	}
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its JSON result.
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	v, err := tryEval[T](p, expr)
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", short(expr), err)
	}
	return v
}

func tryEval[T any](p *Page, expr string) (T, error) {
	ctx, cancel := p.timeout()
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// textJS reads an element's value (form controls) or its trimmed text, or
// null when there is no such element.
const textJS = `((sel) => {
	const el = document.querySelector(sel);
	if (!el) return null;
	if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) return el.value;
	return el.textContent.replace(/\s+/g, ' ').trim();
})(%s)`

// Text is the trimmed text of the first element matching sel (whitespace
// runs folded to one space), or the value of a form control; the test
// fails if there is no such element by the time limit.
func (p *Page) Text(sel string) string {
	p.t.Helper()
	var got *string
	p.wait("element "+sel, func() (bool, string) {
		v, err := tryEval[*string](p, fmt.Sprintf(textJS, jsString(sel)))
		if err != nil {
			return false, err.Error()
		}
		got = v
		return v != nil, "not present"
	})
	return *got
}

// Texts is the text of every element matching sel, in document order.
func (p *Page) Texts(sel string) []string {
	p.t.Helper()
	return Eval[[]string](p, `[...document.querySelectorAll(`+jsString(sel)+`)].map(el => el.textContent.replace(/\s+/g, ' ').trim())`)
}

// Count is how many elements match sel now.
func (p *Page) Count(sel string) int {
	p.t.Helper()
	return Eval[int](p, `document.querySelectorAll(`+jsString(sel)+`).length`)
}

// Exists reports whether an element matches sel now.
func (p *Page) Exists(sel string) bool {
	p.t.Helper()
	return p.Count(sel) > 0
}

// Attr is the attribute name of the first element matching sel ("" when
// absent); the element must exist.
func (p *Page) Attr(sel, name string) string {
	p.t.Helper()
	p.WaitFor(sel)
	return Eval[string](p, `document.querySelector(`+jsString(sel)+`).getAttribute(`+jsString(name)+`) ?? ""`)
}

// WaitFor waits until an element matches sel.
func (p *Page) WaitFor(sel string) {
	p.t.Helper()
	p.wait("element "+sel, func() (bool, string) {
		n, err := tryEval[int](p, `document.querySelectorAll(`+jsString(sel)+`).length`)
		if err != nil {
			return false, err.Error()
		}
		return n > 0, "not present"
	})
}

// WaitGone waits until no element matches sel.
func (p *Page) WaitGone(sel string) {
	p.t.Helper()
	p.wait("no element "+sel, func() (bool, string) {
		n, err := tryEval[int](p, `document.querySelectorAll(`+jsString(sel)+`).length`)
		if err != nil {
			return false, err.Error()
		}
		return n == 0, fmt.Sprintf("%d present", n)
	})
}

// WaitText waits until the text of the first element matching sel
// contains substr, and returns that text.
func (p *Page) WaitText(sel, substr string) string {
	p.t.Helper()
	var got string
	p.wait(fmt.Sprintf("%s containing %q", sel, substr), func() (bool, string) {
		v, err := tryEval[*string](p, fmt.Sprintf(textJS, jsString(sel)))
		if err != nil {
			return false, err.Error()
		}
		if v == nil {
			return false, "not present"
		}
		got = *v
		return strings.Contains(got, substr), fmt.Sprintf("text %q", short(got))
	})
	return got
}

// WaitCount waits until exactly n elements match sel.
func (p *Page) WaitCount(sel string, n int) {
	p.t.Helper()
	p.wait(fmt.Sprintf("%d elements %s", n, sel), func() (bool, string) {
		got, err := tryEval[int](p, `document.querySelectorAll(`+jsString(sel)+`).length`)
		if err != nil {
			return false, err.Error()
		}
		return got == n, fmt.Sprintf("%d present", got)
	})
}

// WaitJS waits until the expression is true in the page.
func (p *Page) WaitJS(what, expr string) {
	p.t.Helper()
	p.wait(what, func() (bool, string) {
		ok, err := tryEval[bool](p, `!!(`+expr+`)`)
		if err != nil {
			return false, err.Error()
		}
		return ok, "false"
	})
}

// Becomes waits until the expression is true in the page and reports
// whether it became true within Timeout, without failing the test: for a
// check whose failure should not stop the rest of the test.
func (p *Page) Becomes(expr string) bool {
	p.t.Helper()
	_, ok := p.poll(func() (bool, string) {
		ok, err := tryEval[bool](p, `!!(`+expr+`)`)
		if err != nil {
			return false, err.Error()
		}
		return ok, "false"
	})
	return ok
}

// wait polls cond until it holds, failing the test if Timeout passes
// first.
func (p *Page) wait(what string, cond func() (bool, string)) {
	p.t.Helper()
	if last, ok := p.poll(cond); !ok {
		loc, _ := tryEval[string](p, `location.href`)
		p.t.Fatalf("wait for %s on %s: not true after %v: %s", what, loc, Timeout, last)
	}
}

// poll calls cond until it holds or Timeout passes, and returns its last
// message. Evaluation errors (a page between two documents) count as "not
// yet".
func (p *Page) poll(cond func() (bool, string)) (string, bool) {
	deadline := time.Now().Add(Timeout)
	for {
		ok, msg := cond()
		if ok {
			return "", true
		}
		if time.Now().After(deadline) {
			return msg, false
		}
		select {
		case <-p.ctx.Done():
			return p.ctx.Err().Error(), false
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Copy clicks sel (a copy button) and returns the text it put on the
// clipboard. The clipboard is one for the whole browser, shared by every
// page and incognito context, so Copy holds it from before the click until
// it has read what the click wrote: parallel tests cannot read each other's
// copies.
func (p *Page) Copy(sel string) string {
	p.t.Helper()
	p.b.clipboard.Lock()
	defer p.b.clipboard.Unlock()
	const sentinel = "\x00roster-browser-test-clipboard"
	Eval[bool](p, `navigator.clipboard.writeText(`+jsString(sentinel)+`).then(() => true)`)
	p.Click(sel)
	var got string
	p.wait("the clipboard to change after clicking "+sel, func() (bool, string) {
		v, err := tryEval[string](p, `navigator.clipboard.readText()`)
		if err != nil {
			return false, err.Error()
		}
		got = v
		return v != sentinel, "unchanged"
	})
	return got
}

// Cookie is the named cookie the browser holds for the page's base URL
// (HttpOnly ones included), or nil.
func (p *Page) Cookie(name string) *network.Cookie {
	p.t.Helper()
	ctx, cancel := p.timeout()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.base.String()}})
	if err != nil {
		p.t.Fatalf("get cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Screenshot writes a PNG of the whole page to name.png in the browser's
// screenshot folder and returns its path.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := p.timeout()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(p.b.screenshots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	return path
}

// Violation is one axe-core rule the page breaks.
type Violation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s (%s): %s; at %s", v.ID, v.Impact, v.Help, strings.Join(v.Targets, ", "))
}

// axeRunJS runs axe-core on the document and returns its violations.
const axeRunJS = `axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({
	id: v.id, impact: v.impact || '', help: v.help,
	targets: v.nodes.map(n => n.target.join(' '))
})))`

// AxeViolations runs axe-core in the page (injecting it first) and returns
// every violation it finds.
func (p *Page) AxeViolations() []Violation {
	p.t.Helper()
	if !Eval[bool](p, `typeof window.axe === 'object'`) {
		// Evaluated through the protocol, so the page's CSP does not apply
		// to the injection and the page's own policy stays untouched.
		ctx, cancel := p.timeout()
		defer cancel()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[*runtime.RemoteObject](p.b.axe)); err != nil {
			p.t.Fatalf("inject axe-core: %v", err)
		}
	}
	return Eval[[]Violation](p, axeRunJS)
}

// Axe fails the test if the page has a serious or critical accessibility
// violation, listing each with its rule, impact and the offending nodes.
func (p *Page) Axe() {
	p.t.Helper()
	var bad []string
	for _, v := range p.AxeViolations() {
		if v.Impact == "serious" || v.Impact == "critical" {
			bad = append(bad, v.String())
		}
	}
	if len(bad) > 0 {
		p.t.Errorf("axe on %s: %d serious or critical violations:\n  %s", p.Path(), len(bad), strings.Join(bad, "\n  "))
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func short(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
