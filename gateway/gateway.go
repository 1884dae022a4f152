// Package gateway is keygate's reverse proxy: it stands in front of an
// upstream API that knows nothing of keygate, checks each request's key
// against the route rules (package route), and forwards the requests it
// lets through on httputil.ReverseProxy — without the key, with the
// caller's identity in X-Keygate-* headers.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/keyauth"
	"github.com/keygate/keygate/problem"
	"github.com/keygate/keygate/route"
)

// Identity headers set on every forwarded keyed request. Any header the
// client sent whose name starts with HeaderPrefix is removed first, so the
// upstream can believe them.
const (
	HeaderPrefix    = "X-Keygate-"
	HeaderKeyID     = "X-Keygate-Key-Id"
	HeaderAccountID = "X-Keygate-Account-Id"
	HeaderTier      = "X-Keygate-Tier"
	HeaderScopes    = "X-Keygate-Scopes" // the key's scopes, comma-separated
)

// Options configure a Gateway.
type Options struct {
	// Upstream is the API requests are forwarded to; its path, if any,
	// is prepended to each request's.
	Upstream *url.URL
	// Routes decides what each request needs; nil means every request
	// needs a valid key and no particular scope.
	Routes *route.Table
	// Verifier checks keys; engine.Engine is one.
	Verifier keyauth.Verifier
	// Timeout bounds the wait for the upstream's response headers after
	// the request was sent: past it the client gets 504. Zero means 30s.
	Timeout time.Duration
	// TrustedProxies are the networks whose X-Forwarded-* headers are
	// believed (and extended rather than replaced).
	TrustedProxies []netip.Prefix
	// Transport sends requests upstream; nil means a tuned http.Transport.
	Transport http.RoundTripper
	// Record, when set, receives the usage event of every keyed request:
	// its outcome, the route rule's name, and the upstream's status and
	// latency when it was forwarded.
	Record func(ev keygate.UsageEvent)
	// ObserveVerify, when set, receives each verification's outcome and
	// duration.
	ObserveVerify func(o keygate.Outcome, d time.Duration)
	// Exposed, when set, is told of each key found in a request's URL.
	Exposed func(r *http.Request, e keyauth.Exposure)
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Gateway is an http.Handler that checks keys and proxies to the upstream.
type Gateway struct {
	o      Options
	routes *route.Table
	proxy  *httputil.ReverseProxy
	log    *slog.Logger
	now    func() time.Time
}

var _ http.Handler = (*Gateway)(nil)

// New returns a Gateway for o.
func New(o Options) (*Gateway, error) {
	if o.Upstream == nil || (o.Upstream.Scheme != "http" && o.Upstream.Scheme != "https") || o.Upstream.Host == "" {
		return nil, errors.New("gateway: the upstream must be an http:// or https:// URL with a host")
	}
	if o.Verifier == nil {
		return nil, errors.New("gateway: a Verifier is required")
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	g := &Gateway{o: o, routes: o.Routes, log: o.Logger, now: o.Now}
	if g.routes == nil {
		g.routes, _ = route.NewTable(nil, route.DefaultRule())
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	tr := o.Transport
	if tr == nil {
		tr = NewTransport(o.Timeout)
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:      g.rewrite,
		Transport:    tr,
		BufferPool:   bufferPool{},
		ErrorHandler: g.proxyError,
		// Responses without a length (streams, server-sent events) are
		// flushed as they come; others fill the 32 KiB copy buffer.
		FlushInterval: 0,
		ErrorLog:      slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	return g, nil
}

// NewTransport returns the transport the gateway uses by default: a
// generous idle pool per upstream, 5 s to connect, and timeout for the
// upstream's response headers.
func NewTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // never an environment proxy between keygate and its upstream
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
	}
}

type ctxKey struct{}

// forward is what the checks decided about one request, for rewrite.
type forward struct {
	v      *keygate.Verification // nil on a public route
	header string                // the header the key came in, to strip
}

// ServeHTTP checks the request and forwards it, or answers with a problem.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.now()
	if !route.Clean(r.URL.Path) {
		problem.Write(w, problem.FromError(keygate.Errorf(keygate.EINVALID,
			"The path has empty, \".\" or \"..\" segments; send it in canonical form.")))
		g.logRequest(r, "", http.StatusBadRequest, start)
		return
	}
	rule := g.routes.Match(r.Method, r.URL.Path)
	ip := keyauth.ClientIP(r, g.o.TrustedProxies)
	if e, ok := keyauth.KeyInURL(r.URL); ok {
		if g.o.Exposed != nil {
			g.o.Exposed(r, e)
		}
		v := keygate.Verification{Outcome: keygate.OutcomeKeyInQuery}
		g.refuse(w, r, &v, rule, ip, start)
		return
	}
	if rule.Public {
		g.serve(w, r, &forward{}, rule, start)
		return
	}
	key, header := keyauth.HeaderKey(r)
	v := g.o.Verifier.Verify(r.Context(), keygate.VerifyRequest{Key: key, Scopes: rule.Scopes, IP: ip})
	if g.o.ObserveVerify != nil {
		g.o.ObserveVerify(v.Outcome, g.now().Sub(start))
	}
	keyauth.SetRateLimitHeaders(w.Header(), &v)
	if !v.Valid() {
		g.refuse(w, r, &v, rule, ip, start)
		return
	}
	status := g.serve(w, r, &forward{v: &v, header: header}, rule, start)
	if g.o.Record != nil {
		g.o.Record(g.event(&v, r, rule, ip, status, start))
	}
}

func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, v *keygate.Verification, rule *route.Rule, ip netip.Addr, start time.Time) {
	p := problem.FromVerification(v, start)
	problem.Write(w, p)
	if g.o.Record != nil {
		g.o.Record(g.event(v, r, rule, ip, p.Status, start))
	}
	g.logRequest(r, rule.Label(), p.Status, start)
}

func (g *Gateway) event(v *keygate.Verification, r *http.Request, rule *route.Rule, ip netip.Addr, status int, start time.Time) keygate.UsageEvent {
	ev := keygate.UsageEvent{
		Time: start, Outcome: v.Outcome, Method: r.Method, Route: rule.Label(),
		Status: status, Latency: g.now().Sub(start), IP: ip,
	}
	if v.Key != nil {
		ev.KeyID, ev.AccountID = v.Key.ID, v.Key.AccountID
	}
	return ev
}

// serve forwards r and returns the status the client got.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, f *forward, rule *route.Rule, start time.Time) int {
	// A proxied exchange may stream for long: the server's read and write
	// deadlines, meant for the admin API, do not apply to it.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	sw := &keyauth.StatusWriter{ResponseWriter: w}
	g.proxy.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, f)))
	g.logRequest(r, rule.Label(), sw.Status, start)
	return sw.Status
}

// rewrite builds the upstream request: the upstream's URL, no key, fresh
// identity headers, and X-Forwarded-For/Proto/Host. Hop-by-hop headers
// (RFC 9110 §7.6.1, including those named in Connection) were already
// removed by ReverseProxy, as were the client's X-Forwarded-* headers.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	f, _ := pr.In.Context().Value(ctxKey{}).(*forward)
	out := pr.Out
	pr.SetURL(g.o.Upstream)

	h := out.Header
	h.Del(keyauth.HeaderAPIKey)
	if a := h.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		tok := strings.TrimSpace(a[7:])
		if _, err := apikey.Parse(tok); err == nil || (f != nil && f.header == "Authorization") {
			h.Del("Authorization")
		}
	}
	for name := range h {
		if len(name) > len(HeaderPrefix) && strings.EqualFold(name[:len(HeaderPrefix)], HeaderPrefix) {
			delete(h, name)
		}
	}
	if f != nil && f.v != nil && f.v.Key != nil {
		k := f.v.Key
		h[HeaderKeyID] = []string{k.ID}
		h[HeaderAccountID] = []string{k.AccountID}
		if f.v.Tier != nil {
			h[HeaderTier] = []string{f.v.Tier.Name}
		}
		h[HeaderScopes] = []string{strings.Join(k.Scopes, ",")}
	}

	// X-Forwarded-*: a trusted proxy's chain is extended, anyone else's
	// was dropped and starts afresh with the peer.
	peer := keyauth.ClientIP(pr.In, nil)
	if len(g.o.TrustedProxies) > 0 && inAny(g.o.TrustedProxies, peer) {
		if xff := pr.In.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			h["X-Forwarded-For"] = append([]string(nil), xff...)
		}
		pr.SetXForwarded()
		if p := pr.In.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			h.Set("X-Forwarded-Proto", p)
		}
		if v := pr.In.Header.Get("X-Forwarded-Host"); v != "" {
			h.Set("X-Forwarded-Host", v)
		}
		return
	}
	pr.SetXForwarded()
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// proxyError answers for an upstream that could not be reached (502) or
// did not answer in time (504), with problem bodies.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client went away; there is no one to answer.
		w.WriteHeader(499)
		return
	}
	var ne net.Error
	var p *problem.Problem
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		p = problem.FromError(keygate.Errorf(keygate.EUPSTREAMTIMEOUT,
			"The upstream API did not answer within %s; retry later.", g.o.Timeout))
	} else {
		p = problem.FromError(keygate.Errorf(keygate.EUPSTREAM,
			"The upstream API could not be reached; retry later."))
	}
	g.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream failed",
		slog.String("method", r.Method), slog.String("path", keyauth.SafePath(r.URL.Path)),
		slog.Int("status", p.Status), slog.String("err", err.Error()))
	problem.Write(w, p)
}

func (g *Gateway) logRequest(r *http.Request, rule string, status int, start time.Time) {
	if !g.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "proxy",
		slog.String("method", r.Method),
		slog.String("path", keyauth.SafePath(r.URL.Path)),
		slog.String("route", rule),
		slog.Int("status", status),
		slog.Duration("duration", g.now().Sub(start)),
		slog.String("remote", r.RemoteAddr))
}

// bufferPool shares the 32 KiB copy buffers between requests.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
