package portal

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, path := range []string{"/portal/login", "/portal/signup", "/portal/admin/login", "/portal/nowhere"} {
		resp := b.get(path)
		for h, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "same-origin",
			"X-Frame-Options":        "DENY",
			"Cache-Control":          "no-store",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %s: got %q, want %q", path, h, got, want)
			}
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"frame-ancestors 'none'", "script-src 'self'", "default-src 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", path, csp, want)
			}
		}
	}
	if resp := b.get("/portal/nowhere"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown page: got %d, want 404", resp.StatusCode)
	}
	resp := b.get("/portal/static/style.css")
	wantStatus(t, resp, http.StatusOK, "style sheet")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
		t.Errorf("style sheet: got Content-Type %q", ct)
	}
	wantStatus(t, b.get("/portal/static/"), http.StatusNotFound, "static directory listing")
}

func TestSignupSignsInAndShowsTheKeyOnce(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	resp := b.post("/portal/signup", url.Values{"name": {"Ada"}, "email": {"Ada@Example.com"}, "password": {goodPassword}})
	wantStatus(t, resp, http.StatusCreated, "sign up")
	key := b.shownKey()
	wantBody(t, b.last, "You will not see this key again", "sign-up page")
	if e.verify(key) != keygate.OutcomeValid {
		t.Fatalf("the key shown at sign-up does not verify")
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/portal" || session.Secure {
		t.Fatalf("session cookie: got %+v, want HttpOnly, SameSite=Lax, Path=/portal, not Secure on plain HTTP", session)
	}
	// The store has the token's hash, not the token.
	sess, err := e.store.Session(context.Background(), tokenHash(session.Value))
	if err != nil {
		t.Fatalf("the session is not stored under the token's hash: %v", err)
	}
	if sess.TokenHash == session.Value || sess.AccountID != e.account("ada@example.com").ID {
		t.Errorf("stored session: got %+v", sess)
	}
	a := e.account("ada@example.com")
	if !strings.HasPrefix(a.PasswordHash, "$argon2id$v=19$") {
		t.Errorf("password hash: got %q, want argon2id", a.PasswordHash)
	}

	// The keys page lists the key but never shows it again.
	wantStatus(t, b.get("/portal/keys"), http.StatusOK, "keys page")
	if strings.Contains(b.last, key) || strings.Contains(b.last, key[len(key)-10:]) {
		t.Errorf("the keys page shows the key again")
	}
	wantBody(t, b.last, key[:12]+"…"+key[len(key)-4:], "keys page")

	// Signing out revokes the session: the old cookie no longer works.
	wantStatus(t, b.post("/portal/logout", nil), http.StatusSeeOther, "sign out")
	if sess, _ := e.store.Session(context.Background(), tokenHash(session.Value)); sess.RevokedAt == nil {
		t.Errorf("signing out did not revoke the session")
	}
	replay := e.browser()
	u, _ := url.Parse(e.srv.URL + "/portal")
	replay.client.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: session.Value}})
	resp = replay.get("/portal/keys")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/login" {
		t.Errorf("revoked session: got %d to %q, want a redirect to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestSessionCookieSecureUnderTLS(t *testing.T) {
	e := newEnv(t)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "https://keygate.example/portal/signup", strings.NewReader(url.Values{
		"name": {"Ada"}, "email": {"ada@example.com"}, "password": {goodPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.TLS = &tls.ConnectionState{}
	e.portal.Handler().ServeHTTP(rec, req)
	wantStatus(t, rec.Result(), http.StatusCreated, "sign up over TLS")
	cs := rec.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != secureCookieName || !cs[0].Secure || !cs[0].HttpOnly {
		t.Errorf("cookie over TLS: got %+v, want one Secure, HttpOnly %s", cs, secureCookieName)
	}
}

func TestSignupErrors(t *testing.T) {
	e := newEnv(t)
	e.browser().signup("taken@example.com")
	tests := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"short password", url.Values{"name": {"A"}, "email": {"a@example.com"}, "password": {"elevenchars"}}, 400, "at least 12 characters"},
		{"bad email", url.Values{"name": {"A"}, "email": {"not an email"}, "password": {goodPassword}}, 400, "Enter an email address"},
		{"no name", url.Values{"name": {" "}, "email": {"a@example.com"}, "password": {goodPassword}}, 400, "Enter your name"},
		{"control character in name", url.Values{"name": {"A\u202eB"}, "email": {"a@example.com"}, "password": {goodPassword}}, 400, "name"},
		{"email taken", url.Values{"name": {"A"}, "email": {"TAKEN@example.com"}, "password": {goodPassword}}, 409, "already exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser()
			resp := b.post("/portal/signup", tt.form)
			wantStatus(t, resp, tt.status, tt.name)
			if !strings.Contains(b.last, `class="field-error"`) {
				t.Errorf("no error next to a field:\n%s", b.last)
			}
			wantBody(t, b.last, tt.want, tt.name)
			if len(resp.Cookies()) > 0 {
				t.Errorf("a refused sign-up set a cookie")
			}
			// The form comes back filled in, without the password.
			if tt.form.Get("email") != "" && !strings.Contains(b.last, `value="`+tt.form.Get("email")+`"`) {
				t.Errorf("the email was not kept in the form")
			}
			if strings.Contains(b.last, tt.form.Get("password")) {
				t.Errorf("the password was sent back in the page")
			}
		})
	}
}

type fakeInvites map[string]bool

func (f fakeInvites) Redeem(_ context.Context, code, _ string) error {
	if !f[code] {
		return keygate.Errorf(keygate.EINVALID, "This invitation code is not valid or was used.")
	}
	delete(f, code)
	return nil
}

func TestRegistrationModes(t *testing.T) {
	closed := newEnv(t, func(s *Server) { s.Registration = RegistrationClosed })
	b := closed.browser()
	wantStatus(t, b.get("/portal/signup"), http.StatusOK, "closed sign-up page")
	wantBody(t, b.last, "Registration is closed", "closed sign-up page")
	wantStatus(t, b.post("/portal/signup", url.Values{"name": {"A"}, "email": {"a@example.com"}, "password": {goodPassword}}), http.StatusForbidden, "closed sign-up")
	if _, err := closed.store.AccountByEmail(context.Background(), "a@example.com"); keygate.ErrorCode(err) != keygate.ENOTFOUND {
		t.Errorf("closed registration created an account: %v", err)
	}

	inv := newEnv(t, func(s *Server) { s.Registration = RegistrationInvite; s.Invites = fakeInvites{"welcome-1": true} })
	b = inv.browser()
	wantStatus(t, b.get("/portal/signup"), http.StatusOK, "invite sign-up page")
	wantBody(t, b.last, "Invitation code", "invite sign-up page")
	form := url.Values{"name": {"A"}, "email": {"a@example.com"}, "password": {goodPassword}}
	wantStatus(t, b.post("/portal/signup", form), http.StatusBadRequest, "no code")
	form.Set("invite", "wrong")
	wantStatus(t, b.post("/portal/signup", form), http.StatusBadRequest, "wrong code")
	wantBody(t, b.last, "not valid", "wrong code")
	form.Set("invite", "welcome-1")
	wantStatus(t, b.post("/portal/signup", form), http.StatusCreated, "good code")
}

func TestLoginAndThrottle(t *testing.T) {
	e := newEnv(t)
	e.browser().signup("ada@example.com")

	b := e.browser()
	wantStatus(t, b.post("/portal/login", url.Values{"email": {"ada@example.com"}, "password": {"wrong password!"}}), http.StatusUnauthorized, "wrong password")
	wantBody(t, b.last, "The email or the password is not right", "wrong password")
	wantStatus(t, b.post("/portal/login", url.Values{"email": {"nobody@example.com"}, "password": {goodPassword}}), http.StatusUnauthorized, "unknown email")
	wantBody(t, b.last, "The email or the password is not right", "unknown email")
	wantStatus(t, b.post("/portal/login", url.Values{"email": {""}, "password": {""}}), http.StatusBadRequest, "empty form")

	resp := b.post("/portal/login", url.Values{"email": {"ADA@example.com"}, "password": {goodPassword}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/portal/keys" {
		t.Fatalf("good sign-in: got %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	wantStatus(t, b.get("/portal/keys"), http.StatusOK, "keys after sign-in")

	// After DefaultLoginFailuresPerAccount failures the account refuses
	// even the right password until the window ends.
	for range DefaultLoginFailuresPerAccount {
		e.browser().post("/portal/login", url.Values{"email": {"ada@example.com"}, "password": {"guess guess guess"}})
	}
	c := e.browser()
	resp = c.post("/portal/login", url.Values{"email": {"ada@example.com"}, "password": {goodPassword}})
	wantStatus(t, resp, http.StatusTooManyRequests, "throttled account")
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("throttled sign-in without Retry-After")
	}
	wantBody(t, c.last, "Too many failed sign-ins", "throttled account")
	e.clock.Add(DefaultLoginWindow)
	resp = c.post("/portal/login", url.Values{"email": {"ada@example.com"}, "password": {goodPassword}})
	wantStatus(t, resp, http.StatusSeeOther, "sign-in once the window ended")
}

func TestLoginThrottlePerIP(t *testing.T) {
	e := newEnv(t)
	e.browser().signup("ada@example.com")
	// Many emails from one IP: the IP's limit stops them, also for an
	// account that has not failed at all.
	for i := range DefaultLoginFailuresPerIP {
		e.browser().post("/portal/login", url.Values{"email": {"x" + string(rune('a'+i%26)) + "@example.com"}, "password": {"guess guess guess"}})
	}
	wantStatus(t, e.browser().post("/portal/login", url.Values{"email": {"ada@example.com"}, "password": {goodPassword}}), http.StatusTooManyRequests, "throttled IP")
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("ada@example.com")
	wantStatus(t, b.get("/portal/keys"), http.StatusOK, "keys page")
	good := b.csrf()

	form := url.Values{"name": {"app"}, "env": {"live"}, "csrf": {"forged"}}
	wantStatus(t, b.post("/portal/keys", form), http.StatusForbidden, "wrong token")
	form.Del("csrf")
	form.Set("csrf", "")
	wantStatus(t, b.post("/portal/keys", form), http.StatusForbidden, "no token")

	// A cross-site request is refused before any handler, even with the
	// right token.
	form.Set("csrf", good)
	req, _ := http.NewRequest("POST", e.srv.URL+"/portal/keys", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	wantStatus(t, b.do(req), http.StatusForbidden, "cross-site form")
	req, _ = http.NewRequest("POST", e.srv.URL+"/portal/login", strings.NewReader("email=a%40example.com&password=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	wantStatus(t, b.do(req), http.StatusForbidden, "cross-origin sign-in")

	keys, _ := e.store.Keys(context.Background(), keygate.KeyFilter{AccountID: e.account("ada@example.com").ID})
	if len(keys) != 1 {
		t.Errorf("refused forms created keys: got %d keys, want the first one only", len(keys))
	}
	wantStatus(t, b.post("/portal/keys", url.Values{"name": {"app"}, "env": {"live"}, "csrf": {good}}), http.StatusCreated, "right token")
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("ada@example.com")
	other := e.browser()
	wantStatus(t, other.post("/portal/login", url.Values{"email": {"ada@example.com"}, "password": {goodPassword}}), http.StatusSeeOther, "second session")

	wantStatus(t, b.get("/portal/password"), http.StatusOK, "password page")
	const newPassword = "a brand new long password"
	for _, tt := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"current": {"wrong wrong wrong"}, "new": {newPassword}, "confirm": {newPassword}}, "not your current password"},
		{url.Values{"current": {goodPassword}, "new": {"short"}, "confirm": {"short"}}, "at least 12"},
		{url.Values{"current": {goodPassword}, "new": {newPassword}, "confirm": {newPassword + "x"}}, "differ"},
	} {
		wantStatus(t, b.post("/portal/password", tt.form), http.StatusBadRequest, tt.want)
		wantBody(t, b.last, tt.want, "password form")
		b.get("/portal/password")
	}
	wantStatus(t, b.post("/portal/password", url.Values{"current": {goodPassword}, "new": {newPassword}, "confirm": {newPassword}}), http.StatusOK, "change")
	wantBody(t, b.last, "Your password was changed", "change")

	wantStatus(t, b.get("/portal/keys"), http.StatusOK, "this session still works")
	if resp := other.get("/portal/keys"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the other session: got %d, want it signed out (303)", resp.StatusCode)
	}
	wantStatus(t, e.browser().post("/portal/login", url.Values{"email": {"ada@example.com"}, "password": {goodPassword}}), http.StatusUnauthorized, "old password")
	wantStatus(t, e.browser().post("/portal/login", url.Values{"email": {"ada@example.com"}, "password": {newPassword}}), http.StatusSeeOther, "new password")

	evs, err := e.store.AuditEvents(context.Background(), keygate.AuditFilter{Action: keygate.ActionAccountPassword})
	if err != nil || len(evs) != 1 || evs[0].Actor != "account:"+e.account("ada@example.com").ID {
		t.Errorf("audit: got %v, %v; want one password change by the account", evs, err)
	}
	if len(evs) == 1 && strings.Contains(string(evs[0].Details), "argon2") {
		t.Errorf("the audit event holds the hash: %s", evs[0].Details)
	}
}

func TestSessionExpires(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("ada@example.com")
	wantStatus(t, b.get("/portal/keys"), http.StatusOK, "fresh session")
	e.clock.Add(DefaultSessionTTL + time.Second)
	wantStatus(t, b.get("/portal/keys"), http.StatusSeeOther, "expired session")
}

func TestRevokeOtherSessions(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("ada@example.com")
	others := []*browser{e.browser(), e.browser()}
	for _, o := range others {
		wantStatus(t, o.post("/portal/login", url.Values{"email": {"ada@example.com"}, "password": {goodPassword}}), http.StatusSeeOther, "sign in")
	}
	b.get("/portal/password")
	wantStatus(t, b.post("/portal/sessions/revoke", nil), http.StatusOK, "sign out the others")
	wantBody(t, b.last, "Signed out 2 other session(s)", "sign out the others")
	wantStatus(t, b.get("/portal/keys"), http.StatusOK, "this session")
	for _, o := range others {
		wantStatus(t, o.get("/portal/keys"), http.StatusSeeOther, "another session")
	}
}

// countingLimit lets n attempts through, then refuses for a minute.
type countingLimit struct{ n int }

func (c *countingLimit) Take(netip.Addr, time.Time) (time.Duration, bool) {
	if c.n == 0 {
		return time.Minute, false
	}
	c.n--
	return 0, true
}

func TestSignupLimit(t *testing.T) {
	e := newEnv(t, func(s *Server) { s.SignupLimit = &countingLimit{n: 1} })
	e.browser().signup("a@example.com")
	b := e.browser()
	resp := b.post("/portal/signup", url.Values{"name": {"B"}, "email": {"b@example.com"}, "password": {goodPassword}})
	wantStatus(t, resp, http.StatusTooManyRequests, "second sign-up")
	if resp.Header.Get("Retry-After") != "60" {
		t.Errorf("Retry-After: got %q, want 60", resp.Header.Get("Retry-After"))
	}
	wantBody(t, b.last, "Too many sign-ups", "second sign-up")
	if _, err := e.store.AccountByEmail(context.Background(), "b@example.com"); keygate.ErrorCode(err) != keygate.ENOTFOUND {
		t.Errorf("a refused sign-up created an account: %v", err)
	}
}

// TestWelcomePageForms checks that the page shown right after sign-up,
// before the cookie has come back once, carries the new session's CSRF
// token.
func TestWelcomePageForms(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signup("ada@example.com")
	wantStatus(t, b.post("/portal/logout", nil), http.StatusSeeOther, "sign out from the welcome page")
	wantStatus(t, b.get("/portal/keys"), http.StatusSeeOther, "after signing out")
}
