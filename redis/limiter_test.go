package redis_test

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/testenv"
	"github.com/keygate/keygate/redis"
)

// open connects to the test Redis (or skips) and returns a client and a
// key prefix of this test's own, whose keys are deleted when it ends.
func open(t testing.TB, url string) (*redis.Client, string) {
	t.Helper()
	c, err := redis.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, prefix(t, c)
}

// prefix returns a key prefix of t's own and deletes its keys when t ends.
func prefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	p := "kgtest:" + rand.Text()[:12] + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := c.Keys(ctx, p+"*").Result()
		if err == nil && len(keys) > 0 {
			err = c.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Logf("deleting test keys %s*: %v", p, err)
		}
	})
	return p
}

// clock is a test clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var loose = keygate.Limits{QuotaPerDay: 1_000_000, RatePerSecond: 1e6, Burst: 1e6}

func count(t testing.TB, l *redis.Limiter, id string, lim keygate.Limits, now time.Time, n int) map[keygate.Outcome]int {
	t.Helper()
	got := map[keygate.Outcome]int{}
	for range n {
		r, err := l.Take(context.Background(), id, lim, now)
		if err != nil {
			t.Fatalf("Take: %v", err)
		}
		got[r.Outcome]++
	}
	return got
}

func TestQuotaExactAcrossLimiters(t *testing.T) {
	c, p := open(t, testenv.Redis(t))
	clk := newClock()
	// Two limiters on one Redis stand for two instances.
	a := redis.NewLimiter(c, redis.LimiterOptions{Prefix: p, Now: clk.Now})
	b := redis.NewLimiter(c, redis.LimiterOptions{Prefix: p, Now: clk.Now})
	lim := loose
	lim.QuotaPerDay = 1000
	var mu sync.Mutex
	got := map[keygate.Outcome]int{}
	var wg sync.WaitGroup
	for i := range 16 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			for range 100 {
				r, err := l.Take(context.Background(), "key_hammered", lim, clk.Now())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[r.Outcome]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got[keygate.OutcomeValid] != 1000 || got[keygate.OutcomeQuotaExceeded] != 600 {
		t.Fatalf("1,600 requests on a quota of 1,000 through two limiters: got %v, want 1000 VALID and 600 QUOTA_EXCEEDED", got)
	}
	r, err := a.Peek(context.Background(), "key_hammered", lim, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.QuotaRemaining != 0 || r.Outcome != keygate.OutcomeQuotaExceeded {
		t.Errorf("Peek after the quota is spent: got remaining %d, outcome %s", r.QuotaRemaining, r.Outcome)
	}
	if !a.Shared() || a.LocalDecisions() != 0 {
		t.Errorf("Shared %v, LocalDecisions %d: want true, 0", a.Shared(), a.LocalDecisions())
	}
}

func TestQuotaDayAndRetryAfter(t *testing.T) {
	c, p := open(t, testenv.Redis(t))
	clk := newClock()
	l := redis.NewLimiter(c, redis.LimiterOptions{Prefix: p, Now: clk.Now})
	lim := loose
	lim.QuotaPerDay = 10
	if got := count(t, l, "key_a", lim, clk.Now(), 15); got[keygate.OutcomeValid] != 10 || got[keygate.OutcomeQuotaExceeded] != 5 {
		t.Fatalf("15 requests on a quota of 10: got %v", got)
	}
	r, _ := l.Take(context.Background(), "key_a", lim, clk.Now())
	if want := 12 * time.Hour; r.RetryAfter != want || r.QuotaReset != want {
		t.Errorf("RetryAfter %s, QuotaReset %s: want %s (until 00:00 UTC)", r.RetryAfter, r.QuotaReset, want)
	}
	if got := count(t, l, "key_b", lim, clk.Now(), 3); got[keygate.OutcomeValid] != 3 {
		t.Errorf("another key: got %v, want 3 VALID (quotas are per key)", got)
	}
	clk.Add(12 * time.Hour)
	r, _ = l.Take(context.Background(), "key_a", lim, clk.Now())
	if r.Outcome != keygate.OutcomeValid || r.QuotaRemaining != 9 {
		t.Errorf("after 00:00 UTC: got %s with %d left, want VALID with 9", r.Outcome, r.QuotaRemaining)
	}
}

func TestRateLimit(t *testing.T) {
	c, p := open(t, testenv.Redis(t))
	clk := newClock()
	l := redis.NewLimiter(c, redis.LimiterOptions{Prefix: p, Now: clk.Now})
	lim := keygate.Limits{QuotaPerDay: 1000, RatePerSecond: 2, Burst: 4}
	r, err := l.Peek(context.Background(), "key_r", lim, clk.Now())
	if err != nil || r.RateRemaining != 4 || r.Outcome != keygate.OutcomeValid {
		t.Fatalf("Peek of a new key: got %+v, %v; want 4 tokens", r, err)
	}
	if got := count(t, l, "key_r", lim, clk.Now(), 6); got[keygate.OutcomeValid] != 4 || got[keygate.OutcomeRateLimited] != 2 {
		t.Fatalf("burst of 4: got %v", got)
	}
	r, _ = l.Take(context.Background(), "key_r", lim, clk.Now())
	if r.RetryAfter != time.Second || r.RateRemaining != 0 || r.QuotaRemaining != 996 {
		t.Errorf("rate limited: got RetryAfter %s, %d tokens, %d quota left; want 1s, 0, 996 (refusals consume nothing)", r.RetryAfter, r.RateRemaining, r.QuotaRemaining)
	}
	clk.Add(time.Second)
	if got := count(t, l, "key_r", lim, clk.Now(), 3); got[keygate.OutcomeValid] != 2 {
		t.Fatalf("one second later at 2/s: got %v, want 2 VALID", got)
	}
	// Lowering the burst bites at once; raising it gives no windfall.
	clk.Add(10 * time.Second) // full: 4 tokens
	low := lim
	low.Burst = 1
	if got := count(t, l, "key_r", low, clk.Now(), 3); got[keygate.OutcomeValid] != 1 {
		t.Errorf("burst lowered to 1 on a full bucket: got %v, want 1 VALID", got)
	}
	high := lim
	high.Burst = 100
	r, _ = l.Peek(context.Background(), "key_r", high, clk.Now())
	if r.RateRemaining != 0 {
		t.Errorf("burst raised to 100 on an empty bucket: got %d tokens, want 0", r.RateRemaining)
	}
}

func TestPeekConsumesNothing(t *testing.T) {
	c, p := open(t, testenv.Redis(t))
	clk := newClock()
	l := redis.NewLimiter(c, redis.LimiterOptions{Prefix: p, Now: clk.Now})
	lim := keygate.Limits{QuotaPerDay: 2, RatePerSecond: 1, Burst: 1}
	for range 5 {
		if r, err := l.Peek(context.Background(), "key_p", lim, clk.Now()); err != nil || r.Outcome != keygate.OutcomeValid || r.QuotaRemaining != 2 {
			t.Fatalf("Peek: got %+v, %v", r, err)
		}
	}
	if got := count(t, l, "key_p", lim, clk.Now(), 1); got[keygate.OutcomeValid] != 1 {
		t.Fatalf("Take after Peeks: got %v", got)
	}
	if cs := l.Dirty(); len(cs) != 1 || cs[0] != (keygate.Counter{KeyID: "key_p", Day: "2026-11-28", Count: 1}) {
		t.Errorf("Dirty: got %v, want key_p at 1", cs)
	}
	if cs := l.Dirty(); len(cs) != 0 {
		t.Errorf("Dirty again: got %v, want nothing", cs)
	}
}

// TestRestoreRaisesCounts: stored counts (from the store, at start) raise
// Redis's, and never lower them.
func TestRestoreRaisesCounts(t *testing.T) {
	c, p := open(t, testenv.Redis(t))
	clk := newClock()
	l := redis.NewLimiter(c, redis.LimiterOptions{Prefix: p, Now: clk.Now})
	lim := loose
	lim.QuotaPerDay = 10
	count(t, l, "key_low", lim, clk.Now(), 5)
	l.Restore([]keygate.Counter{
		{KeyID: "key_new", Day: "2026-11-28", Count: 8},
		{KeyID: "key_low", Day: "2026-11-28", Count: 2},
		{KeyID: "key_old", Day: "2026-11-27", Count: 9},
	})
	for id, want := range map[string]int64{"key_new": 2, "key_low": 5, "key_old": 10} {
		r, _ := l.Peek(context.Background(), id, lim, clk.Now())
		if r.QuotaRemaining != want {
			t.Errorf("%s after Restore: %d left, want %d", id, r.QuotaRemaining, want)
		}
	}
}

// TestRedisUnreachable cuts the network to Redis: requests are decided
// locally from the last counts seen, without an error, and once Redis
// answers again the local counts are added to the shared ones.
func TestRedisUnreachable(t *testing.T) {
	url := testenv.Redis(t)
	px := testenv.NewProxy(t, url)
	c, p := open(t, px.URL)
	direct, _ := open(t, url)
	clk := newClock()
	l := redis.NewLimiter(c, redis.LimiterOptions{Prefix: p, Now: clk.Now})
	other := redis.NewLimiter(direct, redis.LimiterOptions{Prefix: p, Now: clk.Now})
	lim := loose
	lim.QuotaPerDay = 100
	count(t, l, "key_u", lim, clk.Now(), 30)

	px.Cut()
	got := count(t, l, "key_u", lim, clk.Now(), 80)
	if got[keygate.OutcomeValid] != 70 || got[keygate.OutcomeQuotaExceeded] != 10 {
		t.Fatalf("while Redis is unreachable, 80 more on 100 with 30 used: got %v, want 70 VALID (counted locally from the last count seen)", got)
	}
	if l.Shared() || l.Fallbacks() != 1 || l.LocalDecisions() != 80 {
		t.Errorf("Shared %v, Fallbacks %d, LocalDecisions %d: want false, 1, 80", l.Shared(), l.Fallbacks(), l.LocalDecisions())
	}
	// Meanwhile another instance, which still reaches Redis, counts 5.
	count(t, other, "key_u", lim, clk.Now(), 5)
	l.Check(context.Background()) // Redis still unreachable: stays local
	if l.Shared() {
		t.Fatal("Shared after a failed check")
	}

	px.Restore()
	l.Check(context.Background())
	if !l.Shared() {
		t.Fatal("Redis answers again, but the limiter still counts locally")
	}
	n, err := direct.Get(context.Background(), p+"{key_u}:day:2026-11-28").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if n != 105 {
		t.Errorf("shared count after the hand-over: %d, want 105 (30 before, the other instance's 5, and 70 counted locally)", n)
	}
	if got := count(t, other, "key_u", lim, clk.Now(), 1); got[keygate.OutcomeQuotaExceeded] != 1 {
		t.Errorf("after the hand-over: got %v, want QUOTA_EXCEEDED", got)
	}
}

// TestRedisLostItsData: a Redis that restarts empty gets back the counts
// this instance last saw.
func TestRedisLostItsData(t *testing.T) {
	c, p := open(t, testenv.Redis(t))
	clk := newClock()
	l := redis.NewLimiter(c, redis.LimiterOptions{Prefix: p, Now: clk.Now})
	lim := loose
	lim.QuotaPerDay = 50
	l.Check(context.Background()) // sets the epoch
	count(t, l, "key_l", lim, clk.Now(), 20)
	keys, err := c.Keys(context.Background(), p+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Del(context.Background(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
	l.Check(context.Background())
	r, _ := l.Peek(context.Background(), "key_l", lim, clk.Now())
	if r.QuotaRemaining != 30 {
		t.Errorf("after Redis lost its keys and a check: %d left, want 30", r.QuotaRemaining)
	}
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:6379", "redis://:secret@127.0.0.1:6379/notanumber", "127.0.0.1:6379"} {
		_, err := redis.ParseURL(u)
		if err == nil {
			t.Errorf("ParseURL(%q): no error", u)
			continue
		}
		if s := err.Error(); strings.Contains(s, "secret") {
			t.Errorf("ParseURL(%q) error quotes the password: %s", u, s)
		}
	}
	if _, err := redis.ParseURL("redis://127.0.0.1:6379/0"); err != nil {
		t.Errorf("ParseURL of a good URL: %v", err)
	}
}

// BenchmarkLimiterTake is one Take (rate and quota, one script call) per
// op from GOMAXPROCS goroutines, each on its own key: the round trip.
func BenchmarkLimiterTake(b *testing.B) { benchmarkTake(b, 1) }

// BenchmarkLimiterTake16 runs 16 goroutines per CPU, as a busy server
// does: the pool's connections carry calls in parallel.
func BenchmarkLimiterTake16(b *testing.B) { benchmarkTake(b, 16) }

func benchmarkTake(b *testing.B, parallelism int) {
	c, p := open(b, testenv.Redis(b))
	l := redis.NewLimiter(c, redis.LimiterOptions{Prefix: p})
	ctx := context.Background()
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := "key_bench_" + rand.Text()[:6]
		for pb.Next() {
			if _, err := l.Take(ctx, id, loose, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
