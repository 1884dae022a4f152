package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/metrics"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/sqlite"
)

// serveConfig is everything `keygate serve` reads from flags and the
// environment.
type serveConfig struct {
	Addr             string
	DB               string
	RootKeyFile      string
	KeyPrefix        string
	OpenRegistration bool
	TrustedProxies   string
	FlushInterval    time.Duration
	UsageRetention   time.Duration
	UsageBuffer      int
	UsageFlush       time.Duration
	FailureLimit     int
	FailureWindow    time.Duration
	LogLevel         string
	LogFormat        string
	Pepper           string
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "`HOST:PORT` to listen on")
	fs.StringVar(&c.DB, "db", "keygate.db", "SQLite database `PATH` (created if missing)")
	fs.StringVar(&c.RootKeyFile, "root-key-file", "", "on first start, write the root key to `PATH` (mode 0600) instead of printing it")
	fs.StringVar(&c.KeyPrefix, "key-prefix", apikey.DefaultPrefix, "`PREFIX` of issued API keys: [a-z][a-z0-9]{1,15}")
	fs.BoolVar(&c.OpenRegistration, "open-registration", true, "allow anyone to create an account and key with POST /v1/register")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated `CIDRS` of proxies whose X-Forwarded-For is believed (default: none)")
	fs.DurationVar(&c.FlushInterval, "flush-interval", time.Second, "how often quota counters are saved; a crash loses at most this much counted usage")
	fs.DurationVar(&c.UsageRetention, "usage-retention", 30*24*time.Hour, "how long raw usage events are kept (hourly and daily aggregates are kept for good); 0 keeps them for good")
	fs.IntVar(&c.UsageBuffer, "usage-buffer", 100_000, "usage events held in memory waiting to be written; past it events are dropped (and counted), never requests slowed")
	fs.DurationVar(&c.UsageFlush, "usage-flush-interval", 200*time.Millisecond, "how often usage events are written; a crash loses at most this much usage")
	fs.IntVar(&c.FailureLimit, "failure-limit", 30, "failed key checks one client IP (an IPv6 /64) may make per --failure-window before it is refused with TOO_MANY_FAILURES; -1 turns this off")
	fs.DurationVar(&c.FailureWindow, "failure-window", time.Minute, "the window of --failure-limit")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log `LEVEL`: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log `FORMAT`: text or json")
	fs.StringVar(&c.Pepper, "pepper", "", "server-side `SECRET` for HMAC-SHA-256 key hashes; set it before issuing keys and never change it (prefer KEYGATE_PEPPER)")
}

// parseFlags parses args into fs, then fills every flag not given on the
// command line from KEYGATE_<NAME> (dashes become underscores).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "KEYGATE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%w: %s=%q: %v", errUsage, env, v, e)
			}
		}
	})
	return err
}

func (c *serveConfig) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: use debug, info, warn or error", errUsage, c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: use text or json", errUsage, c.LogFormat)
}

func parseCIDRList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := keygate.ParseCIDR(part)
		if err != nil {
			return nil, fmt.Errorf("%w: --trusted-proxies: %q is not a CIDR", errUsage, part)
		}
		out = append(out, p)
	}
	return out, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("keygate serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := cfg.logger(stderr)
	if err != nil {
		return err
	}
	if !apikey.ValidPrefix(cfg.KeyPrefix) || cfg.KeyPrefix == apikey.RootPrefix {
		return fmt.Errorf("%w: --key-prefix %q: use [a-z][a-z0-9]{1,15}, other than %q", errUsage, cfg.KeyPrefix, apikey.RootPrefix)
	}
	proxies, err := parseCIDRList(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	if strings.Contains(cfg.DB, "://") {
		return fmt.Errorf("%w: --db %q: this build stores in SQLite; give a file path", errUsage, cfg.DB)
	}

	store, err := sqlite.Open(ctx, cfg.DB)
	if err != nil {
		return fmt.Errorf("open database %s: %w", cfg.DB, err)
	}
	defer store.Close()

	var pepper []byte
	if cfg.Pepper != "" {
		pepper = []byte(cfg.Pepper)
	}
	hasher := apikey.NewHasher(pepper)
	limiter := quota.NewLocal(quota.Options{})
	if cfg.FailureLimit == 0 || cfg.FailureLimit < -1 || cfg.FailureWindow <= 0 {
		return fmt.Errorf("%w: --failure-limit must be at least 1 (or -1 for off) and --failure-window more than 0", errUsage)
	}
	eng := engine.New(store, engine.Options{
		Hasher: hasher, Limiter: limiter, FlushInterval: cfg.FlushInterval, Logger: log,
		FailureLimit: cfg.FailureLimit, FailureWindow: cfg.FailureWindow,
	})
	if err := eng.Load(ctx); err != nil {
		return fmt.Errorf("load keys: %w", err)
	}
	adm := &manage.Service{Store: store, Hasher: hasher, KeyPrefix: cfg.KeyPrefix}
	if err := bootstrap(ctx, adm, cfg.RootKeyFile, stdout, log); err != nil {
		return err
	}

	if cfg.UsageRetention < 0 || cfg.UsageBuffer < 1 || cfg.UsageFlush <= 0 {
		return fmt.Errorf("%w: --usage-retention must be 0 or more, --usage-buffer at least 1, --usage-flush-interval more than 0", errUsage)
	}
	usage := engine.NewUsageBuffer(store, engine.UsageOptions{
		Capacity: cfg.UsageBuffer, FlushInterval: cfg.UsageFlush, Retention: cfg.UsageRetention, Logger: log,
	})
	mets := metrics.New(metrics.Sources{
		UsageDepth: usage.Depth, UsageDropped: usage.Dropped, UsageWritten: usage.Written,
		UsageWriteFailures: usage.WriteFailures, CounterFlushErrors: eng.FlushFailures,
		LimiterErrors: eng.LimiterErrors,
	})
	srv := &api.Server{
		Engine: eng, Admin: adm, Store: store, UsageStore: store, Usage: usage, Metrics: mets, Logger: log,
		OpenRegistration: cfg.OpenRegistration, TrustedProxies: proxies,
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	engineDone, usageDone := make(chan struct{}), make(chan struct{})
	go func() { eng.Run(runCtx); close(engineDone) }()
	go func() { usage.Run(runCtx); close(usageDone) }()

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	log.Info("keygate listening", "addr", ln.Addr().String(), "db", cfg.DB, "version", keygate.Version, "open_registration", cfg.OpenRegistration)

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		log.Info("shutting down")
		shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err = httpSrv.Shutdown(shutCtx)
		cancel()
	}
	// No request is in flight any more: write every buffered usage event
	// and the quota counters before the store closes.
	cancelRun()
	<-usageDone
	<-engineDone
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped", "usage_events_written", usage.Written(), "usage_events_dropped", usage.Dropped())
	return nil
}

// bootstrap creates the first root key on a store with none and hands it
// over once: written to path (mode 0600) or printed to stdout. The file is
// opened before the key is created, so a path that cannot be written stops
// the start instead of losing the only root key.
func bootstrap(ctx context.Context, adm *manage.Service, path string, stdout io.Writer, log *slog.Logger) error {
	need, err := adm.NeedsBootstrap(ctx)
	if err != nil || !need {
		return err
	}
	var f *os.File
	if path != "" {
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return fmt.Errorf("open --root-key-file: %w", err)
		}
		defer f.Close()
		// OpenFile keeps an existing file's mode; make sure it is 0600.
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("chmod --root-key-file: %w", err)
		}
	}
	rk, plaintext, err := adm.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("create the first root key: %w", err)
	}
	if f != nil {
		if _, err := fmt.Fprintln(f, plaintext); err != nil {
			return fmt.Errorf("write --root-key-file: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write --root-key-file: %w", err)
		}
		log.Info("first start: root key written", "path", path, "root_key_id", rk.ID, "start", rk.Start)
		return nil
	}
	fmt.Fprintf(stdout, "\nFirst start: created root key %s. It is shown only this once; keep it safe:\n\n    %s\n\nUse it as:  export KEYGATE_ROOT_KEY=%s\n\n", rk.ID, plaintext, plaintext)
	log.Info("first start: root key printed", "root_key_id", rk.ID, "start", rk.Start)
	return nil
}
