// Package console is the node's web console: operators, reviewers and
// auditors of a partner nation see and run the node from a browser.
//
// The console is served by the node under /console on the API's listener.
// It is built on the API's [api.Backend] (the same calls the JSON API
// makes), so it adds no second path to the store, and it authenticates the
// same way: a mapped client certificate, or a bearer token entered once at
// the login page and kept as a server-side session. Every form carries a
// per-session CSRF token, cookies are HttpOnly, Secure and SameSite=Strict,
// and pages load nothing from outside the node (no CDN): templates, CSS and
// a little JavaScript are embedded with go:embed. There is no front-end
// build step.
package console

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"liaison/internal/api"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Authenticator identifies callers as the API does.
type Authenticator interface {
	Authenticate(r *http.Request) *api.Principal
	TokenPrincipal(token string) *api.Principal
}

// Config configures the console.
type Config struct {
	Backend api.Backend
	Auth    Authenticator
	Logger  *slog.Logger
	// SessionTTL bounds a login. Default 8h.
	SessionTTL time.Duration
	// Now is the node's clock: for session expiry and the creation time
	// of messages sent from the console. Default time.Now.
	Now func() time.Time
}

// Console serves the web console.
type Console struct {
	cfg   Config
	mux   *http.ServeMux
	pages map[string]*template.Template
	log   *slog.Logger

	mu       sync.Mutex // guards sessions
	sessions map[string]*session
}

type session struct {
	principal *api.Principal
	csrf      string
	expires   time.Time
}

const cookieName = "liaison_session"

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Backend == nil || cfg.Auth == nil {
		return nil, errors.New("console: backend and authenticator are required")
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, sessions: map[string]*session{}, pages: map[string]*template.Template{}}
	for _, name := range []string{"login", "overview", "agreements", "channel", "quarantine", "audit"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	static, _ := fs.Sub(assets, "static")
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /console/login", c.loginPage)
	c.mux.HandleFunc("POST /console/login", c.login)
	c.mux.HandleFunc("POST /console/logout", c.authed(c.logout))
	c.mux.HandleFunc("GET /console/{$}", c.authed(c.overview))
	c.mux.HandleFunc("GET /console/agreements", c.authed(c.agreements))
	c.mux.HandleFunc("POST /console/agreements", c.authed(c.installAgreement))
	c.mux.HandleFunc("GET /console/channels/{channel}", c.authed(c.channel))
	c.mux.HandleFunc("POST /console/channels/{channel}/send", c.authed(c.send))
	c.mux.HandleFunc("GET /console/channels/{channel}/events", c.authed(c.events))
	c.mux.HandleFunc("GET /console/quarantine", c.authed(c.quarantine))
	c.mux.HandleFunc("POST /console/quarantine/{id}/{recipient}/{action}", c.authed(c.review))
	c.mux.HandleFunc("GET /console/audit", c.authed(c.audit))
	c.mux.HandleFunc("/console/", c.authed(c.notFound))
	return c, nil
}

// ServeHTTP implements http.Handler. It sets the headers every console
// response carries: no framing, no outside content, no caching.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// current returns the caller's session, creating one for a caller with a
// mapped client certificate.
func (c *Console) current(w http.ResponseWriter, r *http.Request) *session {
	now := c.cfg.Now()
	if ck, err := r.Cookie(cookieName); err == nil {
		c.mu.Lock()
		s, ok := c.sessions[ck.Value]
		if ok && now.After(s.expires) {
			delete(c.sessions, ck.Value)
			ok = false
		}
		c.mu.Unlock()
		if ok {
			return s
		}
	}
	if p := c.cfg.Auth.Authenticate(r); p != nil {
		return c.start(w, p)
	}
	return nil
}

func (c *Console) start(w http.ResponseWriter, p *api.Principal) *session {
	id := randomToken()
	s := &session{principal: p, csrf: randomToken(), expires: c.cfg.Now().Add(c.cfg.SessionTTL)}
	c.mu.Lock()
	c.sessions[id] = s
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/console", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode, MaxAge: int(c.cfg.SessionTTL / time.Second)})
	return s
}

type handler func(http.ResponseWriter, *http.Request, *session)

// authed requires a session, and a matching CSRF token on every POST.
func (c *Console) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.current(w, r)
		if s == nil {
			http.Redirect(w, r, "/console/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 2<<20)
			if err := r.ParseMultipartForm(2 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
				c.errorPage(w, r, s, http.StatusBadRequest, fmt.Sprintf("the form could not be read: %v", err))
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.FormValue("csrf")), []byte(s.csrf)) != 1 {
				c.errorPage(w, r, s, http.StatusForbidden, "the form's CSRF token is missing or stale; reload the page and try again")
				return
			}
		}
		h(w, r, s)
	}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if s := c.current(w, r); s != nil {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	c.render(w, r, nil, "login", http.StatusOK, map[string]any{"Party": c.cfg.Backend.Party()})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	p := c.cfg.Auth.TokenPrincipal(strings.TrimSpace(r.PostFormValue("token")))
	if p == nil {
		c.render(w, r, nil, "login", http.StatusUnauthorized, map[string]any{"Party": c.cfg.Backend.Party(), "Error": "That token is not valid on this node."})
		return
	}
	c.start(w, p)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if ck, err := r.Cookie(cookieName); err == nil {
		c.mu.Lock()
		delete(c.sessions, ck.Value)
		c.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// render executes a page inside the layout.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, page string, status int, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	data["Page"] = page
	data["Party"] = c.cfg.Backend.Party()
	if s != nil {
		data["User"] = s.principal.Name
		data["Roles"] = s.principal.Roles
		data["CSRF"] = s.csrf
	}
	if msg := r.URL.Query().Get("flash"); msg != "" {
		data["Flash"] = msg
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.pages[page].Execute(w, data); err != nil {
		c.log.ErrorContext(r.Context(), "console template failed", "page", page, "err", err)
	}
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	c.render(w, r, s, "overview", status, map[string]any{"Error": msg, "Back": backTo(r)})
}

// notFound answers a console path that names no page with a page that
// says so, inside the console's navigation.
func (c *Console) notFound(w http.ResponseWriter, r *http.Request, s *session) {
	c.errorPage(w, r, s, http.StatusNotFound, fmt.Sprintf("There is no console page %s.", r.URL.Path))
}

// backTo is the page a user returns to from an error: the page whose form
// failed, or the one that failed to load.
func backTo(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/console/quarantine/"):
		return "/console/quarantine"
	case strings.HasPrefix(p, "/console/channels/") && strings.HasSuffix(p, "/send"):
		return strings.TrimSuffix(p, "/send")
	case r.Method == http.MethodGet && p != "/console/":
		return "/console/"
	}
	return p
}

// apiError turns a backend error into text for a page.
func apiError(err error) (int, string) {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Status, ae.Message
	}
	return http.StatusInternalServerError, "internal error; see the node log"
}

// need checks that the session holds one of roles, answering 403 if not.
func (c *Console) need(w http.ResponseWriter, r *http.Request, s *session, roles ...api.Role) bool {
	if s.principal.Has(roles...) {
		return true
	}
	c.errorPage(w, r, s, http.StatusForbidden, fmt.Sprintf("this needs one of the roles %v; you hold %v", roles, s.principal.Roles))
	return false
}
