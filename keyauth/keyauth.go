// Package keyauth is net/http middleware that checks the API key on every
// request: it finds the key (X-API-Key, or Authorization: Bearer), refuses
// keys sent in the URL, asks a Verifier, sets the RateLimit headers, and
// either answers with a problem+json body or passes the request on with
// the verification in its context.
package keyauth

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/problem"
)

// HeaderAPIKey is the header API keys are sent in.
const HeaderAPIKey = "X-API-Key"

// QueryParams are URL query parameter names (matched case-insensitively)
// that, when present, mean a key was sent in the URL: refused with
// KEY_IN_QUERY whatever their value. A parameter of any other name is
// refused too when its value holds a valid key.
var QueryParams = []string{"api_key", "apikey", "key", "token", "access_token", "x-api-key"}

// Verifier checks a key. engine.Engine is one.
type Verifier interface {
	Verify(ctx context.Context, req keygate.VerifyRequest) keygate.Verification
}

// Options configure the middleware.
type Options struct {
	// Scopes are required of every key on the routes the middleware guards.
	Scopes []string
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	// Empty (the default) believes no one: the client IP is the peer's.
	TrustedProxies []netip.Prefix
	// Now is the clock for Retry-After and reset times; nil means time.Now.
	Now func() time.Time
	// Record, when set, receives the usage event of every request the
	// middleware checked, valid or not, once the answer is sent.
	Record func(ev keygate.UsageEvent)
	// ObserveVerify, when set, receives each verification's outcome and
	// how long the verification took.
	ObserveVerify func(o keygate.Outcome, d time.Duration)
	// Exposed, when set, is told of every key found in a request's URL
	// (which is refused with KEY_IN_QUERY), so that the exposure can be
	// recorded against the key. It must not block, log or keep the key.
	Exposed func(r *http.Request, e Exposure)
}

// Exposure is a key found in a request's URL. Key is the candidate found:
// a valid keygate key, or the value of a QueryParams parameter (which may
// be anything, including empty).
type Exposure struct {
	Key   string
	Where string // "query" or "path"
}

type ctxKey struct{}

// FromContext returns the verification of the request's key, set by the
// middleware for requests it let through.
func FromContext(ctx context.Context) (*keygate.Verification, bool) {
	v, ok := ctx.Value(ctxKey{}).(*keygate.Verification)
	return v, ok
}

// state is what the middleware keeps for one request. It is the context
// the next handler gets: its Value answers ctxKey{} with the verification
// and asks the parent for everything else, so cancellation and other
// values pass through unchanged.
type state struct {
	context.Context
	v  keygate.Verification
	sw StatusWriter
}

func (s *state) Value(key any) any {
	if key == (ctxKey{}) {
		return &s.v
	}
	return s.Context.Value(key)
}

// New returns the middleware.
func New(v Verifier, o Options) func(http.Handler) http.Handler {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := now()
			ip := ClientIP(r, o.TrustedProxies)
			// One allocation carries the request's verification, its
			// context and its status writer.
			st := &state{Context: r.Context()}
			res := &st.v
			*res = check(st.Context, v, r, o.Scopes, ip, o.Exposed)
			if o.ObserveVerify != nil {
				o.ObserveVerify(res.Outcome, now().Sub(start))
			}
			SetRateLimitHeaders(w.Header(), res)
			status := http.StatusOK
			if !res.Valid() {
				p := problem.FromVerification(res, start)
				problem.Write(w, p)
				status = p.Status
			} else {
				st.sw.ResponseWriter = w
				next.ServeHTTP(&st.sw, r.WithContext(st))
				status = st.sw.Status
			}
			if o.Record != nil {
				o.Record(UsageEvent(res, r, ip, status, start, now().Sub(start)))
			}
		})
	}
}

// UsageEvent builds the usage event of one checked request.
func UsageEvent(v *keygate.Verification, r *http.Request, ip netip.Addr, status int, at time.Time, latency time.Duration) keygate.UsageEvent {
	ev := keygate.UsageEvent{
		Time: at, Outcome: v.Outcome, Method: r.Method, Route: r.Pattern,
		Status: status, Latency: latency, IP: ip,
	}
	if _, path, ok := strings.Cut(ev.Route, " "); ok {
		ev.Route = path // the pattern's method is already in Method
	}
	if ev.Route == "" {
		ev.Route = r.URL.Path
	}
	if v.Key != nil {
		ev.KeyID, ev.AccountID = v.Key.ID, v.Key.AccountID
	}
	return ev
}

// StatusWriter is an http.ResponseWriter that remembers the status the
// handler answered with, for usage events and request logs.
type StatusWriter struct {
	http.ResponseWriter
	Status int // 0 until the handler writes
}

// WriteHeader records code and passes it on.
func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 and passes b on.
func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Check verifies the key of r without answering: the building block for
// callers that answer themselves (the gateway).
func Check(ctx context.Context, v Verifier, r *http.Request, o Options) keygate.Verification {
	return check(ctx, v, r, o.Scopes, ClientIP(r, o.TrustedProxies), o.Exposed)
}

func check(ctx context.Context, v Verifier, r *http.Request, scopes []string, ip netip.Addr, exposed func(*http.Request, Exposure)) keygate.Verification {
	if e, ok := KeyInURL(r.URL); ok {
		if exposed != nil {
			exposed(r, e)
		}
		return keygate.Verification{Outcome: keygate.OutcomeKeyInQuery}
	}
	key, _ := HeaderKey(r)
	return v.Verify(ctx, keygate.VerifyRequest{Key: key, Scopes: scopes, IP: ip})
}

// Key returns the key presented in r's headers, and whether r's URL
// carries a key (see KeyInURL), in which case key is empty.
func Key(r *http.Request) (key string, inURL bool) {
	if _, ok := KeyInURL(r.URL); ok {
		return "", true
	}
	key, _ = HeaderKey(r)
	return key, false
}

// HeaderKey returns the key presented in r's headers — X-API-Key, else
// Authorization: Bearer — and the header it came from.
func HeaderKey(r *http.Request) (key, header string) {
	// Looked up by their canonical names, which Get would otherwise build
	// (and allocate) on every request.
	if k := r.Header["X-Api-Key"]; len(k) > 0 && k[0] != "" {
		return strings.TrimSpace(k[0]), HeaderAPIKey
	}
	if a := r.Header["Authorization"]; len(a) > 0 && len(a[0]) > 7 && strings.EqualFold(a[0][:7], "bearer ") {
		a := a[0]
		return strings.TrimSpace(a[7:]), "Authorization"
	}
	return "", ""
}

// KeyInURL reports whether u carries a key: a valid keygate key (any
// prefix) anywhere in the path or the query, whatever the parameter's
// name, or a parameter named in QueryParams (any case), whatever its
// value. Such requests are refused with KEY_IN_QUERY and never forwarded.
func KeyInURL(u *url.URL) (Exposure, bool) {
	if k, ok := apikey.Find(u.Path); ok {
		return Exposure{Key: k, Where: "path"}, true
	}
	if u.RawPath != "" {
		if k, ok := apikey.Find(u.RawPath); ok {
			return Exposure{Key: k, Where: "path"}, true
		}
	}
	if u.RawQuery == "" {
		return Exposure{}, false
	}
	var named *Exposure
	for rest := u.RawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		name, value, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(value, "%+") {
			if v, err := url.QueryUnescape(value); err == nil {
				value = v
			}
		}
		if k, ok := apikey.Find(value); ok {
			return Exposure{Key: k, Where: "query"}, true
		}
		if named == nil && isKeyParam(name) {
			named = &Exposure{Key: value, Where: "query"}
		}
	}
	if named != nil {
		return *named, true
	}
	return Exposure{}, false
}

func isKeyParam(name string) bool {
	if strings.Contains(name, "%") {
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
	}
	for _, p := range QueryParams {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return false
}

// ClientIP returns the address of the client that sent r. X-Forwarded-For
// is believed only when the peer is a trusted proxy, and then walked from
// the right, skipping trusted proxies, so a client cannot forge its address
// by sending the header itself.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if len(trusted) == 0 || !inAny(trusted, peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer // a garbled chain: trust only what we saw
			}
			a = a.Unmap()
			if !inAny(trusted, a) {
				return a
			}
		}
	}
	return peer
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host) // the zero Addr when the peer is not IP
	return a.Unmap()
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// SetRateLimitHeaders sets the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-11 from a verification's limits:
// a "day" policy for the daily quota and a "sec" policy for the token
// bucket, whose quota is the burst and whose window the time the bucket
// takes to refill (keygate.LimitResult.RateWindow), so that its r never
// exceeds its q.
func SetRateLimitHeaders(h http.Header, v *keygate.Verification) {
	if !v.HasLimits {
		return
	}
	l := &v.Limits
	// Both fields are built in one buffer and become one string, and their
	// values share one array: two allocations for the pair.
	var arr [160]byte
	buf := append(arr[:0], `"day";q=`...)
	buf = strconv.AppendInt(buf, l.QuotaLimit, 10)
	buf = append(buf, `;w=86400, "sec";q=`...)
	buf = strconv.AppendInt(buf, l.RateLimit, 10)
	buf = append(buf, `;w=`...)
	buf = strconv.AppendInt(buf, l.RateWindow(), 10)
	policyEnd := len(buf)

	buf = append(buf, `"day";r=`...)
	buf = strconv.AppendInt(buf, l.QuotaRemaining, 10)
	buf = append(buf, `;t=`...)
	buf = strconv.AppendInt(buf, keygate.CeilSeconds(l.QuotaReset), 10)
	buf = append(buf, `, "sec";r=`...)
	buf = strconv.AppendInt(buf, l.RateRemaining, 10)
	buf = append(buf, `;t=`...)
	buf = strconv.AppendInt(buf, keygate.CeilSeconds(l.RateReset), 10)
	both := string(buf)
	vals := make([]string, 2)
	vals[0], vals[1] = both[:policyEnd], both[policyEnd:]
	h["Ratelimit-Policy"] = vals[0:1:1]
	h["Ratelimit"] = vals[1:2:2]
}

// SafePath returns p with every key in it replaced by its start and an
// ellipsis ("kg_live_4fQx…"), for logs: a key sent in a path by mistake is
// never written out whole.
func SafePath(p string) string {
	k, ok := apikey.Find(p)
	if !ok {
		return p
	}
	var b strings.Builder
	for ok {
		i := strings.Index(p, k)
		b.WriteString(p[:i])
		b.WriteString(apikey.Start(k))
		b.WriteString("…")
		p = p[i+len(k):]
		k, ok = apikey.Find(p)
	}
	b.WriteString(p)
	return b.String()
}
