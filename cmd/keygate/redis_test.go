package main

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/testenv"
	"github.com/keygate/keygate/redis"
)

// redisPrefix returns a --redis-prefix of t's own and deletes its keys
// when t ends, so that tests sharing the Redis server never meet.
func redisPrefix(t *testing.T, url string) string {
	t.Helper()
	c, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	p := "kgtest:" + rand.Text()[:12] + ":"
	t.Cleanup(func() {
		defer c.Close()
		ctx := context.Background()
		if keys, err := c.Keys(ctx, p+"*").Result(); err == nil && len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return p
}

// eventually polls cond until it holds. The bound is generous: how fast
// changes travel is measured in docs/BENCHMARKS.md, not asserted here.
func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for deadline := start.Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return time.Since(start)
		}
	}
	t.Fatalf("waited 15s for %s", what)
	return 0
}

// TestServePostgresRedis runs two `keygate serve` processes on one
// PostgreSQL schema and one Redis (the second configured by KEYGATE_REDIS):
// a 50/day key hammered through both passes exactly 50 times, a key and a
// root key revoked on one are refused by the other, and a restarted
// instance keeps the count.
func TestServePostgresRedis(t *testing.T) {
	db := testenv.PostgresSchema(t)
	url := testenv.Redis(t)
	prefix := redisPrefix(t, url)
	a := startServer(t, "--db", db, "--redis", url, "--redis-prefix", prefix)
	root := rootKeyRE.FindString(a.stdout.String())
	if root == "" {
		t.Fatalf("first start printed no root key; stderr:\n%s", a.stderr)
	}
	b := startServerEnv(t, []string{"KEYGATE_REDIS=" + url, "KEYGATE_REDIS_PREFIX=" + prefix}, "--db", db)

	var acct struct{ ID string }
	cliJSON(t, a, root, &acct, "accounts", "create", "--name", "Acme", "--email", "ops@acme.test")
	var key struct {
		ID  string
		Key string `json:"key"`
	}
	cliJSON(t, a, root, &key, "keys", "create", "--account", acct.ID, "--name", "shared", "--quota", "50", "--rate", "100000", "--burst", "100000")
	eventually(t, "the second instance to know the new key", func() bool {
		code, _ := weather(t, b, key.Key)
		return code == 200
	})

	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	for i := range 4 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for range 25 {
				code, _ := weather(t, s, key.Key)
				mu.Lock()
				got[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got[200] != 49 || got[429] != 51 {
		t.Fatalf("100 requests through two instances on a 50/day key with 1 used: got %v by status, want 49 × 200 and 51 × 429", got)
	}

	// A restarted instance still refuses the key: the count is shared.
	b.stop(t)
	b = startServerEnv(t, []string{"KEYGATE_REDIS=" + url, "KEYGATE_REDIS_PREFIX=" + prefix}, "--db", db)
	if code, outcome := weather(t, b, key.Key); code != 429 || outcome != "QUOTA_EXCEEDED" {
		t.Fatalf("after restarting the second instance: got %d %s, want 429 QUOTA_EXCEEDED", code, outcome)
	}

	if _, stderr, code := cli(t, a, root, "keys", "revoke", key.ID, "--reason", "test"); code != 0 {
		t.Fatalf("keys revoke: exit %d: %s", code, stderr)
	}
	d := eventually(t, "the other instance to refuse the revoked key", func() bool {
		code, outcome := weather(t, b, key.Key)
		return code == 401 && outcome == "REVOKED"
	})
	t.Logf("revoked on one instance, refused by the other after %s", d)

	var rk struct {
		ID  string
		Key string `json:"key"`
	}
	cliJSON(t, a, root, &rk, "root-keys", "create", "--name", "ops", "--permission", "admin:read")
	eventually(t, "the other instance to accept the new root key", func() bool {
		_, _, code := cli(t, b, rk.Key, "accounts", "list")
		return code == 0
	})
	if _, stderr, code := cli(t, a, root, "root-keys", "revoke", rk.ID); code != 0 {
		t.Fatalf("root-keys revoke: exit %d: %s", code, stderr)
	}
	d = eventually(t, "the other instance to refuse the revoked root key", func() bool {
		_, _, code := cli(t, b, rk.Key, "accounts", "list")
		return code != 0
	})
	t.Logf("root key revoked on one instance, refused by the other after %s", d)

	logs := a.stderr.String() + b.stderr.String()
	if strings.Contains(logs, "PostgreSQL without --redis") {
		t.Errorf("an instance with --redis warned that it runs without it:\n%s", logs)
	}
}

// TestServeRedisRefused: --redis needs PostgreSQL, and a bad URL stops the
// start without quoting it.
func TestServeRedisRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--db", "keygate.db", "--redis", "redis://127.0.0.1:6379/0"}, "--redis shares counters"},
		{[]string{"--db", "postgres://db/kg", "--redis", "http://:s3cret@127.0.0.1:6379"}, "give a redis:// or rediss:// URL"},
		{[]string{"--db", "postgres://db/kg", "--redis", "redis://:s3cret@127.0.0.1:6379/x"}, "not a valid Redis URL"},
	} {
		var stderr strings.Builder
		m := &Main{Stdout: &strings.Builder{}, Stderr: &stderr, LookupEnv: func(string) (string, bool) { return "", false }}
		err := m.Run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...))
		if err == nil {
			m.Close()
			t.Errorf("serve %v: started", tc.args)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "s3cret") {
			t.Errorf("serve %v: got %q, want it to say %q without the password", tc.args, msg, tc.want)
		}
	}
}
