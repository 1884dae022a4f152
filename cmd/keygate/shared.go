package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/postgres"
	"github.com/keygate/keygate/quota"
	"github.com/keygate/keygate/redis"
)

// How often an instance on PostgreSQL catches up with the others' changes
// from the store: without Redis, by polling alone; with it, while the
// change feed is down, and as a backstop while it is up.
const (
	pollSyncInterval     = 500 * time.Millisecond
	redisSyncInterval    = time.Second
	redisBackstopSyncInt = 30 * time.Second
)

// checkRedis refuses a --redis that is not a Redis URL, or that is given
// with an SQLite --db, which serves one instance and has nothing to
// share. Its messages never quote the URL, which may hold a password.
func checkRedis(url, db string) error {
	if url == "" {
		return nil
	}
	if _, err := redis.ParseURL(url); err != nil {
		return fmt.Errorf("%w: --redis: %v", errUsage, err)
	}
	if !postgres.IsURL(db) {
		return fmt.Errorf("%w: --redis shares counters and changes between instances on one PostgreSQL database: give --db postgres://… too (an SQLite file serves one instance, which needs no Redis)", errUsage)
	}
	return nil
}

// shared is what the instances of one installation share beyond the
// store: Redis, when --redis is set.
type shared struct {
	client  *redis.Client
	limiter *redis.Limiter
	feed    *redis.Feed
}

// openShared connects to --redis, if set; a Redis that does not answer
// stops the start.
func openShared(ctx context.Context, cfg *serveConfig, log *slog.Logger) (*shared, error) {
	if cfg.Redis == "" {
		return &shared{}, nil
	}
	c, err := redis.Open(ctx, cfg.Redis)
	if err != nil {
		return nil, err
	}
	return &shared{
		client:  c,
		limiter: redis.NewLimiter(c, redis.LimiterOptions{Prefix: cfg.RedisPrefix, Now: cfg.now, Logger: log}),
		feed:    redis.NewFeed(c, redis.FeedOptions{Prefix: cfg.RedisPrefix, Logger: log}),
	}, nil
}

// engineOptions sets the limiter and the following of other instances in
// o: Redis's when there is one; otherwise the in-process limiter, and on
// PostgreSQL a poll of the store.
func (sh *shared) engineOptions(o *engine.Options, store keygate.Store, cfg *serveConfig, log *slog.Logger) {
	switch {
	case sh.client != nil:
		o.Limiter, o.Feed = sh.limiter, sh.feed
		o.SyncInterval, o.FeedSyncInterval = redisSyncInterval, redisBackstopSyncInt
	default:
		o.Limiter = quota.NewLocal(quota.Options{Now: cfg.now, Reserve: engine.NewReserver(store, 0, log).Reserve})
		if postgres.IsURL(cfg.DB) {
			o.SyncInterval = pollSyncInterval
			log.Warn("PostgreSQL without --redis: each instance counts rate limits and quotas by itself (with N instances a key can get up to N times its limits), and picks up other instances' changes by polling the database every 500ms; give every instance --redis to share counts and apply changes at once")
		}
	}
}

// run runs the limiter's upkeep until ctx is done.
func (sh *shared) run(ctx context.Context) {
	if sh.limiter != nil {
		sh.limiter.Run(ctx)
	}
}

// degraded lists what this instance runs without, for /readyz.
func (sh *shared) degraded(eng *engine.Engine) func() []string {
	if sh.client == nil {
		return nil
	}
	return func() []string {
		var d []string
		if !sh.limiter.Shared() {
			d = append(d, "redis: unreachable, rate limits and quotas counted by this instance alone")
		}
		if !eng.FeedUp() {
			d = append(d, "redis: change feed down, other instances' changes picked up by polling the database")
		}
		return d
	}
}

func (sh *shared) close() error {
	if sh.client == nil {
		return nil
	}
	return sh.client.Close()
}

// redactRedis returns a --redis URL fit for logs: without its password.
func redactRedis(url string) string {
	if url == "" {
		return ""
	}
	return redis.Redact(url)
}
