package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/gateway"
	"github.com/keygate/keygate/keyauth"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/portal"
	"github.com/keygate/keygate/postgres"
	"github.com/keygate/keygate/problem"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/webhook"
)

// shutdownTimeout bounds how long Close waits for requests in flight.
const shutdownTimeout = 15 * time.Second

// runningServer is a started `keygate serve`: the store, the engine and the usage
// buffer with their background loops, and the HTTP server.
type runningServer struct {
	log   *slog.Logger
	addr  string // where it listens
	store keygate.Store
	// closeDB closes the store and releases what openStore took with it.
	closeDB func() error
	eng     *engine.Engine
	usage   *engine.UsageBuffer
	http    *http.Server
	// metricsHTTP serves /metrics alone with --metrics-addr.
	metricsHTTP *http.Server
	// adminHTTP serves the admin API with --admin-addr, at adminAddr.
	adminHTTP *http.Server
	adminAddr string
	// exposures audits keys found in URLs in the background; Close waits
	// for its writes.
	exposures *manage.Exposures
	// certs serves and reloads the TLS pair with --tls-cert.
	certs *certReloader
	// onClose, when set, runs once the server has stopped (the demo's
	// upstream).
	onClose func()

	// dispatcher sends webhook deliveries and expiry raises key.expiring;
	// both run in the background until Close.
	dispatcher *webhook.Dispatcher
	expiry     *webhook.Expiry

	stopLoops             context.CancelFunc
	engineDone, usageDone chan struct{}
	webhooksDone          chan struct{}
	serveErr              chan error
}

// openServer opens the store, loads the keys, binds the listener, creates
// the first root key on an empty store and starts serving. cfg has been
// validated. On an error everything opened so far is closed again.
//
// New components are opened here, after the store; new handlers are
// mounted in handler.
func openServer(ctx context.Context, cfg *serveConfig, stdout io.Writer) (_ *runningServer, err error) {
	log := cfg.logger
	s := &runningServer{log: log}
	if cfg.TLSCert != "" {
		// Checked before anything is opened: a bad pair stops the start.
		if s.certs, err = newCertReloader(cfg.TLSCert, cfg.TLSKey, log); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if s.store, s.closeDB, err = openStore(ctx, cfg.DB, cfg.now); err != nil {
		return nil, fmt.Errorf("open database %s: %w", redactDB(cfg.DB), err)
	}
	defer func() {
		if err != nil {
			s.closeStore()
		}
	}()
	warnDBMode(cfg.DB, log)

	var pepper []byte
	if cfg.Pepper != "" {
		pepper = []byte(cfg.Pepper)
	}
	hasher := apikey.NewHasher(pepper)
	// Quota threshold reports leave the hot path through this channel;
	// webhook.Thresholds writes them to the outbox.
	thresholds := make(chan keygate.QuotaThreshold, 4096)
	sh, err := openShared(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	closeDB := s.closeDB
	s.closeDB = func() error { return errors.Join(closeDB(), sh.close()) }
	eo := engine.Options{
		Hasher: hasher, Now: cfg.now, FlushInterval: cfg.FlushInterval, Logger: log,
		FailureLimit: cfg.FailureLimit, FailureWindow: cfg.FailureWindow, Thresholds: thresholds,
	}
	sh.engineOptions(&eo, s.store, cfg, log)
	s.eng = engine.New(s.store, eo)
	if err := loadIndex(ctx, s.eng); err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	adm := &manage.Service{Store: s.store, Hasher: hasher, Now: cfg.now, KeyPrefix: cfg.KeyPrefix, DefaultScopes: cfg.scopes, AllowPrivateWebhooks: cfg.WebhooksAllowPrivate,
		MaxKeysPerAccount: cfg.MaxKeysPerAccount}
	dispatcher := &webhook.Dispatcher{Store: s.store, AllowPrivate: cfg.WebhooksAllowPrivate, Logger: log, Now: cfg.now}
	// A write that raises webhook events notifies listeners: send them now
	// rather than at the next poll.
	s.store.OnChange(func(keygate.Change) { dispatcher.Wake() })
	expiry := &webhook.Expiry{Store: s.store, Logger: log, Now: cfg.now}
	s.dispatcher, s.expiry = dispatcher, expiry
	s.usage = engine.NewUsageBuffer(s.store, engine.UsageOptions{
		Capacity: cfg.UsageBuffer, FlushInterval: cfg.UsageFlush, Retention: cfg.UsageRetention, PerIPEvents: cfg.UsagePerIP, Logger: log, Now: cfg.now,
	})
	src := metrics.Sources{
		UsageDepth: s.usage.Depth, UsageDropped: s.usage.Dropped, UsageWritten: s.usage.Written,
		UsageWriteFailures: s.usage.WriteFailures, CounterFlushErrors: s.eng.FlushFailures,
		LimiterErrors: s.eng.LimiterErrors, RootKeyFailures: s.eng.RootKeyFailures, WebhookAttempts: dispatcher.Counts,
		UsageCapped: s.usage.Capped,
	}
	if l, ok := eo.Limiter.(*quota.Local); ok {
		src.QuotaReserveFailures = l.ReserveFailures
	}
	if sh.client != nil {
		src.SharedCounting, src.LocalDecisions, src.FeedUp = sh.limiter.Shared, sh.limiter.LocalDecisions, s.eng.FeedUp
	}
	if postgres.IsURL(cfg.DB) {
		src.SyncFailures = s.eng.SyncFailures
	}
	mets := metrics.New(src)
	apiSrv := &api.Server{
		Engine: s.eng, Manage: adm, Store: s.store, UsageStore: s.store, Usage: s.usage, Metrics: mets, Logger: log,
		Registration: cfg.Registration, TrustedProxies: cfg.proxies, Webhooks: dispatcher,
		Degraded: sh.degraded(s.eng), MetricsAuth: cfg.MetricsAuth, MetricsElsewhere: cfg.MetricsAddr != "", Now: cfg.now, GitHubKeys: cfg.github,
	}
	if cfg.RegistrationLimit > 0 {
		apiSrv.RegistrationLimit = engine.NewIPThrottle(cfg.RegistrationLimit, cfg.RegistrationWindow)
	}
	exposures := &manage.Exposures{Service: adm, Lookup: s.eng.Find, Logger: log,
		ClientIP: func(r *http.Request) string { return keyauth.ClientIP(r, cfg.proxies).String() }}
	s.exposures = exposures
	apiSrv.Exposed = func(r *http.Request, e keyauth.Exposure) { exposures.Report(r, e.Key, e.Where) }
	var gw http.Handler
	if cfg.upstream != nil {
		g, err := gateway.New(gateway.Options{
			Upstream: cfg.upstream, Routes: cfg.routes, Verifier: s.eng, Timeout: cfg.UpstreamTimeout,
			TrustedProxies: cfg.proxies, Exposed: apiSrv.Exposed, Logger: log,
			Record: func(ev keygate.UsageEvent) { s.usage.Record(ev) }, ObserveVerify: mets.ObserveVerify, Now: cfg.now,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: --upstream: %v", errUsage, err)
		}
		gw = g
	}
	pt := &portal.Server{
		Store: s.store, Manage: adm, RootKeys: s.eng, Logger: log, Now: cfg.now,
		Registration: portal.Registration(cfg.Registration), Invites: adm, Scopes: portalScopes(cfg), TrustedProxies: cfg.proxies,
	}
	if apiSrv.RegistrationLimit != nil {
		// One budget per client IP for POST /v1/register and the sign-up page.
		pt.SignupLimit = apiSrv.RegistrationLimit
	}
	apiH := apiSrv.Handler()
	var split *apiSplit
	if cfg.AdminAddr != "" {
		split = &apiSplit{api: apiH, log: log}
	}
	s.http = &http.Server{
		Handler:           s.handler(apiSrv, apiH, split, gw, pt),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	if s.certs != nil {
		s.http.TLSConfig = s.certs.config()
	}
	// Bind before the first root key is made: a busy port must not lose
	// the only copy of a key printed once.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	s.addr = ln.Addr().String()
	var metricsLn, adminLn net.Listener
	closeListeners := func() {
		for _, l := range []net.Listener{ln, metricsLn, adminLn} {
			if l != nil {
				l.Close()
			}
		}
	}
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			closeListeners()
			return nil, fmt.Errorf("listen on --metrics-addr %s: %w", cfg.MetricsAddr, err)
		}
		s.metricsHTTP = &http.Server{
			Handler: apiSrv.MetricsHandler(), TLSConfig: s.http.TLSConfig, ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: s.http.ErrorLog,
		}
	}
	if split != nil {
		if adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			closeListeners()
			return nil, fmt.Errorf("listen on --admin-addr %s: %w", cfg.AdminAddr, err)
		}
		s.adminAddr = adminLn.Addr().String()
		// The timeouts of --addr: imports (up to 32 MiB) are sent here.
		s.adminHTTP = &http.Server{
			Handler: split.adminHandler(), TLSConfig: s.http.TLSConfig, ReadHeaderTimeout: s.http.ReadHeaderTimeout,
			ReadTimeout: s.http.ReadTimeout, WriteTimeout: s.http.WriteTimeout, IdleTimeout: s.http.IdleTimeout, ErrorLog: s.http.ErrorLog,
		}
	}
	if err := bootstrap(ctx, adm, cfg.RootKeyFile, stdout, log); err != nil {
		closeListeners()
		return nil, err
	}

	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopLoops = stop
	s.engineDone, s.usageDone = make(chan struct{}), make(chan struct{})
	go func() {
		limiterDone := make(chan struct{})
		go func() { sh.run(loopCtx); close(limiterDone) }()
		s.eng.Run(loopCtx)
		<-limiterDone
		close(s.engineDone)
	}()
	go func() { s.usage.Run(loopCtx); close(s.usageDone) }()
	s.webhooksDone = make(chan struct{})
	go func() {
		done := make(chan struct{}, 3)
		go func() { _ = dispatcher.Run(loopCtx); done <- struct{}{} }()
		go func() { _ = expiry.Run(loopCtx); done <- struct{}{} }()
		go func() { _ = webhook.Thresholds(loopCtx, thresholds, s.store, log); done <- struct{}{} }()
		for range 3 {
			<-done
		}
		close(s.webhooksDone)
	}()
	s.serveErr = make(chan error, 3)
	go func() { s.serveErr <- serve(s.http, ln) }()
	if s.metricsHTTP != nil {
		go func() { s.serveErr <- serve(s.metricsHTTP, metricsLn) }()
		log.Info("metrics listening", "addr", metricsLn.Addr().String(), "tls", s.certs != nil, "auth", cfg.MetricsAuth)
	}
	if s.adminHTTP != nil {
		go func() { s.serveErr <- serve(s.adminHTTP, adminLn) }()
		log.Info("admin API listening", "addr", s.adminAddr, "tls", s.certs != nil)
	}
	if s.certs != nil {
		s.certs.watch()
	}
	log.Info("keygate listening", "addr", ln.Addr().String(), "admin_addr", s.adminAddr, "tls", s.certs != nil, "upstream", cfg.Upstream, "db", redactDB(cfg.DB), "redis", redactRedis(cfg.Redis), "version", keygate.Version, "registration", cfg.Registration)
	return s, nil
}

// serve serves HTTPS when srv has a TLS configuration, else HTTP.
func serve(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

// handler is the top-level mux of --addr. The API, apiH, claims its own
// paths (/v1/, /healthz, /readyz, /metrics, …); with --admin-addr (split
// set) only its public part under /v1/. With --upstream the gateway takes
// every other path, and without it the API answers them with 404 problems.
// The portal takes /portal and everything under it. Mount new handlers
// here (and on the admin listener, apiSplit.adminHandler, if operators
// call them).
func (s *runningServer) handler(apiSrv *api.Server, apiH http.Handler, split *apiSplit, gw http.Handler, pt *portal.Server) http.Handler {
	mux := http.NewServeMux()
	for _, p := range apiSrv.MountPaths() {
		if p == "/v1/" && split != nil {
			mux.Handle(p, split.publicV1())
			continue
		}
		mux.Handle(p, apiH)
	}
	pt.Mount(mux)
	if gw != nil {
		mux.Handle("/", gw)
	} else {
		mux.Handle("/", apiH)
	}
	return mux
}

// With --admin-addr the API is split between two listeners. What
// developers and protected services call — publicAPIRoutes — is served on
// --addr only; every other /v1/ endpoint, the operator's API that needs a
// root key with admin:read or admin:write, on --admin-addr only; the
// routes of sharedAPIRoutes on both. A /v1/ route added to the API is the
// operator's unless it is listed here: TestAdminSplitFollowsOpenAPI checks
// the lists against api/openapi.json.
var (
	publicAPIRoutes = []string{
		"POST /v1/register",     // self-service registration
		"POST /v1/keys/verify",  // services checking keys, with a root key that has only verify
		"POST /v1/leaks/github", // GitHub secret scanning, signed by GitHub
	}
	sharedAPIRoutes = []string{"GET /v1/openapi.json", "GET /healthz", "GET /readyz"}
)

// apiSplit serves the API's handler, api, on the two listeners of
// --admin-addr, each with the routes that belong to it. A request that is
// not its listener's is answered with a 404 problem naming the other
// listener's flag. Either way a key in the URL is refused by the API with
// KEY_IN_QUERY first, and audited, as without --admin-addr.
type apiSplit struct {
	api http.Handler
	log *slog.Logger
}

// publicV1 serves /v1/ on --addr: publicAPIRoutes and the OpenAPI
// document.
func (a *apiSplit) publicV1() http.Handler {
	mine := http.NewServeMux()
	for _, p := range append(slices.Clone(publicAPIRoutes), sharedAPIRoutes...) {
		mine.Handle(p, a.api)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := keyauth.KeyInURL(r.URL); ok {
			a.api.ServeHTTP(w, r) // refused before any route is chosen
			return
		}
		h, pattern := mine.Handler(r)
		if pattern != "" {
			a.api.ServeHTTP(w, r)
			return
		}
		if allow := api.AllowedMethods(h, r); allow != "" {
			w.Header().Set("Allow", allow)
			a.refuse(w, r, keygate.Errorf(keygate.EMETHOD, "%s is not allowed on %s; use %s.", r.Method, r.URL.Path, allow))
			return
		}
		a.refuse(w, r, keygate.Errorf(keygate.ENOTFOUND,
			"There is no endpoint at %s on this address: the admin API is served on the admin address (--admin-addr) only; see /v1/openapi.json for the API.", r.URL.Path))
	})
}

// adminHandler is the whole handler of --admin-addr: every /v1/ route but
// publicAPIRoutes, and /healthz and /readyz. Everything else — the
// portal, the gateway, /metrics — answers 404.
func (a *apiSplit) adminHandler() http.Handler {
	public := http.NewServeMux()
	for _, p := range publicAPIRoutes {
		public.Handle(p, a.api)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := keyauth.KeyInURL(r.URL); ok {
			a.api.ServeHTTP(w, r)
			return
		}
		if _, pattern := public.Handler(r); pattern != "" {
			a.refuse(w, r, keygate.Errorf(keygate.ENOTFOUND,
				"%s is served on the public address (--addr), not on the admin address.", pattern))
			return
		}
		a.api.ServeHTTP(w, r)
	}))
	for _, p := range sharedAPIRoutes {
		if !strings.HasPrefix(p, "GET /v1/") {
			mux.Handle(strings.TrimPrefix(p, "GET "), a.api)
		}
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := keyauth.KeyInURL(r.URL); ok {
			a.api.ServeHTTP(w, r)
			return
		}
		a.refuse(w, r, keygate.Errorf(keygate.ENOTFOUND,
			"There is no endpoint at %s on this address: it serves only the admin API under /v1/, /healthz and /readyz; the portal, the gateway and /metrics are on --addr (or --metrics-addr).", r.URL.Path))
	}))
	return mux
}

// refuse answers a request that is not its listener's with err as a
// problem, and logs it as the API logs its requests.
func (a *apiSplit) refuse(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.FromError(err)
	problem.Write(w, p)
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("path", keyauth.SafePath(r.URL.Path)),
		slog.Int("status", p.Status),
		slog.String("remote", r.RemoteAddr))
}

// portalScopes are the scopes developers may give their keys in the
// portal: those of --default-scopes and those the gateway's route rules
// require, in that order, each once.
func portalScopes(cfg *serveConfig) []string {
	var out []string
	add := func(scopes []string) {
		for _, sc := range scopes {
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	add(cfg.scopes)
	if cfg.routes != nil {
		for _, r := range cfg.routes.Rules() {
			add(r.Scopes)
		}
	}
	return out
}
