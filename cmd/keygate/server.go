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
	s.http = &http.Server{
		Handler:           s.handler(apiSrv, gw, pt),
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
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen on --metrics-addr %s: %w", cfg.MetricsAddr, err)
		}
		s.metricsHTTP = &http.Server{
			Handler: apiSrv.MetricsHandler(), TLSConfig: s.http.TLSConfig, ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: s.http.ErrorLog,
		}
	}
	if err := bootstrap(ctx, adm, cfg.RootKeyFile, stdout, log); err != nil {
		ln.Close()
		if metricsLn != nil {
			metricsLn.Close()
		}
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
	s.serveErr = make(chan error, 2)
	go func() { s.serveErr <- serve(s.http, ln) }()
	if s.metricsHTTP != nil {
		go func() { s.serveErr <- serve(s.metricsHTTP, metricsLn) }()
		log.Info("metrics listening", "addr", metricsLn.Addr().String(), "tls", s.certs != nil, "auth", cfg.MetricsAuth)
	}
	if s.certs != nil {
		s.certs.watch()
	}
	log.Info("keygate listening", "addr", ln.Addr().String(), "tls", s.certs != nil, "upstream", cfg.Upstream, "db", redactDB(cfg.DB), "redis", redactRedis(cfg.Redis), "version", keygate.Version, "registration", cfg.Registration)
	return s, nil
}

// serve serves HTTPS when srv has a TLS configuration, else HTTP.
func serve(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}

// handler is the server's top-level mux. The API claims its own paths
// (/v1/, /healthz, /readyz, /metrics, …); with --upstream the gateway
// takes every other path, and without it the API answers them with 404
// problems. The portal takes /portal and everything under it. Mount new
// handlers here.
func (s *runningServer) handler(apiSrv *api.Server, gw http.Handler, pt *portal.Server) http.Handler {
	mux := http.NewServeMux()
	apiSrv.Mount(mux)
	pt.Mount(mux)
	if gw != nil {
		mux.Handle("/", gw)
	} else {
		mux.Handle("/", apiSrv.Handler())
	}
	return mux
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
