// Package api is keygate's HTTP interface: the admin API under /v1 with
// root-key auth, self-service registration, the verify API, health checks,
// the OpenAPI document, and a Client for the CLI.
package api

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/keyauth"
	"github.com/keygate/keygate/leak"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/problem"
)

// MaxBodyBytes bounds every request body but imports'; MaxImportBytes
// bounds those.
const (
	MaxBodyBytes   = 64 << 10
	MaxImportBytes = 32 << 20
)

//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI document served at /v1/openapi.json.
func OpenAPI() []byte { return openapiDocument() }

// openapiDocument is the OpenAPI document as served: api/openapi.json with
// info.version set to keygate.Version, so that the document and `keygate
// version` always name the same release.
var openapiDocument = sync.OnceValue(func() []byte {
	var doc struct {
		Info struct {
			Version string `json:"version"`
		} `json:"info"`
	}
	// The file is embedded and TestOpenAPIVersionIsKeygates checks the
	// result, so neither failure below can reach a running server.
	if json.Unmarshal(openapiJSON, &doc) != nil {
		return openapiJSON
	}
	// info comes first in the file, so its version is the first one.
	old := fmt.Appendf(nil, "%q: %q", "version", doc.Info.Version)
	return bytes.Replace(openapiJSON, old, fmt.Appendf(nil, "%q: %q", "version", keygate.Version), 1)
})

// Server serves the API. Set its fields, then call Handler.
type Server struct {
	Engine *engine.Engine
	Manage *manage.Service
	Store  keygate.Store
	// UsageStore answers usage queries.
	UsageStore keygate.UsageStore
	Logger     *slog.Logger

	// Registration says who may create an account with POST /v1/register:
	// manage.RegistrationOpen, manage.RegistrationInvite, or
	// manage.RegistrationClosed; empty means closed.
	Registration string
	// RegistrationLimit, when set, throttles registration attempts per
	// client IP (--registration-limit per --registration-window).
	RegistrationLimit *engine.IPThrottle
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Usage receives a usage event for every verification; nil records none.
	Usage Recorder
	// GitHubKeys checks the signatures of GitHub secret-scanning reports
	// at POST /v1/leaks/github; nil answers that route with 404.
	GitHubKeys *leak.Keyring
	// Metrics counts verifications and store errors and serves /metrics;
	// nil serves no metrics.
	Metrics *metrics.Metrics
	// MetricsAuth makes /metrics require a root key with the metrics
	// permission. MetricsElsewhere answers /metrics with 404 here: the
	// metrics are served on a listener of their own (MetricsHandler).
	MetricsAuth, MetricsElsewhere bool
	// Exposed, when set, is told of every key found in a request's URL,
	// which is refused with KEY_IN_QUERY, so that the exposure can be
	// audited against the key (manage.Exposures.Report is one).
	Exposed func(r *http.Request, e keyauth.Exposure)
	// Webhooks is woken when a test event or a redelivery is queued, so
	// that it is sent at once; nil leaves it to the dispatcher's poll.
	Webhooks Waker
	// Degraded, when set, lists what this instance is running without
	// (such as Redis); /readyz reports it, still answering 200.
	Degraded func() []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Waker is told that work is waiting. webhook.Dispatcher is one.
type Waker interface {
	Wake()
}

// Recorder takes usage events without blocking. engine.UsageBuffer is one.
type Recorder interface {
	Record(ev keygate.UsageEvent) bool
}

// handlerFunc is an HTTP handler that returns its error for one function,
// Server.fail, to render.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one entry of the route table: the mux, the auth check and the
// OpenAPI test all read it.
type route struct {
	method, path string
	perm         string // root key permission required; "" means none
	handle       handlerFunc
	keyed        bool // guarded by an API key (keyauth) instead
}

func (s *Server) routes() []route {
	return []route{
		{method: "GET", path: "/healthz", handle: s.healthz},
		{method: "GET", path: "/readyz", handle: s.readyz},
		{method: "GET", path: "/metrics", handle: s.metrics},
		{method: "GET", path: "/v1/openapi.json", handle: s.openapi},
		{method: "POST", path: "/v1/register", handle: s.register},
		{method: "POST", path: "/v1/keys/verify", perm: keygate.PermVerify, handle: s.verify},
		{method: "POST", path: "/v1/accounts", perm: keygate.PermAdminWrite, handle: s.createAccount},
		{method: "GET", path: "/v1/accounts", perm: keygate.PermAdminRead, handle: s.listAccounts},
		{method: "GET", path: "/v1/accounts/{id}", perm: keygate.PermAdminRead, handle: s.getAccount},
		{method: "POST", path: "/v1/keys", perm: keygate.PermAdminWrite, handle: s.createKey},
		{method: "GET", path: "/v1/keys", perm: keygate.PermAdminRead, handle: s.listKeys},
		{method: "GET", path: "/v1/keys/{id}", perm: keygate.PermAdminRead, handle: s.getKey},
		{method: "POST", path: "/v1/keys/{id}/revoke", perm: keygate.PermAdminWrite, handle: s.revokeKey},
		{method: "PATCH", path: "/v1/accounts/{id}", perm: keygate.PermAdminWrite, handle: s.updateAccount},
		{method: "POST", path: "/v1/keys/import", perm: keygate.PermAdminWrite, handle: s.importKeys},
		{method: "PATCH", path: "/v1/keys/{id}", perm: keygate.PermAdminWrite, handle: s.updateKey},
		{method: "POST", path: "/v1/keys/{id}/rotate", perm: keygate.PermAdminWrite, handle: s.rotateKey},
		{method: "POST", path: "/v1/keys/{id}/enable", perm: keygate.PermAdminWrite, handle: s.setEnabled(true)},
		{method: "POST", path: "/v1/keys/{id}/disable", perm: keygate.PermAdminWrite, handle: s.setEnabled(false)},
		{method: "GET", path: "/v1/tiers", perm: keygate.PermAdminRead, handle: s.listTiers},
		{method: "POST", path: "/v1/tiers", perm: keygate.PermAdminWrite, handle: s.createTier},
		{method: "GET", path: "/v1/tiers/{name}", perm: keygate.PermAdminRead, handle: s.getTier},
		{method: "PATCH", path: "/v1/tiers/{name}", perm: keygate.PermAdminWrite, handle: s.updateTier},
		{method: "DELETE", path: "/v1/tiers/{name}", perm: keygate.PermAdminWrite, handle: s.deleteTier},
		{method: "GET", path: "/v1/audit", perm: keygate.PermAdminRead, handle: s.listAudit},
		{method: "GET", path: "/v1/usage", perm: keygate.PermAdminRead, handle: s.usage},
		{method: "GET", path: "/v1/usage/routes", perm: keygate.PermAdminRead, handle: s.routeUsage},
		{method: "GET", path: "/v1/usage/top", perm: keygate.PermAdminRead, handle: s.usageTop},
		{method: "POST", path: "/v1/webhooks", perm: keygate.PermAdminWrite, handle: s.createWebhook},
		{method: "GET", path: "/v1/webhooks", perm: keygate.PermAdminRead, handle: s.listWebhooks},
		{method: "GET", path: "/v1/webhooks/{id}", perm: keygate.PermAdminRead, handle: s.getWebhook},
		{method: "PATCH", path: "/v1/webhooks/{id}", perm: keygate.PermAdminWrite, handle: s.updateWebhook},
		{method: "DELETE", path: "/v1/webhooks/{id}", perm: keygate.PermAdminWrite, handle: s.deleteWebhook},
		{method: "POST", path: "/v1/webhooks/{id}/rotate-secret", perm: keygate.PermAdminWrite, handle: s.rotateWebhookSecret},
		{method: "POST", path: "/v1/webhooks/{id}/test", perm: keygate.PermAdminWrite, handle: s.testWebhook},
		{method: "GET", path: "/v1/webhooks/{id}/deliveries", perm: keygate.PermAdminRead, handle: s.listDeliveries},
		{method: "POST", path: "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", perm: keygate.PermAdminWrite, handle: s.redeliver},
		{method: "POST", path: "/v1/root-keys", perm: keygate.PermAdminWrite, handle: s.createRootKey},
		{method: "GET", path: "/v1/root-keys", perm: keygate.PermAdminRead, handle: s.listRootKeys},
		{method: "POST", path: "/v1/root-keys/{id}/revoke", perm: keygate.PermAdminWrite, handle: s.revokeRootKey},
		{method: "POST", path: "/v1/leaks/github", handle: s.githubLeaks},
		{method: "POST", path: "/v1/leaks", perm: keygate.PermAdminWrite, handle: s.leaks},
		{method: "POST", path: "/v1/invites", perm: keygate.PermAdminWrite, handle: s.createInvite},
		{method: "GET", path: "/v1/invites", perm: keygate.PermAdminRead, handle: s.listInvites},
		{method: "GET", path: "/v1/invites/{id}", perm: keygate.PermAdminRead, handle: s.getInvite},
		{method: "POST", path: "/v1/invites/{id}/revoke", perm: keygate.PermAdminWrite, handle: s.revokeInvite},
		{method: "GET", path: "/demo/weather", handle: s.weather, keyed: true},
	}
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Handler returns the API's http.Handler. It serves the route table and
// answers any other path with a problem body: 404 RESOURCE_NOT_FOUND, or
// 405 METHOD_NOT_ALLOWED with an Allow header when the path exists for other
// methods. It claims no path beyond its own, so a caller can mount it
// beside other handlers (see Mount).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	opts := keyauth.Options{TrustedProxies: s.TrustedProxies, Now: s.now, Exposed: s.Exposed}
	if s.Usage != nil {
		opts.Record = func(ev keygate.UsageEvent) { s.Usage.Record(ev) }
	}
	if s.Metrics != nil {
		opts.ObserveVerify = s.Metrics.ObserveVerify
	}
	keyed := keyauth.New(s.Engine, opts)
	for _, rt := range s.routes() {
		h := s.wrap(rt)
		if rt.keyed {
			h = keyed(h)
		}
		mux.Handle(rt.method+" "+rt.path, h)
	}
	return s.recoverer(s.logRequests(s.refuseKeysInURL(s.unrouted(mux))))
}

// Mount registers the API's handler on mux for every path the API serves:
// everything under /v1/, and each top-level route (/healthz, /readyz,
// /metrics, …). Every other path stays free for the caller's handlers.
func (s *Server) Mount(mux *http.ServeMux) {
	h := s.Handler()
	for _, p := range s.MountPaths() {
		mux.Handle(p, h)
	}
}

// MountPaths returns the mux patterns (without method) that cover the API:
// "/v1/" and the routes outside it.
func (s *Server) MountPaths() []string {
	seen := map[string]bool{}
	var out []string
	for _, rt := range s.routes() {
		p := rt.path
		if strings.HasPrefix(p, "/v1/") {
			p = "/v1/"
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// unrouted renders the mux's own answers for requests no route serves as
// problem bodies. The mux decides 404 against 405 (and the Allow header);
// the probe only reads its verdict.
func (s *Server) unrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			if strings.Contains(pattern, "{") {
				mux.ServeHTTP(w, r) // sets the path's wildcards
				return
			}
			// No wildcards to set: serve without matching a second time.
			r.Pattern = pattern
			h.ServeHTTP(w, r)
			return
		}
		if allow := AllowedMethods(h, r); allow != "" {
			w.Header().Set("Allow", allow)
			s.fail(w, r, keygate.Errorf(keygate.EMETHOD, "%s is not allowed on %s; use %s.", r.Method, r.URL.Path, allow))
			return
		}
		s.fail(w, r, keygate.Errorf(keygate.ENOTFOUND, "There is no endpoint at %s; see /v1/openapi.json for the API.", r.URL.Path))
	})
}

// refuseKeysInURL refuses every request whose URL carries a key, on every
// route: admin, verify and keyed alike. The key is reported to Exposed and
// never echoed.
func (s *Server) refuseKeysInURL(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e, ok := keyauth.KeyInURL(r.URL); ok {
			if s.Exposed != nil {
				s.Exposed(r, e)
			}
			v := keygate.Verification{Outcome: keygate.OutcomeKeyInQuery}
			problem.Write(w, problem.FromVerification(&v, s.now()))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// AllowedMethods returns the Allow header with which h, a mux's answer
// for a request it has no route for, refuses r: the methods the path has
// routes for, or "" when it has none (404). The mux's plain-text answer is
// dropped, for the caller to answer with a problem.
func AllowedMethods(h http.Handler, r *http.Request) string {
	probe := &probeWriter{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status != http.StatusMethodNotAllowed {
		return ""
	}
	return probe.header.Get("Allow")
}

// probeWriter keeps the status and headers of an answer and drops its body.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header         { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *probeWriter) WriteHeader(code int)        { p.status = code }

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.perm != "" {
			if err := s.authorize(r, rt.perm); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		if err := rt.handle(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

type rootCtxKey struct{}

// authorize checks the root key in the Authorization header for perm and
// records it in the request's context for the audit actor.
func (s *Server) authorize(r *http.Request, perm string) error {
	auth := r.Header.Get("Authorization")
	// The auth-scheme is case-insensitive (RFC 9110 §11.1).
	scheme, token, ok := strings.Cut(strings.TrimSpace(auth), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return keygate.Errorf(keygate.EUNAUTHORIZED, "This endpoint needs a root key: send it as \"Authorization: Bearer kgr_…\". The first start of keygate printed one (or wrote it to --root-key-file).")
	}
	// A wrong root key counts against the client IP like a wrong API key.
	rk, wait := s.Engine.AuthenticateRoot(strings.TrimSpace(token), keyauth.ClientIP(r, s.TrustedProxies))
	if wait > 0 {
		return &keygate.Error{Code: string(keygate.OutcomeTooManyFailures), RetryAfter: wait,
			Message: "Too many requests with invalid keys came from this address. Retry later with a valid root key."}
	}
	if rk == nil {
		return keygate.Errorf(keygate.EUNAUTHORIZED, "The root key in the Authorization header is not valid: it is unknown, revoked or mistyped.")
	}
	if !rk.Can(perm) {
		return keygate.Errorf(keygate.EFORBIDDEN, "The root key %s lacks the %q permission this endpoint needs.", rk.ID, perm)
	}
	if perm != keygate.PermVerify {
		// The audit actor of an admin request. Verification writes no
		// audit events, so the hot path skips the copy of the request.
		*r = *r.WithContext(context.WithValue(r.Context(), rootCtxKey{}, rk))
	}
	return nil
}

// actor returns the audit actor of an authorized request.
func actor(r *http.Request) string {
	if rk, ok := r.Context().Value(rootCtxKey{}).(*keygate.RootKey); ok {
		return manage.ActorRootKey(rk.ID)
	}
	return manage.ActorSystem
}

// fail renders err as a problem body and logs what the client does not see.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.FromError(err)
	if p.Code == keygate.EUNAVAILABLE && s.Metrics != nil {
		s.Metrics.StoreError()
	}
	if p.Status >= 500 {
		s.log().Error("request failed", "method", r.Method, "path", keyauth.SafePath(r.URL.Path), "code", p.Code, "err", err)
	}
	problem.Write(w, p)
}

// logRequests logs each request's method, path (never the query, which may
// hold a key sent by mistake), status and duration. It never logs headers.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log().Enabled(r.Context(), slog.LevelInfo) {
			next.ServeHTTP(w, r) // not logged: no clock reads, no wrapper
			return
		}
		start := time.Now()
		sw := &keyauth.StatusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.log().LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", keyauth.SafePath(r.URL.Path)),
			slog.Int("status", sw.Status),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr))
	})
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log().Error("panic serving request", "method", r.Method, "path", keyauth.SafePath(r.URL.Path), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				problem.Write(w, problem.FromError(errors.New("panic")))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// decode reads a JSON body into dst: at most MaxBodyBytes, no unknown
// fields, exactly one value. Every failure is a 4xx the client can fix.
func decode(w http.ResponseWriter, r *http.Request, dst any, optional bool) error {
	return decodeLimit(w, r, dst, optional, MaxBodyBytes)
}

func decodeLimit(w http.ResponseWriter, r *http.Request, dst any, optional bool, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return keygate.Errorf(keygate.EINVALID, "Content-Type must be application/json, not %q.", ct)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, optional, limit)
	}
	if dec.More() {
		return keygate.Errorf(keygate.EINVALID, "The request body must hold exactly one JSON object.")
	}
	return nil
}

// decodeError turns an error of a JSON decoder reading a body of at most
// limit bytes into the 4xx that tells the client what to fix; nil for an
// empty body that is optional.
func decodeError(err error, optional bool, limit int64) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		if optional {
			return nil
		}
		return keygate.Errorf(keygate.EINVALID, "The request body is empty; send a JSON object.")
	case errors.As(err, &tooBig):
		return keygate.Errorf(keygate.ETOOLARGE, "The request body is larger than %d bytes.", limit)
	case errors.As(err, &syn):
		return keygate.Errorf(keygate.EINVALID, "The request body is not valid JSON (at byte %d).", syn.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return keygate.Errorf(keygate.EINVALID, "Field %q must be %s.", typ.Field, jsonKind(typ.Type.Kind().String()))
	case errors.As(err, &typ):
		return keygate.Errorf(keygate.EINVALID, "A field holds %s where %s is expected; see /v1/openapi.json.", typ.Value, jsonKind(typ.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return keygate.Errorf(keygate.EINVALID, "The request body has an unknown field %s; see /v1/openapi.json.", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return keygate.Errorf(keygate.EINVALID, "The request body is truncated JSON.")
	default:
		return keygate.Errorf(keygate.EINVALID, "The request body could not be read as JSON: %v.", err)
	}
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a number"
}

// writeJSON writes v as JSON with status. It returns nil so handlers can
// end with it: once the status is sent, an encoding error can only be a
// broken connection, and there is no one left to tell.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
	return nil
}
