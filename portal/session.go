package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keyauth"
	"github.com/keygate/keygate/manage"
)

// Cookie names. Over TLS the __Secure- prefix makes browsers refuse the
// cookie unless it is Secure, so that a plain-HTTP page on the same host
// cannot plant one.
const (
	cookieName       = "keygate_session"
	secureCookieName = "__Secure-keygate_session"
	cookiePath       = "/portal"
)

// viewer is who is signed in: an account (a developer, or an operator
// account), or an operator with a root key.
type viewer struct {
	Session *keygate.Session
	Account *keygate.Account // nil for a root key's session
	RootKey *keygate.RootKey // nil for an account's session
	token   string
}

// Admin reports whether the viewer may see the admin pages.
func (v *viewer) Admin() bool {
	return v.RootKey != nil && v.RootKey.Can(keygate.PermAdminRead) || v.Account != nil && v.Account.Operator
}

// can reports whether the viewer holds an admin permission. Operator
// accounts hold them all.
func (v *viewer) can(perm string) bool {
	if v.RootKey != nil {
		return v.RootKey.Can(perm)
	}
	return v.Account != nil && v.Account.Operator
}

// actor is the viewer as the audit log names it.
func (v *viewer) actor() string {
	if v.RootKey != nil {
		return manage.ActorRootKey(v.RootKey.ID)
	}
	return manage.ActorAccount(v.Account.ID)
}

// CSRF is the token every signed-in form carries: derived from the
// session's token, so that only a page the session was shown can know it.
func (v *viewer) CSRF() string { return csrfToken(v.token) }

func csrfToken(sessionToken string) string {
	sum := sha256.Sum256([]byte("keygate portal form\x00" + sessionToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

type viewerKey struct{}

// viewerFrom returns the signed-in viewer of a request that passed
// signedIn, developer or admin.
func viewerFrom(ctx context.Context) *viewer {
	v, _ := ctx.Value(viewerKey{}).(*viewer)
	return v
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func (s *Server) secure(r *http.Request) bool { return r.TLS != nil || s.SecureCookies }

func (s *Server) cookieName(r *http.Request) string {
	if s.secure(r) {
		return secureCookieName
	}
	return cookieName
}

// startSession creates a session for an account or a root key, sets its
// cookie and returns it as a viewer (whose forms carry its CSRF token,
// since the cookie only comes back with the next request). The token is
// 256 random bits; the store keeps its hash.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, r *http.Request, accountID, rootKeyID string) (*viewer, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	ttl := s.SessionTTL
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	if rootKeyID != "" {
		if ttl = s.AdminSessionTTL; ttl <= 0 {
			ttl = DefaultAdminSessionTTL
		}
	}
	ua := r.UserAgent()
	if len(ua) > 200 {
		ua = ua[:200]
	}
	sess := &keygate.Session{
		TokenHash: tokenHash(token), AccountID: accountID, RootKeyID: rootKeyID,
		CreatedAt: now, ExpiresAt: now.Add(ttl), IP: keyauth.ClientIP(r, s.TrustedProxies).String(), UserAgent: ua,
	}
	if err := s.Store.CreateSession(ctx, sess); err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{
		// Max-Age rather than Expires: the browser's clock may be wrong.
		Name: s.cookieName(r), Value: token, Path: cookiePath, MaxAge: int(ttl / time.Second),
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode,
	})
	s.pruneSessions(now)
	return &viewer{Session: sess, token: token}, nil
}

// pruneSessions deletes sessions that ended a day ago or more, at most
// once an hour, in the background.
func (s *Server) pruneSessions(now time.Time) {
	last := s.lastPrune.Load()
	if now.Unix()-last < 3600 || !s.lastPrune.CompareAndSwap(last, now.Unix()) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.Store.PruneSessions(ctx, now.Add(-24*time.Hour)); err != nil {
			s.log().Warn("portal: pruning sessions failed", "err", err)
		}
	}()
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(r), Value: "", Path: cookiePath, MaxAge: -1,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteLaxMode,
	})
}

// viewer returns who the request's session cookie signs in, or nil: no
// cookie, an unknown, expired or revoked session, a disabled account or a
// revoked root key all mean nobody.
func (s *Server) viewer(r *http.Request) (*viewer, error) {
	c, err := r.Cookie(s.cookieName(r))
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, nil
	}
	ctx := r.Context()
	sess, err := s.Store.Session(ctx, tokenHash(c.Value))
	if keygate.ErrorCode(err) == keygate.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !sess.Live(now) {
		return nil, nil
	}
	v := &viewer{Session: sess, token: c.Value}
	if sess.RootKeyID != "" {
		rk, err := s.Store.RootKey(ctx, sess.RootKeyID)
		if keygate.ErrorCode(err) == keygate.ENOTFOUND {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if rk.RevokedAt != nil && !now.Before(*rk.RevokedAt) {
			return nil, nil
		}
		v.RootKey = rk
		return v, nil
	}
	a, err := s.Store.Account(ctx, sess.AccountID)
	if keygate.ErrorCode(err) == keygate.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if a.DisabledAt != nil {
		return nil, nil
	}
	v.Account = a
	return v, nil
}

// signedIn runs h for a signed-in viewer whose form, on a POST, carries
// the session's CSRF token; anyone else is sent to the sign-in page.
func (s *Server) signedIn(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := s.viewer(r)
		if err != nil {
			return err
		}
		if v == nil {
			login := "/portal/login"
			if strings.HasPrefix(r.URL.Path, "/portal/admin") {
				login = "/portal/admin/login"
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, login, http.StatusSeeOther)
				return nil
			}
			return keygate.Errorf(keygate.EUNAUTHORIZED, "You are not signed in, or your session ended. Sign in again.")
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				return formError(err)
			}
			got := r.PostForm.Get("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(v.CSRF())) != 1 {
				return keygate.Errorf(keygate.EFORBIDDEN, "This form is out of date (it belongs to another session). Open the page again and resend it.")
			}
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)))
	}
}

// developer runs h for a signed-in account; an operator signed in with a
// root key has no keys of its own and is sent to the admin pages.
func (s *Server) developer(h handlerFunc) handlerFunc {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request) error {
		if viewerFrom(r.Context()).Account == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/portal/admin", http.StatusSeeOther)
				return nil
			}
			return keygate.Errorf(keygate.EFORBIDDEN, "A root key has no keys of its own; use the admin pages.")
		}
		return h(w, r)
	})
}

// admin runs h for a viewer holding perm: a root key with it, or an
// operator account.
func (s *Server) admin(perm string, h handlerFunc) handlerFunc {
	return s.signedIn(func(w http.ResponseWriter, r *http.Request) error {
		v := viewerFrom(r.Context())
		if !v.can(perm) {
			return keygate.Errorf(keygate.EFORBIDDEN, "This page needs the %s permission, which you do not have. Sign in with a root key that holds it.", perm)
		}
		return h(w, r)
	})
}

// formError explains a form that could not be read.
func formError(err error) error {
	return &keygate.Error{Code: keygate.EINVALID, Message: "The form could not be read; send it again from the page.", Err: err}
}
