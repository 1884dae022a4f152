package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keyauth"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/problem"
)

// List is the envelope of every list response.
type List[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// page trims a result fetched with limit+1 rows to limit and returns the
// cursor for the next page.
func page[T any](items []T, limit int, id func(T) string) List[T] {
	if items == nil {
		items = []T{}
	}
	if len(items) > limit {
		return List[T]{Data: items[:limit], NextCursor: id(items[limit-1])}
	}
	return List[T]{Data: items}
}

func pageLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return keygate.DefaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > keygate.MaxPageSize {
		return 0, keygate.Errorf(keygate.EINVALID, "limit must be a whole number from 1 to %d.", keygate.MaxPageSize)
	}
	return n, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": keygate.Version})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.Store.Ping(r.Context()); err != nil {
		return keygate.Unavailable(err)
	}
	if s.Degraded != nil {
		if d := s.Degraded(); len(d) > 0 {
			// Still ready: every instance shares the degraded service, so
			// taking this one out of the load balancer would help nothing.
			return writeJSON(w, http.StatusOK, map[string]any{"status": "degraded", "degraded": d})
		}
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	if s.Metrics == nil {
		return keygate.Errorf(keygate.ENOTFOUND, "Metrics are not enabled on this server.")
	}
	if s.MetricsElsewhere {
		return keygate.Errorf(keygate.ENOTFOUND, "Metrics are served on a listener of their own (--metrics-addr), not here.")
	}
	return s.serveMetrics(w, r)
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	if s.MetricsAuth {
		if err := s.authorize(r, keygate.PermMetrics); err != nil {
			return err
		}
	}
	s.Metrics.Handler().ServeHTTP(w, r)
	return nil
}

// MetricsHandler serves the metrics at /metrics (with MetricsAuth, to a
// root key with the metrics permission) and answers every other path with
// a 404 problem: the handler of a metrics-only listener.
func (s *Server) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		switch {
		case r.URL.Path != "/metrics":
			err = keygate.Errorf(keygate.ENOTFOUND, "This listener serves only /metrics.")
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			err = &keygate.Error{Code: "METHOD_NOT_ALLOWED", Message: "Use GET /metrics."}
		case s.Metrics == nil:
			err = keygate.Errorf(keygate.ENOTFOUND, "Metrics are not enabled on this server.")
		default:
			err = s.serveMetrics(w, r)
		}
		if err != nil {
			s.fail(w, r, err)
		}
	})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(OpenAPI())
	return err
}

// KeyView is a key record as the API shows it: the record, its status now,
// and — in the one answer that creates it — the plaintext key.
type KeyView struct {
	*keygate.Key
	Status    string `json:"status"`
	Plaintext string `json:"key,omitempty"`
}

func (s *Server) view(k *keygate.Key, plaintext string) KeyView {
	return KeyView{Key: k, Status: k.Status(s.now()), Plaintext: plaintext}
}

// RegisterRequest is the body of POST /v1/register.
type RegisterRequest struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	// Invite is the invitation code, needed when registration is by
	// invitation and ignored otherwise.
	Invite string `json:"invite,omitempty"`
}

// RegisterResponse answers POST /v1/register: the new account and its
// first key, with the plaintext shown this once. An email address that
// has an account already gets an answer of the same shape whose account
// and key were never stored (see manage.Service.RegisterAnonymously).
type RegisterResponse struct {
	Account *keygate.Account `json:"account"`
	Key     KeyView          `json:"key"`
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	mode := s.Registration
	if mode != manage.RegistrationOpen && mode != manage.RegistrationInvite {
		return keygate.Errorf(keygate.EFORBIDDEN, "Registration is closed on this server; ask the API's operator for an account and key.")
	}
	// Every attempt counts, good or bad, before anything else is done.
	if s.RegistrationLimit != nil {
		if wait, ok := s.RegistrationLimit.Take(keyauth.ClientIP(r, s.TrustedProxies), s.now()); !ok {
			return &keygate.Error{Code: keygate.ETOOMANY, RetryAfter: wait,
				Message: fmt.Sprintf("Too many registrations came from this address. Retry after %d second(s).", max(keygate.CeilSeconds(wait), 1))}
		}
	}
	var req RegisterRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	invite := ""
	if mode == manage.RegistrationInvite {
		if invite = strings.TrimSpace(req.Invite); invite == "" {
			return keygate.Errorf(keygate.EFORBIDDEN, "Registration on this server is by invitation: send the code the API's operator gave you as \"invite\".")
		}
	}
	a := &keygate.Account{Name: req.Name, Email: req.Email}
	k, plaintext, err := s.Manage.RegisterAnonymously(r.Context(), a, invite)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, RegisterResponse{Account: a, Key: s.view(k, plaintext)})
}

// VerifyRequest is the body of POST /v1/keys/verify.
type VerifyRequest struct {
	Key    string   `json:"key"`
	Scopes []string `json:"scopes,omitempty"`
	IP     string   `json:"ip,omitempty"`
	// Method and Route name the request the caller protects (such as
	// "GET" and "/weather/{city}"), for usage records; absent, the usage
	// record names no route.
	Method string `json:"method,omitempty"`
	Route  string `json:"route,omitempty"`
}

// QuotaView is a key's daily quota in a verify answer.
type QuotaView struct {
	Limit     int64 `json:"limit"`
	Remaining int64 `json:"remaining"`
	Reset     int64 `json:"reset"` // seconds until 00:00 UTC
}

// RateView is a key's rate limit in a verify answer.
type RateView struct {
	Limit         int64   `json:"limit"` // the burst
	Remaining     int64   `json:"remaining"`
	Reset         int64   `json:"reset"`  // seconds until the bucket is full
	Window        int64   `json:"window"` // seconds to refill from empty: limit per window is the rate
	RatePerSecond float64 `json:"rate_per_second"`
}

// VerifyResponse answers POST /v1/keys/verify.
type VerifyResponse struct {
	Valid        bool            `json:"valid"`
	Code         keygate.Outcome `json:"code"`
	KeyID        string          `json:"key_id,omitempty"`
	AccountID    string          `json:"account_id,omitempty"`
	Name         string          `json:"name,omitempty"`
	Env          keygate.Env     `json:"env,omitempty"`
	Tier         string          `json:"tier,omitempty"`
	Scopes       []string        `json:"scopes,omitempty"`
	Meta         json.RawMessage `json:"meta,omitempty"`
	ExpiresAt    *time.Time      `json:"expires_at,omitempty"`
	MissingScope string          `json:"missing_scope,omitempty"`
	Quota        *QuotaView      `json:"quota,omitempty"`
	Rate         *RateView       `json:"rate,omitempty"`
	RetryAfter   int64           `json:"retry_after,omitempty"`
	Detail       string          `json:"detail,omitempty"`
}

// verify answers the verify API. A refused key is a 200 with valid false
// and the code: the protected service asked a well-formed question.
func (s *Server) verify(w http.ResponseWriter, r *http.Request) error {
	var req VerifyRequest
	if err := decodeVerify(w, r, &req); err != nil {
		return err
	}
	scopes, err := keygate.NormalizeScopes(req.Scopes)
	if err != nil {
		return err
	}
	if len(req.Method) > 16 || len(req.Route) > 256 || !printable(req.Method) || !printable(req.Route) {
		return keygate.Errorf(keygate.EINVALID, "method (at most 16 bytes) and route (at most 256) must be printable ASCII.")
	}
	req.Method = strings.ToUpper(req.Method)
	var ip netip.Addr
	if req.IP != "" {
		if ip, err = netip.ParseAddr(strings.TrimSpace(req.IP)); err != nil {
			return keygate.Errorf(keygate.EINVALID, "ip %q is not an IPv4 or IPv6 address.", req.IP)
		}
	}
	start := s.now()
	v := s.Engine.Verify(r.Context(), keygate.VerifyRequest{Key: strings.TrimSpace(req.Key), Scopes: scopes, IP: ip})
	took := s.now().Sub(start)
	if s.Metrics != nil {
		s.Metrics.ObserveVerify(v.Outcome, took)
	}
	if s.Usage != nil {
		// The protected request's own status is the protected service's
		// business; record the status a gateway would have answered.
		ev := keygate.UsageEvent{
			Time: start, Outcome: v.Outcome, Method: req.Method, Route: req.Route,
			Status: problem.OutcomeStatus(v.Outcome), Latency: took, IP: ip,
		}
		if v.Key != nil {
			ev.KeyID, ev.AccountID = v.Key.ID, v.Key.AccountID
		}
		s.Usage.Record(ev)
	}
	var ans verifyAnswer
	resp := &ans.VerifyResponse
	resp.Valid, resp.Code, resp.MissingScope = v.Valid(), v.Outcome, v.MissingScope
	if k := v.Key; k != nil {
		resp.KeyID, resp.AccountID, resp.Name, resp.Env = k.ID, k.AccountID, k.Name, k.Env
		resp.Scopes, resp.Meta, resp.ExpiresAt = k.Scopes, k.Meta, k.ExpiresAt
	}
	if v.Tier != nil {
		resp.Tier = v.Tier.Name
	}
	if v.HasLimits {
		l := v.Limits
		ans.limits = true
		ans.quota = QuotaView{Limit: l.QuotaLimit, Remaining: l.QuotaRemaining, Reset: keygate.CeilSeconds(l.QuotaReset)}
		ans.rate = RateView{Limit: l.RateLimit, Remaining: l.RateRemaining, Reset: keygate.CeilSeconds(l.RateReset), Window: l.RateWindow(), RatePerSecond: l.RatePerSecond}
	}
	if !v.Valid() && v.Limits.RetryAfter > 0 { // rate, quota, or the failure throttle
		resp.RetryAfter = max(keygate.CeilSeconds(v.Limits.RetryAfter), 1)
	}
	if !v.Valid() {
		resp.Detail = problem.FromVerification(&v, s.now()).Detail
	}
	keyauth.SetRateLimitHeaders(w.Header(), &v)
	return writeVerifyAnswer(w, &ans)
}

// AccountRequest is the body of POST /v1/accounts.
type AccountRequest struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Tier  string `json:"tier,omitempty"`
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) error {
	var req AccountRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	a := &keygate.Account{Name: req.Name, Email: req.Email, Tier: req.Tier}
	if err := s.Manage.CreateAccount(r.Context(), actor(r), a); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a)
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) error {
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	as, err := s.Store.Accounts(r.Context(), keygate.AccountFilter{
		Email: strings.ToLower(q.Get("email")), Tier: q.Get("tier"), After: q.Get("cursor"), Limit: limit + 1,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page(as, limit, func(a *keygate.Account) string { return a.ID }))
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) error {
	a, err := s.Store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

// KeyRequest is the body of POST /v1/keys.
type KeyRequest struct {
	AccountID     string          `json:"account_id"`
	Name          string          `json:"name,omitempty"`
	Tier          string          `json:"tier,omitempty"`
	Env           keygate.Env     `json:"env,omitempty"`
	Scopes        []string        `json:"scopes,omitempty"`
	IPAllow       []string        `json:"ip_allow,omitempty"`
	Meta          json.RawMessage `json:"meta,omitempty"`
	ExpiresAt     *time.Time      `json:"expires_at,omitempty"`
	QuotaPerDay   *int64          `json:"quota_per_day,omitempty"`
	RatePerSecond *float64        `json:"rate_per_second,omitempty"`
	Burst         *int64          `json:"burst,omitempty"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	var req KeyRequest
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	k := &keygate.Key{
		AccountID: req.AccountID, Name: req.Name, Tier: req.Tier, Env: req.Env,
		Scopes: req.Scopes, IPAllow: req.IPAllow, Meta: req.Meta, ExpiresAt: req.ExpiresAt,
		QuotaPerDay: req.QuotaPerDay, RatePerSecond: req.RatePerSecond, Burst: req.Burst,
	}
	plaintext, err := s.Manage.CreateKey(r.Context(), actor(r), k)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, s.view(k, plaintext))
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	limit, err := pageLimit(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := keygate.KeyFilter{
		AccountID: q.Get("account_id"), Tier: q.Get("tier"), Env: keygate.Env(q.Get("env")),
		Status: q.Get("status"), Now: s.now(), After: q.Get("cursor"), Limit: limit + 1,
	}
	if f.Env != "" && !f.Env.Valid() {
		return keygate.Errorf(keygate.EINVALID, "env must be \"live\" or \"test\".")
	}
	switch f.Status {
	case "", keygate.StatusActive, keygate.StatusRevoked, keygate.StatusExpired, keygate.StatusDisabled:
	default:
		return keygate.Errorf(keygate.EINVALID, "status must be one of active, revoked, expired, disabled.")
	}
	ks, err := s.Store.Keys(r.Context(), f)
	if err != nil {
		return err
	}
	views := make([]KeyView, len(ks))
	for i, k := range ks {
		views[i] = s.view(k, "")
	}
	return writeJSON(w, http.StatusOK, page(views, limit, func(v KeyView) string { return v.ID }))
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.Store.Key(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.view(k, ""))
}

// RevokeRequest is the optional body of POST /v1/keys/{id}/revoke.
type RevokeRequest struct {
	Reason string `json:"reason,omitempty"`
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	var req RevokeRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	k, err := s.Manage.RevokeKey(r.Context(), actor(r), r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.view(k, ""))
}

func (s *Server) listTiers(w http.ResponseWriter, r *http.Request) error {
	ts, err := s.Store.Tiers(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, List[*keygate.Tier]{Data: ts})
}

// weather is the sample protected endpoint: it answers only requests whose
// key passed keyauth, and says whose key it was.
func (s *Server) weather(w http.ResponseWriter, r *http.Request) error {
	v, _ := keyauth.FromContext(r.Context())
	city := r.URL.Query().Get("city")
	if city == "" {
		city = "Berlin"
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"city":          city,
		"forecast":      "sunny",
		"temperature_c": 21,
		"key_id":        v.Key.ID,
		"account_id":    v.Key.AccountID,
		"tier":          v.Tier.Name,
	})
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
