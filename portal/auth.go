package portal

import (
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keyauth"
)

// home sends a visitor to where they belong.
func (s *Server) home(w http.ResponseWriter, r *http.Request) error {
	v, err := s.viewer(r)
	if err != nil {
		return err
	}
	to := "/portal/login"
	switch {
	case v != nil && v.Account != nil:
		to = "/portal/keys"
	case v != nil:
		to = "/portal/admin"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func (s *Server) signupPage() *page {
	return &page{Title: "Sign up", Nav: "signup", Data: string(s.registration())}
}

func (s *Server) signupForm(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, r, http.StatusOK, "signup", s.signupPage())
}

// signup creates an account on the default tier with its first key (shown
// once), signs it in, and shows the key.
func (s *Server) signup(w http.ResponseWriter, r *http.Request) error {
	p := s.signupPage()
	mode := s.registration()
	if mode == RegistrationClosed {
		return s.render(w, r, http.StatusForbidden, "signup", p)
	}
	if err := r.ParseForm(); err != nil {
		return formError(err)
	}
	f := r.PostForm
	if s.SignupLimit != nil {
		if wait, ok := s.SignupLimit.Take(keyauth.ClientIP(r, s.TrustedProxies), s.now()); !ok {
			w.Header().Set("Retry-After", fmt.Sprint(keygate.CeilSeconds(wait)))
			p.Form = map[string]string{"name": f.Get("name"), "email": f.Get("email"), "invite": f.Get("invite")}
			p.Errors = map[string]string{"": fmt.Sprintf("Too many sign-ups from your network. Try again in %d minute(s).", max(int(wait.Minutes()+0.999), 1))}
			return s.render(w, r, http.StatusTooManyRequests, "signup", p)
		}
	}
	name, email, password := strings.TrimSpace(f.Get("name")), strings.TrimSpace(f.Get("email")), f.Get("password")
	p.Form = map[string]string{"name": name, "email": email, "invite": f.Get("invite")}
	p.Errors = map[string]string{}
	if name == "" || len(name) > 200 {
		p.Errors["name"] = "Enter your name (at most 200 characters)."
	}
	if msg := checkEmail(email); msg != "" {
		p.Errors["email"] = msg
	}
	if msg := checkPassword(password); msg != "" {
		p.Errors["password"] = msg
	}
	if mode == RegistrationInvite && strings.TrimSpace(f.Get("invite")) == "" {
		p.Errors["invite"] = "Enter the invitation code you were sent."
	}
	if len(p.Errors) > 0 {
		return s.render(w, r, http.StatusBadRequest, "signup", p)
	}
	ctx := r.Context()
	if _, err := s.Store.AccountByEmail(ctx, email); err == nil {
		return s.formFailed(w, r, "signup", p, "email", keygate.Errorf(keygate.ECONFLICT, "An account with this email already exists; sign in instead."))
	} else if keygate.ErrorCode(err) != keygate.ENOTFOUND {
		return err
	}
	if mode == RegistrationInvite {
		if s.Invites == nil {
			return s.formFailed(w, r, "signup", p, "invite", keygate.Errorf(keygate.EINVALID, "This server takes no invitation codes yet; ask the operator for an account."))
		}
		if err := s.Invites.Redeem(ctx, strings.TrimSpace(f.Get("invite")), email); err != nil {
			return s.formFailed(w, r, "signup", p, "invite", err)
		}
	}
	hash, err := HashPassword(password, s.passwordParams())
	if err != nil {
		return err
	}
	a := &keygate.Account{Name: name, Email: email, PasswordHash: hash}
	k, plaintext, err := s.Manage.Register(ctx, a)
	if err != nil {
		field := "email"
		if strings.Contains(keygate.ErrorMessage(err), "name") {
			field = "name"
		}
		return s.formFailed(w, r, "signup", p, field, err)
	}
	v, err := s.startSession(ctx, w, r, a.ID, "")
	if err != nil {
		return err
	}
	v.Account = a
	s.log().Info("portal: account registered", "account_id", a.ID, "key_id", k.ID)
	return s.render(w, r, http.StatusCreated, "key_new", &page{
		Title: "Welcome to keygate", Nav: "keys", Viewer: v,
		Data: newKeyView{Key: k, Plaintext: plaintext, Intro: "Your account is ready, and this is its first API key."},
	})
}

func checkEmail(email string) string {
	addr, err := mail.ParseAddress(email)
	if email == "" || err != nil || addr.Address != email || len(email) > 254 {
		return "Enter an email address such as dev@example.com."
	}
	return ""
}

func checkPassword(pw string) string {
	switch n := len([]rune(pw)); {
	case n < MinPasswordLen:
		return fmt.Sprintf("Use at least %d characters; a few words make a good password.", MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fmt.Sprintf("Use at most %d bytes.", MaxPasswordLen)
	}
	return ""
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, r, http.StatusOK, "login", &page{Title: "Sign in", Nav: "login"})
}

// tooMany renders page name with a 429 and a Retry-After.
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, name string, p *page, wait time.Duration) error {
	w.Header().Set("Retry-After", fmt.Sprint(keygate.CeilSeconds(wait)))
	mins := int(wait.Minutes() + 0.999)
	p.Errors = map[string]string{"": fmt.Sprintf("Too many failed sign-ins. Wait %d minute(s) and try again.", max(mins, 1))}
	return s.render(w, r, http.StatusTooManyRequests, name, p)
}

// login signs an account in with its email and password. Failures are
// counted per email and per client IP; either over its limit refuses
// sign-ins for the rest of the window, whatever the password.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	p := &page{Title: "Sign in", Nav: "login"}
	if err := r.ParseForm(); err != nil {
		return formError(err)
	}
	email := strings.ToLower(strings.TrimSpace(r.PostForm.Get("email")))
	password := r.PostForm.Get("password")
	p.Form = map[string]string{"email": email}
	now := s.now()
	ip := "ip:" + keyauth.ClientIP(r, s.TrustedProxies).String()
	for _, key := range []string{"email:" + email, ip} {
		th := s.accountLogins
		if key == ip {
			th = s.ipLogins
		}
		if wait, blocked := th.blocked(key, now); blocked {
			return s.tooMany(w, r, "login", p, wait)
		}
	}
	if email == "" || password == "" || len(password) > MaxPasswordLen {
		p.Errors = map[string]string{}
		if email == "" {
			p.Errors["email"] = "Enter your email address."
		}
		if password == "" || len(password) > MaxPasswordLen {
			p.Errors["password"] = "Enter your password."
		}
		return s.render(w, r, http.StatusBadRequest, "login", p)
	}
	ctx := r.Context()
	a, err := s.Store.AccountByEmail(ctx, email)
	if err != nil && keygate.ErrorCode(err) != keygate.ENOTFOUND {
		return err
	}
	hash := s.dummyHash
	if a != nil && a.PasswordHash != "" {
		hash = a.PasswordHash
	}
	ok, err := CheckPassword(hash, password)
	if err != nil && a != nil {
		s.log().Warn("portal: stored password hash cannot be checked", "account_id", a.ID, "err", err)
	}
	if a == nil || a.PasswordHash == "" || !ok {
		s.accountLogins.fail("email:"+email, now)
		s.ipLogins.fail(ip, now)
		p.Errors = map[string]string{"": "The email or the password is not right."}
		return s.render(w, r, http.StatusUnauthorized, "login", p)
	}
	if a.DisabledAt != nil {
		p.Errors = map[string]string{"": "This account has been disabled by the operator."}
		return s.render(w, r, http.StatusForbidden, "login", p)
	}
	s.accountLogins.reset("email:" + email)
	if _, err := s.startSession(ctx, w, r, a.ID, ""); err != nil {
		return err
	}
	http.Redirect(w, r, "/portal/keys", http.StatusSeeOther)
	return nil
}

// logout revokes the session and clears its cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	v := viewerFrom(r.Context())
	if err := s.Store.RevokeSession(r.Context(), v.Session.ID, s.now()); err != nil {
		return err
	}
	s.clearCookie(w, r)
	to := "/portal/login"
	if v.RootKey != nil {
		to = "/portal/admin/login"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func (s *Server) passwordPage() *page { return &page{Title: "Change password", Nav: "password"} }

func (s *Server) passwordForm(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, r, http.StatusOK, "password", s.passwordPage())
}

// changePassword checks the current password, stores the new one's hash
// (audited) and revokes every other session of the account.
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	v := viewerFrom(r.Context())
	p := s.passwordPage()
	f := r.PostForm
	now := s.now()
	key := "email:" + v.Account.Email
	if wait, blocked := s.accountLogins.blocked(key, now); blocked {
		return s.tooMany(w, r, "password", p, wait)
	}
	ok, err := CheckPassword(v.Account.PasswordHash, f.Get("current"))
	if err != nil || !ok {
		s.accountLogins.fail(key, now)
		p.Errors = map[string]string{"current": "This is not your current password."}
		return s.render(w, r, http.StatusBadRequest, "password", p)
	}
	if msg := checkPassword(f.Get("new")); msg != "" {
		p.Errors = map[string]string{"new": msg}
		return s.render(w, r, http.StatusBadRequest, "password", p)
	}
	if f.Get("new") != f.Get("confirm") {
		p.Errors = map[string]string{"confirm": "The two new passwords differ."}
		return s.render(w, r, http.StatusBadRequest, "password", p)
	}
	hash, err := HashPassword(f.Get("new"), s.passwordParams())
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := s.Manage.SetPassword(ctx, v.actor(), v.Account.ID, hash); err != nil {
		return err
	}
	if _, err := s.Store.RevokeSessions(ctx, v.Account.ID, v.Session.ID, now); err != nil {
		return err
	}
	p.Notice = "Your password was changed; your other sessions were signed out."
	return s.render(w, r, http.StatusOK, "password", p)
}

// revokeOtherSessions signs the account out everywhere but here.
func (s *Server) revokeOtherSessions(w http.ResponseWriter, r *http.Request) error {
	v := viewerFrom(r.Context())
	n, err := s.Store.RevokeSessions(r.Context(), v.Account.ID, v.Session.ID, s.now())
	if err != nil {
		return err
	}
	p := s.passwordPage()
	p.Notice = fmt.Sprintf("Signed out %d other session(s).", n)
	return s.render(w, r, http.StatusOK, "password", p)
}

func (s *Server) adminLoginPage() *page { return &page{Title: "Operator sign-in", Nav: "admin"} }

func (s *Server) adminLoginForm(w http.ResponseWriter, r *http.Request) error {
	return s.render(w, r, http.StatusOK, "admin_login", s.adminLoginPage())
}

// adminLogin signs an operator in with a root key typed into the form (a
// root key never appears in a URL). Failures count against the client IP.
func (s *Server) adminLogin(w http.ResponseWriter, r *http.Request) error {
	p := s.adminLoginPage()
	if err := r.ParseForm(); err != nil {
		return formError(err)
	}
	now := s.now()
	ip := "ip:" + keyauth.ClientIP(r, s.TrustedProxies).String()
	if wait, blocked := s.ipLogins.blocked(ip, now); blocked {
		return s.tooMany(w, r, "admin_login", p, wait)
	}
	presented := strings.TrimSpace(r.PostForm.Get("root_key"))
	if presented == "" {
		p.Errors = map[string]string{"root_key": "Enter a root key (kgr_live_…)."}
		return s.render(w, r, http.StatusBadRequest, "admin_login", p)
	}
	rk, ok := s.RootKeys.RootKey(presented)
	if !ok {
		s.ipLogins.fail(ip, now)
		p.Errors = map[string]string{"root_key": "This is not a live root key."}
		return s.render(w, r, http.StatusUnauthorized, "admin_login", p)
	}
	if !rk.Can(keygate.PermAdminRead) {
		p.Errors = map[string]string{"root_key": "This root key lacks admin:read; use one that can read the admin API."}
		return s.render(w, r, http.StatusForbidden, "admin_login", p)
	}
	if _, err := s.startSession(r.Context(), w, r, "", rk.ID); err != nil {
		return err
	}
	http.Redirect(w, r, "/portal/admin", http.StatusSeeOther)
	return nil
}
