package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/leak"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/route"
)

// serveConfig is everything `keygate serve` reads from its flags and the
// environment (KEYGATE_<FLAG>; flags win).
//
// To add a setting: a field here, its flag in flags, its checks in
// validate (which runs before anything is opened), and its use in
// openServer (server.go).
type serveConfig struct {
	Addr        string
	DB          string
	RootKeyFile string
	KeyPrefix   string
	// Registration is open, closed or invite; RegistrationLimit attempts
	// per RegistrationWindow are allowed from one client IP (-1: no limit).
	Registration       string
	RegistrationLimit  int
	RegistrationWindow time.Duration
	// MaxKeysPerAccount bounds the keys an account may hold (0: none).
	MaxKeysPerAccount int
	TrustedProxies    string
	FlushInterval     time.Duration
	UsageRetention    time.Duration
	UsageBuffer       int
	UsageFlush        time.Duration
	UsagePerIP        int
	FailureLimit      int
	FailureWindow     time.Duration
	LogLevel          string
	LogFormat         string
	Pepper            string
	// Redis, a redis:// URL, shares rate limits, quotas and change
	// notifications between instances on PostgreSQL.
	Redis       string
	RedisPrefix string
	// WebhooksAllowPrivate lets webhooks reach loopback and private
	// addresses.
	WebhooksAllowPrivate bool
	// Upstream, when set, makes keygate a gateway in front of that API.
	Upstream        string
	UpstreamTimeout time.Duration
	// Config is the YAML file of route rules and serve settings.
	Config string
	// DefaultScopes are the scopes of a self-registered account's key.
	DefaultScopes string
	// TLSCert and TLSKey, both or neither, make the listeners serve HTTPS.
	TLSCert, TLSKey string
	// MetricsAddr, when set, serves /metrics on a listener of its own
	// (and not on Addr); MetricsAuth requires a root key with the
	// metrics permission on /metrics.
	MetricsAddr string
	MetricsAuth bool
	// AdminAddr, when set, serves the operator's API (adminAPIRoutes) on a
	// listener of its own; Addr then answers it with 404 and keeps what
	// developers and protected services call (publicAPIRoutes).
	AdminAddr string
	// GitHubKeysFile holds GitHub's secret-scanning public keys, for
	// installs that cannot fetch them from GitHubKeysURL.
	GitHubKeysFile string
	GitHubKeysURL  string

	// Derived by validate.
	logger   *slog.Logger
	now      func() time.Time // Main.Now: the clock of every component
	proxies  []netip.Prefix
	upstream *url.URL
	routes   *route.Table
	scopes   []string
	github   *leak.Keyring // checks POST /v1/leaks/github
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "`HOST:PORT` to listen on")
	fs.StringVar(&c.DB, "db", "keygate.db", "SQLite database `PATH` (created if missing; one instance per file), or a postgres:// URL that several instances share")
	fs.StringVar(&c.RootKeyFile, "root-key-file", "", "on first start, write the root key to `PATH` (mode 0600) instead of printing it")
	fs.StringVar(&c.KeyPrefix, "key-prefix", apikey.DefaultPrefix, "`PREFIX` of issued API keys: [a-z][a-z0-9]{1,15}")
	fs.StringVar(&c.Registration, "registration", "open", "who may create an account and key with POST /v1/register and the portal's sign-up: `MODE` open (anyone), invite (whoever holds a code from keygate invites create) or closed (only the operator)")
	fs.IntVar(&c.RegistrationLimit, "registration-limit", 10, "registration attempts (POST /v1/register and the portal's sign-up together) one client IP (an IPv6 /64) may make per --registration-window before 429; -1 turns this off")
	fs.DurationVar(&c.RegistrationWindow, "registration-window", time.Hour, "the window of --registration-limit")
	fs.IntVar(&c.MaxKeysPerAccount, "max-keys-per-account", 100, "most keys an account may hold that are not revoked; creating one more answers 409; 0 means no limit")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated `CIDRS` of proxies whose X-Forwarded-For is believed (default: none)")
	fs.DurationVar(&c.FlushInterval, "flush-interval", time.Second, "how often quota counters are saved (quota is also reserved ahead, so a crash never gives spent quota back)")
	fs.DurationVar(&c.UsageRetention, "usage-retention", 30*24*time.Hour, "how long raw usage events are kept (hourly and daily aggregates are kept for good); 0 keeps them for good")
	fs.IntVar(&c.UsageBuffer, "usage-buffer", 100_000, "usage events held in memory waiting to be written; past it events are dropped (and counted), never requests slowed")
	fs.DurationVar(&c.UsageFlush, "usage-flush-interval", 200*time.Millisecond, "how often usage events are written; a crash loses at most this much usage")
	fs.IntVar(&c.UsagePerIP, "usage-per-ip", 600, "raw usage events one client IP (an IPv6 /64) may add per minute; past it its requests are counted per hour, key, route and outcome instead of stored one by one; -1 turns the cap off")
	fs.IntVar(&c.FailureLimit, "failure-limit", 30, "failed key checks one client IP (an IPv6 /64) may make per --failure-window before it is refused with TOO_MANY_FAILURES; -1 turns this off")
	fs.DurationVar(&c.FailureWindow, "failure-window", time.Minute, "the window of --failure-limit")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log `LEVEL`: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log `FORMAT`: text or json")
	fs.BoolVar(&c.WebhooksAllowPrivate, "webhooks-allow-private", false, "let webhook endpoints be loopback, private or link-local addresses (refused by default, against SSRF)")
	fs.StringVar(&c.Upstream, "upstream", "", "run as a gateway: forward every request outside /v1/ (and /healthz, /readyz, /metrics) to this `URL` once its key passed the route rules")
	fs.DurationVar(&c.UpstreamTimeout, "upstream-timeout", 30*time.Second, "how long the gateway waits for the upstream's response headers before answering 504")
	fs.StringVar(&c.Config, "config", "", "YAML `FILE` with the gateway's route rules and serve settings (flags and KEYGATE_* win over it); check it with keygate routes check")
	fs.StringVar(&c.DefaultScopes, "default-scopes", "", "comma-separated `SCOPES` given to the key of each account that registers itself (POST /v1/register), such as weather:read")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "serve HTTPS with the certificate (chain) in this PEM `FILE`; needs --tls-key; SIGHUP reloads both")
	fs.StringVar(&c.TLSKey, "tls-key", "", "the private key of --tls-cert, a PEM `FILE`")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve /metrics on this `HOST:PORT` only (with TLS when --tls-cert is set), not on --addr")
	fs.BoolVar(&c.MetricsAuth, "metrics-auth", false, "require a root key with the metrics permission on /metrics")
	fs.StringVar(&c.AdminAddr, "admin-addr", "", "serve the admin API (every /v1/ endpoint that needs a root key with admin:read or admin:write) on this `HOST:PORT` only (with TLS when --tls-cert is set); --addr then answers it with 404 and keeps registration, POST /v1/keys/verify, /v1/leaks/github, the portal and the gateway")
	fs.StringVar(&c.GitHubKeysFile, "github-keys-file", "", "GitHub's secret-scanning public keys, in the JSON GitHub serves, in this `FILE` (default: fetched from --github-keys-url when a leak report arrives)")
	fs.StringVar(&c.GitHubKeysURL, "github-keys-url", leak.GitHubKeysURL, "where GitHub's secret-scanning public keys are fetched from (`URL`)")
	fs.StringVar(&c.Redis, "redis", "", "Redis `URL` (redis://host:6379/0, rediss:// for TLS) shared by every instance on one PostgreSQL --db: rate limits and quotas counted across instances, changes applied everywhere at once (prefer KEYGATE_REDIS when it holds a password)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", "keygate:", "`PREFIX` of every Redis key and channel keygate uses: give installations that share one Redis each their own")
	fs.StringVar(&c.Pepper, "pepper", "", "server-side `SECRET` for HMAC-SHA-256 key hashes; set it before issuing keys and never change it (prefer KEYGATE_PEPPER)")
}

// validate checks every setting, so that a mistake stops the start before
// the store is opened or the keys are loaded, and derives the logger and
// the trusted proxies. Logs go to logOut.
func (c *serveConfig) validate(logOut io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("%w: --log-level %q: use debug, info, warn or error", errUsage, c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		c.logger = slog.New(slog.NewTextHandler(logOut, opts))
	case "json":
		c.logger = slog.New(slog.NewJSONHandler(logOut, opts))
	default:
		return fmt.Errorf("%w: --log-format %q: use text or json", errUsage, c.LogFormat)
	}
	if !apikey.ValidPrefix(c.KeyPrefix) || c.KeyPrefix == apikey.RootPrefix {
		return fmt.Errorf("%w: --key-prefix %q: use [a-z][a-z0-9]{1,15}, other than %q", errUsage, c.KeyPrefix, apikey.RootPrefix)
	}
	proxies, err := parseCIDRList("--trusted-proxies", c.TrustedProxies)
	if err != nil {
		return err
	}
	c.proxies = proxies
	if err := checkDB(c.DB); err != nil {
		return err
	}
	if c.RedisPrefix == "" || len(c.RedisPrefix) > 64 {
		return fmt.Errorf("%w: --redis-prefix must be 1 to 64 characters", errUsage)
	}
	if err := checkRedis(c.Redis, c.DB); err != nil {
		return err
	}
	if !manage.ValidRegistration(c.Registration) {
		return fmt.Errorf("%w: --registration %q: use open, invite or closed", errUsage, c.Registration)
	}
	if c.RegistrationLimit == 0 || c.RegistrationLimit < -1 || c.RegistrationWindow <= 0 {
		return fmt.Errorf("%w: --registration-limit must be at least 1 (or -1 for no limit) and --registration-window more than 0", errUsage)
	}
	if c.MaxKeysPerAccount < 0 {
		return fmt.Errorf("%w: --max-keys-per-account must be 0 (no limit) or more", errUsage)
	}
	if c.FailureLimit == 0 || c.FailureLimit < -1 || c.FailureWindow <= 0 {
		return fmt.Errorf("%w: --failure-limit must be at least 1 (or -1 for off) and --failure-window more than 0", errUsage)
	}
	if c.Upstream != "" {
		u, err := url.Parse(c.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return fmt.Errorf("%w: --upstream %q: give an http:// or https:// URL such as http://127.0.0.1:9000", errUsage, c.Upstream)
		}
		c.upstream = u
	}
	if c.DefaultScopes != "" {
		var in []string
		for _, p := range strings.Split(c.DefaultScopes, ",") {
			if p = strings.TrimSpace(p); p != "" {
				in = append(in, p)
			}
		}
		scopes, err := keygate.NormalizeScopes(in)
		if err != nil {
			return fmt.Errorf("%w: --default-scopes: %s", errUsage, keygate.ErrorMessage(err))
		}
		c.scopes = scopes
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("%w: --tls-cert and --tls-key go together: give both or neither", errUsage)
	}
	if c.MetricsAddr != "" {
		if err := checkListenAddr("--metrics-addr", c.MetricsAddr, "127.0.0.1:9090"); err != nil {
			return err
		}
		if sameListenAddr(c.MetricsAddr, c.Addr) {
			return fmt.Errorf("%w: --metrics-addr must differ from --addr", errUsage)
		}
	}
	if c.AdminAddr != "" {
		if err := checkListenAddr("--admin-addr", c.AdminAddr, "10.0.0.5:8081"); err != nil {
			return err
		}
		if sameListenAddr(c.AdminAddr, c.Addr) {
			return fmt.Errorf("%w: --admin-addr must differ from --addr: the admin API gets a listener of its own", errUsage)
		}
		if sameListenAddr(c.AdminAddr, c.MetricsAddr) {
			return fmt.Errorf("%w: --admin-addr must differ from --metrics-addr", errUsage)
		}
	}
	if c.UpstreamTimeout <= 0 {
		return fmt.Errorf("%w: --upstream-timeout must be more than 0", errUsage)
	}
	if c.UsageRetention < 0 || c.UsageBuffer < 1 || c.UsageFlush <= 0 {
		return fmt.Errorf("%w: --usage-retention must be 0 or more, --usage-buffer at least 1, --usage-flush-interval more than 0", errUsage)
	}
	if c.UsagePerIP == 0 || c.UsagePerIP < -1 {
		return fmt.Errorf("%w: --usage-per-ip must be at least 1 (or -1 for no cap)", errUsage)
	}
	if c.GitHubKeysFile != "" {
		k, err := leak.NewKeyringFromFile(c.GitHubKeysFile)
		if err != nil {
			return fmt.Errorf("%w: --github-keys-file: %v", errUsage, err)
		}
		c.github = k
	} else {
		if u, err := url.Parse(c.GitHubKeysURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%w: --github-keys-url %q: give an https:// URL", errUsage, c.GitHubKeysURL)
		}
		c.github = leak.NewKeyring(leak.KeyringOptions{URL: c.GitHubKeysURL})
	}
	return nil
}

// checkListenAddr checks the HOST:PORT given to flag: a port number, and
// a host that may be empty (every interface). example is shown in the error.
func checkListenAddr(flag, addr, example string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("%w: %s %q: give HOST:PORT, such as %s", errUsage, flag, addr, example)
	}
	return nil
}

// sameListenAddr reports whether two listen addresses are the same one.
// Port 0 picks a free port for each listener, so it never collides.
func sameListenAddr(a, b string) bool {
	if a == "" || a != b {
		return false
	}
	_, port, err := net.SplitHostPort(a)
	return err != nil || port != "0"
}

// parseCIDRList reads a comma-separated list of CIDRs given to flag.
func parseCIDRList(flag, s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := keygate.ParseCIDR(part)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %q is not a CIDR", errUsage, flag, part)
		}
		out = append(out, p)
	}
	return out, nil
}

// runServe runs `keygate serve`: it reads and checks the settings, then
// opens and starts the server, which Main.Wait and Main.Close run and stop.
func (m *Main) runServe(ctx context.Context, args []string) error {
	var cfg serveConfig
	fs := m.newFlagSet("serve")
	cfg.flags(fs)
	if err := m.parseFlags(fs, args); err != nil {
		return err
	}
	if err := m.applyConfigFile(fs, &cfg); err != nil {
		return err
	}
	if err := cfg.validate(m.Stderr); err != nil {
		return err
	}
	cfg.now = m.Now
	s, err := openServer(ctx, &cfg, m.Stdout)
	if err != nil {
		return err
	}
	m.server = s
	return nil
}

// applyConfigFile reads --config, keeps its route table, and sets every
// serve flag the file names that neither the command line nor KEYGATE_*
// set. A bad file stops the start with its line and the reason.
func (m *Main) applyConfigFile(fs *flag.FlagSet, cfg *serveConfig) error {
	if cfg.Config == "" {
		return nil
	}
	c, err := route.Load(cfg.Config)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	cfg.routes = c.Routes
	set := flagsSet(fs)
	for name, st := range c.Serve {
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			return fmt.Errorf("--config: %s:%d: serve.%s is not a setting of keygate serve (see keygate serve -h)", cfg.Config, st.Line, name)
		}
		if set[name] {
			continue
		}
		if _, ok := m.LookupEnv(envName(name)); ok {
			continue
		}
		if err := f.Value.Set(st.Value); err != nil {
			if secretFlags[name] {
				return fmt.Errorf("--config: %s:%d: serve.%s is not valid", cfg.Config, st.Line, name)
			}
			return fmt.Errorf("--config: %s:%d: serve.%s: %v", cfg.Config, st.Line, name, err)
		}
	}
	return nil
}
