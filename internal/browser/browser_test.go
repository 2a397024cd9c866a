package browser_test

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/roster-dev/roster/internal/browser"
)

const csp = "default-src 'self'; frame-ancestors 'none'"

// site is a small site with the same strict CSP as roster's page: a page
// that uses the clipboard and a cookie, and pages that break the rules the
// helpers must catch.
func site() http.Handler {
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>t</title></head><body><main>%s</main></body></html>`, body)
		}
	}
	mux.HandleFunc("/good", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sess", Value: "s3cret", HttpOnly: true, SameSite: http.SameSiteStrictMode, Path: "/"})
		page(`<h1>Good</h1>
			<p>Token: <code id="tok">`+tok(r)+`</code> <button type="button" class="copy" data-copy-target="tok">Copy</button></p>
			<label for="name">Name</label> <input id="name" name="name" value="old">
			<label for="mode">Mode</label> <select id="mode"><option value="a">A</option><option value="b">B</option></select>
			<p id="changed"></p>
			<script src="/good.js"></script>`)(w, r)
	})
	mux.HandleFunc("/good.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `
			document.querySelector('button.copy').addEventListener('click', async (e) => {
				const el = document.getElementById(e.target.dataset.copyTarget);
				await navigator.clipboard.writeText(el.textContent);
				e.target.textContent = 'Copied';
			});
			document.getElementById('mode').addEventListener('change', (e) => {
				document.getElementById('changed').textContent = 'mode ' + e.target.value;
			});`)
	})
	mux.HandleFunc("/inline", page(`<h1>Inline</h1><script>document.title = 'ran';</script>`))
	mux.HandleFunc("/throws", page(`<h1>Throws</h1><script src="/throws.js"></script>`))
	mux.HandleFunc("/throws.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `throw new Error('boom from the page');`)
	})
	mux.HandleFunc("/inaccessible", page(`<h1>Bad</h1><img src="/nothing.png"><button type="button"></button>
		<link rel="stylesheet" href="/faint.css"><p class="faint">faint</p>`))
	mux.HandleFunc("/faint.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, `.faint { color: #ccc; background: #fff; }`)
	})
	mux.HandleFunc("/nothing.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
	})
	return mux
}

// tok is the token /good shows: ?tok= or abc-123.
func tok(r *http.Request) string {
	if v := r.URL.Query().Get("tok"); v != "" {
		return html.EscapeString(v)
	}
	return "abc-123"
}

func TestBrowser(t *testing.T) {
	b := browser.Start(t)
	srv := httptest.NewServer(site())
	t.Cleanup(srv.Close)

	t.Run("HelpersOnAGoodPage", func(t *testing.T) {
		p := b.NewPage(t, srv.URL)
		if status := p.Go("/good"); status != 200 {
			t.Fatalf("status %d, want 200", status)
		}
		if got := p.Text("#tok"); got != "abc-123" {
			t.Errorf("Text(#tok) = %q, want abc-123", got)
		}
		if got := p.Text("#name"); got != "old" {
			t.Errorf("Text(#name) = %q, want the input's value old", got)
		}
		p.Fill("#name", "new value")
		if got := p.Text("#name"); got != "new value" {
			t.Errorf("after Fill, Text(#name) = %q", got)
		}
		p.Select("#mode", "b")
		p.WaitText("#changed", "mode b")

		if got := p.Copy("button.copy"); got != "abc-123" {
			t.Errorf("clipboard = %q, want abc-123", got)
		}
		p.WaitText("button.copy", "Copied")

		c := p.Cookie("sess")
		if c == nil || c.Value != "s3cret" || !c.HTTPOnly {
			t.Errorf("cookie sess = %+v, want the HttpOnly cookie s3cret", c)
		}
		if v := p.AxeViolations(); len(v) != 0 {
			t.Errorf("axe on an accessible page: %v", v)
		}
		p.Axe()

		path := p.Screenshot("good")
		png, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s is not a PNG", path)
		}
		if probs := p.TakeProblems(); len(probs) != 0 {
			t.Errorf("a clean page logged: %v", probs)
		}
	})

	t.Run("DisableScripts", func(t *testing.T) {
		p := b.NewPage(t, srv.URL)
		p.DisableScripts()
		p.Go("/good")
		p.Select("#mode", "b")
		if got := p.Text("#changed"); got != "" {
			t.Errorf("the page's script ran with scripts disabled: #changed = %q", got)
		}
	})

	t.Run("CopiesInParallelPagesDoNotMix", func(t *testing.T) {
		for _, v := range []string{"first", "second", "third"} {
			t.Run(v, func(t *testing.T) {
				t.Parallel()
				p := b.NewPage(t, srv.URL)
				p.Go("/good?tok=" + v)
				for range 5 {
					if got := p.Copy("button.copy"); got != v {
						t.Errorf("copied %q, want %q", got, v)
					}
				}
			})
		}
	})

	t.Run("PagesDoNotShareCookies", func(t *testing.T) {
		first := b.NewPage(t, srv.URL)
		first.Go("/good")
		if first.Cookie("sess") == nil {
			t.Fatal("no cookie after /good")
		}
		second := b.NewPage(t, srv.URL)
		second.Go("/inline")
		second.TakeProblems()
		if c := second.Cookie("sess"); c != nil {
			t.Errorf("a new page sees the other page's cookie %+v", c)
		}
	})

	t.Run("CSPViolationIsAProblem", func(t *testing.T) {
		p := b.NewPage(t, srv.URL)
		p.Go("/inline")
		if title := browser.Eval[string](p, `document.title`); title == "ran" {
			t.Fatal("the inline script ran despite the CSP")
		}
		probs := waitProblems(t, p)
		if !anyContains(probs, "Content Security Policy") {
			t.Errorf("problems = %q, want a CSP violation", probs)
		}
	})

	t.Run("UncaughtExceptionIsAProblem", func(t *testing.T) {
		p := b.NewPage(t, srv.URL)
		p.Go("/throws")
		probs := waitProblems(t, p)
		if !anyContains(probs, "boom from the page") {
			t.Errorf("problems = %q, want the uncaught exception", probs)
		}
	})

	t.Run("TolerateLetsAnExpectedErrorPass", func(t *testing.T) {
		p := b.NewPage(t, srv.URL)
		p.Tolerate("boom from the page")
		p.Go("/throws")
		p.Go("/good")
		if probs := p.TakeProblems(); len(probs) != 0 {
			t.Errorf("tolerated error recorded: %v", probs)
		}
	})

	t.Run("AxeFindsViolations", func(t *testing.T) {
		p := b.NewPage(t, srv.URL)
		p.Go("/inaccessible")
		byID := map[string]browser.Violation{}
		for _, v := range p.AxeViolations() {
			byID[v.ID] = v
		}
		for _, id := range []string{"image-alt", "button-name", "color-contrast"} {
			v, ok := byID[id]
			if !ok {
				t.Errorf("axe did not report %s; got %v", id, byID)
				continue
			}
			if v.Impact != "critical" && v.Impact != "serious" {
				t.Errorf("%s impact %q, want serious or critical", id, v.Impact)
			}
			if len(v.Targets) == 0 {
				t.Errorf("%s names no node", id)
			}
		}
		p.TakeProblems()
	})
}

// waitProblems waits (briefly, through the page's event loop) until the page
// has recorded at least one problem, and takes them.
func waitProblems(t *testing.T, p *browser.Page) []string {
	t.Helper()
	var probs []string
	for range 200 {
		probs = append(probs, p.TakeProblems()...)
		if len(probs) > 0 {
			return probs
		}
		browser.Eval[bool](p, `new Promise(r => setTimeout(() => r(true), 10))`)
	}
	return probs
}

func anyContains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
