// Package portal is keygate's web interface: the developer portal (sign up,
// sign in, keys, usage) and the operators' admin pages, under /portal.
//
// Pages are rendered on the server with html/template; templates, styles
// and the one script (the copy button) are embedded in the binary. Every
// write goes through manage, as the admin API's do, so it is audited.
// Sessions live in the store (keygate.SessionStore), which holds only the
// SHA-256 of the cookie's token. Every form is protected against
// cross-site requests twice: net/http's CrossOriginProtection, and a token
// derived from the session in every signed-in form.
package portal

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/problem"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Registration says who may create an account (--registration).
type Registration string

// Registration modes.
const (
	RegistrationOpen   Registration = "open"   // anyone may sign up
	RegistrationClosed Registration = "closed" // only the operator creates accounts
	RegistrationInvite Registration = "invite" // sign-up needs an invitation code
)

// Invites redeems invitation codes when registration is by invitation.
type Invites interface {
	// Redeem uses up code for the account about to be created with email,
	// or returns an EINVALID error that says why it cannot.
	Redeem(ctx context.Context, code, email string) error
}

// SignupLimiter bounds sign-up attempts per client IP; engine.IPThrottle
// (--registration-limit) is one, so the portal and POST /v1/register can
// share one budget.
type SignupLimiter interface {
	Take(ip netip.Addr, now time.Time) (retryAfter time.Duration, ok bool)
}

// RootKeys authenticates root keys from memory; engine.Engine is one.
type RootKeys interface {
	RootKey(presented string) (*keygate.RootKey, bool)
}

// Defaults of the Server's durations and limits.
const (
	DefaultSessionTTL      = 12 * time.Hour
	DefaultAdminSessionTTL = time.Hour
	// Sign-in attempts: an email address may fail this often per window,
	// a client IP a few times more (it may be a shared address).
	DefaultLoginFailuresPerAccount = 5
	DefaultLoginFailuresPerIP      = 20
	DefaultLoginWindow             = 15 * time.Minute
)

// maxFormBytes bounds a form's body.
const maxFormBytes = 64 << 10

// Server serves the portal. Set its fields, then call Handler once.
type Server struct {
	Store    keygate.Store
	Manage   *manage.Service
	RootKeys RootKeys
	Logger   *slog.Logger

	// Registration is the sign-up mode; empty means open. Invites is
	// asked about codes in invite mode; without it, invite mode refuses
	// every sign-up.
	Registration Registration
	Invites      Invites
	// SignupLimit, when not nil, refuses sign-up attempts from a client IP
	// over its budget with 429.
	SignupLimit SignupLimiter

	// Scopes are the scopes a developer may give their keys; none offered
	// means keys without scopes.
	Scopes []string

	// SecureCookies marks cookies Secure even on plain HTTP (behind a
	// proxy that terminates TLS); a request over TLS always gets them.
	SecureCookies bool
	// TrustedProxies are the networks whose X-Forwarded-For is believed
	// for the client IP (login throttling, session records).
	TrustedProxies []netip.Prefix

	SessionTTL      time.Duration // a developer's session; 0 means DefaultSessionTTL
	AdminSessionTTL time.Duration // a root key's session; 0 means DefaultAdminSessionTTL
	// Password hashing costs; zero means DefaultPasswordParams.
	Password PasswordParams

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	pages         map[string]*template.Template
	accountLogins *throttle
	ipLogins      *throttle
	dummyHash     string
	lastPrune     atomic.Int64 // Unix seconds of the last session pruning
}

// handlerFunc is a page handler that returns its error for one function,
// Server.fail, to render.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) passwordParams() PasswordParams {
	if s.Password == (PasswordParams{}) {
		return DefaultPasswordParams
	}
	return s.Password
}

func (s *Server) registration() Registration {
	if s.Registration == "" {
		return RegistrationOpen
	}
	return s.Registration
}

// Handler returns the portal's handler for every path under /portal. It
// panics if the embedded templates do not parse, which a test catches.
func (s *Server) Handler() http.Handler {
	s.pages = parsePages()
	s.accountLogins = newThrottle(DefaultLoginFailuresPerAccount, DefaultLoginWindow)
	s.ipLogins = newThrottle(DefaultLoginFailuresPerIP, DefaultLoginWindow)
	// Signing in to an unknown email checks the password against this
	// hash, so that the answer takes as long as for a known one.
	var err error
	if s.dummyHash, err = HashPassword("keygate: no such account", s.passwordParams()); err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /portal/static/", http.StripPrefix("/portal/static/", staticHandler(static)))
	for pattern, h := range map[string]handlerFunc{
		"GET /portal":                               s.home,
		"GET /portal/{$}":                           s.home,
		"GET /portal/signup":                        s.signupForm,
		"POST /portal/signup":                       s.signup,
		"GET /portal/login":                         s.loginForm,
		"POST /portal/login":                        s.login,
		"POST /portal/logout":                       s.signedIn(s.logout),
		"GET /portal/password":                      s.developer(s.passwordForm),
		"POST /portal/password":                     s.developer(s.changePassword),
		"POST /portal/sessions/revoke":              s.developer(s.revokeOtherSessions),
		"GET /portal/keys":                          s.developer(s.keysPage),
		"POST /portal/keys":                         s.developer(s.createKey),
		"POST /portal/keys/{id}/rotate":             s.developer(s.rotateKey),
		"GET /portal/keys/{id}/revoke":              s.developer(s.revokeForm),
		"POST /portal/keys/{id}/revoke":             s.developer(s.revokeKey),
		"GET /portal/usage":                         s.developer(s.usagePage),
		"GET /portal/admin/login":                   s.adminLoginForm,
		"POST /portal/admin/login":                  s.adminLogin,
		"GET /portal/admin":                         s.admin(keygate.PermAdminRead, s.adminUsage),
		"GET /portal/admin/accounts":                s.admin(keygate.PermAdminRead, s.adminAccounts),
		"POST /portal/admin/accounts/{id}/tier":     s.admin(keygate.PermAdminWrite, s.adminAccountTier),
		"POST /portal/admin/accounts/{id}/disable":  s.admin(keygate.PermAdminWrite, s.adminAccountDisabled(true)),
		"POST /portal/admin/accounts/{id}/enable":   s.admin(keygate.PermAdminWrite, s.adminAccountDisabled(false)),
		"POST /portal/admin/accounts/{id}/operator": s.admin(keygate.PermAdminWrite, s.adminAccountOperator),
		"GET /portal/admin/keys":                    s.admin(keygate.PermAdminRead, s.adminKeys),
		"GET /portal/admin/keys/{id}/revoke":        s.admin(keygate.PermAdminWrite, s.adminRevokeForm),
		"POST /portal/admin/keys/{id}/revoke":       s.admin(keygate.PermAdminWrite, s.adminRevokeKey),
		"GET /portal/admin/tiers":                   s.admin(keygate.PermAdminRead, s.adminTiers),
		"POST /portal/admin/tiers":                  s.admin(keygate.PermAdminWrite, s.adminCreateTier),
		"POST /portal/admin/tiers/{name}":           s.admin(keygate.PermAdminWrite, s.adminUpdateTier),
		"POST /portal/admin/tiers/{name}/delete":    s.admin(keygate.PermAdminWrite, s.adminDeleteTier),
		"GET /portal/admin/audit":                   s.admin(keygate.PermAdminRead, s.adminAudit),
	} {
		mux.Handle(pattern, s.wrap(h))
	}
	mux.Handle("/portal/", s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return keygate.Errorf(keygate.ENOTFOUND, "There is no page at %s.", r.URL.Path)
	}))

	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusForbidden, "This form was sent from another site and was refused. Open the page again and resend it from there.")
	}))
	return s.recoverer(securityHeaders(csrf.Handler(limitBody(mux))))
}

// Mount registers the portal on mux at /portal and everything under it.
func (s *Server) Mount(mux *http.ServeMux) {
	h := s.Handler()
	mux.Handle("/portal", h)
	mux.Handle("/portal/", h)
}

// securityHeaders sets the headers every page carries: a strict content
// security policy (no inline script or style, no framing), no MIME
// sniffing, no referrer to other sites, and no caching (pages show keys
// once, and account data).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/portal/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody bounds request bodies: forms are small.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		}
		next.ServeHTTP(w, r)
	})
}

func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a 500 page and a log entry with the stack.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log().Error("portal: panic", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				s.renderError(w, r, http.StatusInternalServerError, "Something went wrong on our side; it has been logged.")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// wrap turns a handlerFunc into an http.Handler that renders its error.
func (s *Server) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// fail renders err as an error page. Its status comes from
// problem.Status, the one place keygate chooses statuses for error codes.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = keygate.Errorf(keygate.ETOOLARGE, "The form is larger than %d bytes.", maxFormBytes)
	}
	code := keygate.ErrorCode(err)
	status := problem.Status(code)
	if status >= 500 {
		s.log().Error("portal: request failed", "path", r.URL.Path, "code", code, "err", err)
	}
	s.renderError(w, r, status, keygate.ErrorMessage(err))
}
