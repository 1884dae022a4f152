// Package redis holds what several keygate instances share through Redis:
// Limiter counts rate limits and daily quotas across every instance, and
// Feed carries change notifications from the instance that made a change
// to all the others.
//
// Every key this package writes starts with a prefix (DefaultPrefix unless
// one is given), so that several keygate installations, or tests, can share
// one Redis database. Keys of one API key carry its ID in braces, a Redis
// Cluster hash tag, so that the limiter's script touches a single slot.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every Redis key and channel name keygate uses.
const DefaultPrefix = "keygate:"

// Client is a connection pool to one Redis server.
type Client = goredis.Client

// IsURL reports whether s names a Redis server (redis:// or rediss://).
func IsURL(s string) bool {
	return strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://")
}

// ParseURL checks a Redis URL (redis://[user:password@]host:port/db or
// rediss:// for TLS) and returns the options keygate connects with: short
// timeouts, so that a Redis that stopped answering costs a verification a
// fraction of a second once, before the limiter counts locally. Its errors
// never quote the URL, which may hold a password.
func ParseURL(s string) (*goredis.Options, error) {
	if !IsURL(s) {
		return nil, errors.New("give a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0")
	}
	o, err := goredis.ParseURL(s)
	if err != nil {
		return nil, fmt.Errorf("the URL is not a valid Redis URL (redis://[user:password@]host:6379/0): %s", strings.ReplaceAll(err.Error(), s, "…"))
	}
	q, _ := url.ParseQuery(strings.SplitN(s+"?", "?", 2)[1])
	if q.Get("dial_timeout") == "" {
		o.DialTimeout = time.Second
	}
	if q.Get("read_timeout") == "" {
		o.ReadTimeout = 500 * time.Millisecond
	}
	if q.Get("write_timeout") == "" {
		o.WriteTimeout = 500 * time.Millisecond
	}
	if q.Get("pool_timeout") == "" {
		o.PoolTimeout = 500 * time.Millisecond
	}
	if q.Get("max_retries") == "" {
		// One retry replaces a connection that a Redis restart closed;
		// more would only hold the request while Redis is down.
		o.MaxRetries = 1
	}
	return o, nil
}

// Open connects to the Redis server at url (see ParseURL) and checks that
// it answers.
func Open(ctx context.Context, url string) (*Client, error) {
	o, err := ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	c := goredis.NewClient(o)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis: %s: %w", Redact(url), err)
	}
	return c, nil
}

// Redact returns a Redis URL fit for logs: without its password.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a Redis URL that does not parse)"
	}
	return u.Redacted()
}
