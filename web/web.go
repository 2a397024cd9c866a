// Package web serves the admin page, "Active Directory Management": sign-in
// with an admin token into a server-side session, then, per team, the SSO
// prerequisites, the directory set-up wizard, groups and their spend
// limits, members and why each has their limit, held changes,
// troubleshooting, activity, webhooks and settings.
//
// Every read and write goes through the admin API in-process, as the
// session's principal (Backend), so authorization lives in the API alone;
// only sessions are the page's own, kept in the store. Pages are rendered
// on the server with html/template and work without JavaScript; the one
// script (static/app.js) adds copy buttons and live updates from the
// team's event stream.
package web

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed static templates
var files embed.FS

// csp is the Content-Security-Policy of every answer: no inline script or
// style, nothing from elsewhere.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Options configure the page.
type Options struct {
	Backend   Backend
	Sessions  Sessions
	PublicURL string
	Log       *slog.Logger
}

// Handler serves the page.
type Handler struct {
	// IdleTimeout and MaxAge bound a session (defaults 30 min, 12 h).
	IdleTimeout, MaxAge time.Duration
	// Now is the clock sessions are timed by (tests move it); nil is
	// time.Now.
	Now func() time.Time
	// PublicURL is roster's public URL; https makes cookies Secure.
	PublicURL string

	backend  Backend
	sessions Sessions
	logger   *slog.Logger
	mux      *http.ServeMux
	pages    map[string]*template.Template
	assets   http.Handler
}

// New builds the page's handler.
func New(o Options) (*Handler, error) {
	h := &Handler{backend: o.Backend, sessions: o.Sessions, PublicURL: o.PublicURL, logger: o.Log}
	if err := h.parse(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		return nil, fmt.Errorf("web assets: %w", err)
	}
	h.assets = http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	h.routes()
	return h, nil
}

func (h *Handler) log() *slog.Logger {
	if h.logger != nil {
		return h.logger
	}
	return slog.Default()
}

func (h *Handler) parse() error {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return fmt.Errorf("parse layout: %w", err)
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return err
	}
	h.pages = map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(files, n)
		if err != nil {
			return fmt.Errorf("parse %s: %w", n, err)
		}
		h.pages[name] = t
	}
	return nil
}

// ServeHTTP serves every page path with the security headers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	m.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.assets.ServeHTTP(w, r)
	}))
	m.HandleFunc("GET /{$}", h.root)
	m.HandleFunc("GET /signin", h.signinPage)
	m.HandleFunc("POST /signin", h.signin)
	m.HandleFunc("POST /signout", h.form(h.signout))
	m.HandleFunc("GET /teams", h.page(h.teams))

	m.HandleFunc("GET /teams/{team}", h.teamPage(h.overview))
	m.HandleFunc("POST /teams/{team}/sso", h.teamForm(h.postSSO))
	m.HandleFunc("GET /teams/{team}/setup", h.teamPage(h.setup))
	m.HandleFunc("POST /teams/{team}/directories", h.teamForm(h.createDirectory))
	m.HandleFunc("GET /teams/{team}/directories/{dir}", h.teamPage(h.directory))
	m.HandleFunc("GET /teams/{team}/directories/{dir}/setup", h.teamPage(h.directorySetup))
	m.HandleFunc("POST /teams/{team}/directories/{dir}/{action}", h.teamForm(h.directoryAction))
	m.HandleFunc("GET /teams/{team}/groups", h.teamPage(h.groups))
	m.HandleFunc("GET /teams/{team}/groups/{group}/edit", h.teamPage(h.editGroup))
	m.HandleFunc("POST /teams/{team}/groups/{group}/edit", h.teamForm(h.editGroup))
	m.HandleFunc("POST /teams/{team}/groups/{group}/limit", h.teamForm(h.postGroupLimit))
	m.HandleFunc("GET /teams/{team}/members", h.teamPage(h.members))
	m.HandleFunc("GET /teams/{team}/review", h.teamPage(h.review))
	m.HandleFunc("GET /teams/{team}/activity", h.teamPage(h.activity))
	m.HandleFunc("GET /teams/{team}/webhooks", h.teamPage(h.webhooks))
	m.HandleFunc("POST /teams/{team}/webhooks", h.teamForm(h.createWebhook))
	m.HandleFunc("POST /teams/{team}/webhooks/{id}/{action}", h.teamForm(h.webhookAction))
	m.HandleFunc("GET /teams/{team}/settings", h.teamPage(h.settings))
	m.HandleFunc("POST /teams/{team}/settings/limit", h.teamForm(h.postTeamLimit))
	m.HandleFunc("POST /teams/{team}/admin-tokens", h.teamForm(h.createAdminToken))
	m.HandleFunc("POST /teams/{team}/admin-tokens/{id}/delete", h.teamForm(h.deleteAdminToken))
	m.HandleFunc("GET /teams/{team}/live", h.live)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, nil, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	})
	h.mux = m
}

// view is what every page template gets.
type view struct {
	Title  string
	S      *session
	Team   *team
	Nav    string
	Status string            // a status message (role=status)
	Error  string            // an error for the whole page (#error)
	Path   string            // the screen's path and query, re-read by live updates
	Live   bool              // the screen follows the team's event stream
	Poll   bool              // the screen also re-reads itself every few seconds
	After  string            // the newest event when rendered: where the live stream starts
	V      any               // the screen's own data
	Fields map[string]string // a form's values shown again after an error
}

// render writes a page, or with ?fragment=main only its main element (the
// live updates' re-read).
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	t, ok := h.pages[name]
	if !ok {
		h.log().Error("web: no template", "name", name)
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	if v.Path == "" {
		v.Path = r.URL.Path
		if q := r.URL.Query(); len(q) > 0 {
			q.Del("fragment")
			if e := q.Encode(); e != "" {
				v.Path += "?" + e
			}
		}
	}
	tmpl := "layout"
	if r.URL.Query().Get("fragment") == "main" {
		tmpl = "main-element"
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, tmpl, v); err != nil {
		h.log().Error("web: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered; see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if v.S != nil {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// errorPage answers status with #error saying msg.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	v := &view{Title: http.StatusText(status), S: s, Error: msg}
	if s != nil && s.Principal.TeamID != "" {
		v.Team = &team{ID: s.Principal.TeamID, Name: s.Principal.TeamID}
	}
	h.render(w, r, status, "error", v)
}

// fail answers an error from the API or the server.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status := statusOf(err)
	if status >= 500 {
		h.log().Error("web", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	h.errorPage(w, r, s, status, messageOf(err))
}

func (h *Handler) root(w http.ResponseWriter, r *http.Request) {
	s, err := h.loadSession(r)
	switch {
	case errors.Is(err, errNoSession):
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
	case err != nil:
		h.fail(w, r, nil, err)
	default:
		http.Redirect(w, r, home(s.Principal), http.StatusSeeOther)
	}
}

func home(p Principal) string {
	if p.Operator {
		return "/teams"
	}
	return "/teams/" + url.PathEscape(p.TeamID)
}

// page wraps a signed-in GET screen.
func (h *Handler) page(f func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := h.loadSession(r)
		if errors.Is(err, errNoSession) {
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		f(w, r, s)
	}
}

// form wraps a signed-in POST: the session's CSRF token is required.
func (h *Handler) form(f func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		s, err := h.loadSession(r)
		if errors.Is(err, errNoSession) {
			h.errorPage(w, r, nil, http.StatusForbidden, "Your session has ended, so this form has expired. Sign in again and repeat the change.")
			return
		}
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		if !csrfOK(r, s.CSRF) {
			h.errorPage(w, r, s, http.StatusForbidden, "This form has expired or its CSRF token is missing: nothing was changed. Reload the page and try again.")
			return
		}
		f(w, r, s)
	}
}

// teamPage wraps a team screen: the team is read through the API as the
// session's principal, so a team token sees only its own team.
func (h *Handler) teamPage(f func(w http.ResponseWriter, r *http.Request, s *session, t *team)) http.HandlerFunc {
	return h.page(func(w http.ResponseWriter, r *http.Request, s *session) {
		t, err := h.team(r, s)
		if statusOf(err) == http.StatusUnauthorized {
			// The API no longer accepts the session's token: sign out.
			_ = h.endSession(w, r, s)
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		f(w, r, s, t)
	})
}

func (h *Handler) teamForm(f func(w http.ResponseWriter, r *http.Request, s *session, t *team)) http.HandlerFunc {
	return h.form(func(w http.ResponseWriter, r *http.Request, s *session) {
		t, err := h.team(r, s)
		if statusOf(err) == http.StatusUnauthorized {
			_ = h.endSession(w, r, s)
			h.errorPage(w, r, nil, http.StatusForbidden, "Your session has ended, so this form has expired. Sign in again and repeat the change.")
			return
		}
		if err != nil {
			h.fail(w, r, s, err)
			return
		}
		f(w, r, s, t)
	})
}

// back answers a form with 303 to path, with the status message of code
// (one of messages).
func back(w http.ResponseWriter, r *http.Request, path, code string) {
	if code != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "done=" + url.QueryEscape(code)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// messages are the status lines a 303 can carry back: codes in the URL, so
// a link cannot put words of its own on the page.
var messages = map[string]string{
	"sso-active":      "SSO is marked active.",
	"sso-inactive":    "SSO is marked inactive.",
	"limit-saved":     "The spend limit is saved.",
	"approved":        "Approved: the held removals are being applied.",
	"sync-queued":     "A poll is queued.",
	"webhook-enabled": "The endpoint is enabled; delivery resumes.",
	"webhook-replay":  "The endpoint's cursor moved back; the events are delivered again.",
	"webhook-deleted": "The endpoint is deleted.",
	"token-deleted":   "The admin token is deleted; its sessions have ended.",
	"connection-ok":   "Connection tested: the settings work.",
	"deleted":         "The directory is deleted.",
}

// done is the status message a 303 carried back.
func done(r *http.Request) string { return messages[r.URL.Query().Get("done")] }

func teamPath(t *team, rest string) string { return "/teams/" + url.PathEscape(t.ID) + rest }
