package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/engine"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/quota"
)

func ptr[T any](v T) *T { return &v }

// limitedKey creates a key with the given quota and a rate too high to
// matter unless rate is set.
func (f *fixture) limitedKey(t testing.TB, quota int64, env keygate.Env) string {
	t.Helper()
	_, plaintext := f.key(t, &keygate.Key{Env: env, QuotaPerDay: ptr(quota), RatePerSecond: ptr(1e6), Burst: ptr(int64(1e6))})
	return plaintext
}

func count(f *fixture, key string, n int, scopes ...string) map[keygate.Outcome]int {
	got := map[keygate.Outcome]int{}
	for range n {
		got[f.verify(key, scopes...).Outcome]++
	}
	return got
}

func TestQuotaAndDayRollover(t *testing.T) {
	f := newFixture(t, true)
	key := f.limitedKey(t, 10, keygate.EnvLive)
	got := count(f, key, 15)
	if got[keygate.OutcomeValid] != 10 || got[keygate.OutcomeQuotaExceeded] != 5 {
		t.Fatalf("15 calls on a quota of 10: got %v", got)
	}
	v := f.verify(key)
	midnight := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	if want := midnight.Sub(f.clock.Now()); v.Limits.RetryAfter != want {
		t.Errorf("RetryAfter: got %s, want %s (until 00:00 UTC)", v.Limits.RetryAfter, want)
	}
	f.clock.Add(12 * time.Hour) // into the next UTC day
	if got := count(f, key, 10); got[keygate.OutcomeValid] != 10 {
		t.Fatalf("after midnight UTC: got %v, want 10 valid", got)
	}
}

func TestRateLimitRefill(t *testing.T) {
	f := newFixture(t, true)
	_, key := f.key(t, &keygate.Key{RatePerSecond: ptr(2.0), Burst: ptr(int64(4))})
	if got := count(f, key, 6); got[keygate.OutcomeValid] != 4 || got[keygate.OutcomeRateLimited] != 2 {
		t.Fatalf("burst of 4: got %v", got)
	}
	v := f.verify(key)
	if v.Limits.RetryAfter != time.Second { // 500ms until a token, rounded up to whole seconds
		t.Errorf("RetryAfter at 2/s: got %s, want 1s", v.Limits.RetryAfter)
	}
	f.clock.Add(time.Second)
	if got := count(f, key, 3); got[keygate.OutcomeValid] != 2 {
		t.Fatalf("one second later at 2/s: got %v, want 2 valid", got)
	}
}

func TestFailuresDoNotCount(t *testing.T) {
	f := newFixture(t, true)
	_, key := f.key(t, &keygate.Key{Scopes: []string{"weather:read"}, QuotaPerDay: ptr(int64(3)), RatePerSecond: ptr(1e6), Burst: ptr(int64(1e6))})
	if got := count(f, key, 10, "billing:read"); got[keygate.OutcomeInsufficientScope] != 10 {
		t.Fatalf("wrong scope: got %v", got)
	}
	if got := count(f, key, 4); got[keygate.OutcomeValid] != 3 {
		t.Fatalf("refused calls ate quota: got %v, want 3 valid", got)
	}
}

func TestTestKeysHaveTheirOwnCounters(t *testing.T) {
	f := newFixture(t, true)
	live := f.limitedKey(t, 5, keygate.EnvLive)
	test := f.limitedKey(t, 5, keygate.EnvTest)
	count(f, test, 20)
	if got := count(f, live, 5); got[keygate.OutcomeValid] != 5 {
		t.Fatalf("live key after its test twin used its quota: got %v", got)
	}
}

func TestTierChangeAppliesAtOnce(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	if err := f.admin.CreateTier(ctx, manage.ActorSystem, &keygate.Tier{Name: "tiny", QuotaPerDay: 2, RatePerSecond: 1000, Burst: 1000}); err != nil {
		t.Fatal(err)
	}
	_, key := f.key(t, &keygate.Key{Tier: "tiny"})
	if got := count(f, key, 3); got[keygate.OutcomeValid] != 2 {
		t.Fatalf("tiny tier: got %v", got)
	}
	if _, err := f.admin.UpdateTier(ctx, manage.ActorSystem, "tiny", func(t *keygate.Tier) { t.QuotaPerDay = 5 }); err != nil {
		t.Fatal(err)
	}
	if got := count(f, key, 4); got[keygate.OutcomeValid] != 3 {
		t.Fatalf("after raising the quota to 5: got %v, want 3 more valid", got)
	}
	if got := f.verify(key).Limits.QuotaLimit; got != 5 {
		t.Fatalf("QuotaLimit: got %d, want 5", got)
	}
}

func TestCountersSurviveRestart(t *testing.T) {
	f := newFixture(t, true)
	key := f.limitedKey(t, 1000, keygate.EnvLive)
	if got := count(f, key, 900); got[keygate.OutcomeValid] != 900 {
		t.Fatalf("got %v", got)
	}
	// Run's ticker calls Flush every FlushInterval, and once more at shutdown.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.engine.Run(ctx); close(done) }()
	cancel()
	<-done
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}

	f.open(t, true) // a new store, engine and limiter on the same file
	got := count(f, key, 150)
	if got[keygate.OutcomeValid] != 100 || got[keygate.OutcomeQuotaExceeded] != 50 {
		t.Fatalf("after a restart with 900 of 1000 used: got %v, want 100 valid", got)
	}
}

func TestUnflushedCountsAreTheCrashBound(t *testing.T) {
	f := newFixture(t, true)
	key := f.limitedKey(t, 1000, keygate.EnvLive)
	count(f, key, 600)
	f.engine.Flush(context.Background())
	count(f, key, 300) // counted in memory, never flushed: a crash loses these
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(t, true)
	if got := count(f, key, 500); got[keygate.OutcomeValid] != 400 {
		t.Fatalf("after a crash with 600 flushed: got %v, want 400 valid (only the unflushed 300 lost)", got)
	}
}

func TestQuotaUnderConcurrency(t *testing.T) {
	f := newFixture(t, true)
	key := f.limitedKey(t, 1000, keygate.EnvLive)
	var valid atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 100 {
				if f.verify(key).Outcome == keygate.OutcomeValid {
					valid.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := valid.Load(); got != 1000 {
		t.Fatalf("3200 concurrent calls on a quota of 1000: got %d valid, want exactly 1000", got)
	}
}

// brokenLimiter fails every decision, as a limiter whose backend is gone
// and that has no fallback of its own would.
type brokenLimiter struct{ calls atomic.Int64 }

func (b *brokenLimiter) Take(context.Context, string, keygate.Limits, time.Time) (keygate.LimitResult, error) {
	b.calls.Add(1)
	return keygate.LimitResult{}, errors.New("limiter backend unreachable")
}

func (b *brokenLimiter) Peek(context.Context, string, keygate.Limits, time.Time) (keygate.LimitResult, error) {
	b.calls.Add(1)
	return keygate.LimitResult{}, errors.New("limiter backend unreachable")
}

func TestLimiterErrorsFailOpen(t *testing.T) {
	f := newFixture(t, false)
	broken := &brokenLimiter{}
	var logs bytes.Buffer
	f.engine = engine.New(f.store, engine.Options{Hasher: f.hasher, Now: f.clock.Now, Limiter: broken,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := f.engine.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	key := f.limitedKey(t, 1, keygate.EnvLive)
	for i := range 3 {
		v := f.verify(key)
		if v.Outcome != keygate.OutcomeValid || v.HasLimits {
			t.Fatalf("request %d with the limiter failing: got %s (limits %v), want VALID without limits", i+1, v.Outcome, v.HasLimits)
		}
	}
	if got := f.verify(key, "billing:read").Outcome; got != keygate.OutcomeInsufficientScope {
		t.Fatalf("a refused check with the limiter failing: got %s, want INSUFFICIENT_SCOPE", got)
	}
	if got := f.engine.LimiterErrors(); got != 4 || broken.calls.Load() != 4 {
		t.Errorf("LimiterErrors: got %d (limiter called %d times), want 4", got, broken.calls.Load())
	}
	if n := strings.Count(logs.String(), "rate limiter failed"); n != 1 {
		t.Errorf("logged %d limiter errors, want 1 (the rest only counted):\n%s", n, logs.String())
	}
}

// A key's daily count reaching 80% and 100% of its quota is reported once
// each, by the request that reaches it, and again the next day.
func TestQuotaThresholds(t *testing.T) {
	f := newFixture(t, false)
	ch := make(chan keygate.QuotaThreshold, 10)
	eng := engine.New(f.store, engine.Options{Limiter: quota.NewLocal(quota.Options{Now: f.clock.Now}), Now: f.clock.Now, Thresholds: ch})
	t.Cleanup(eng.Close)
	if err := eng.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	k, key := f.key(t, &keygate.Key{QuotaPerDay: ptr(int64(10)), RatePerSecond: ptr(1e6), Burst: ptr(int64(1e6))})
	drain := func() []keygate.QuotaThreshold {
		var out []keygate.QuotaThreshold
		for {
			select {
			case q := <-ch:
				out = append(out, q)
			default:
				return out
			}
		}
	}
	for i := 1; i <= 12; i++ {
		eng.Verify(t.Context(), keygate.VerifyRequest{Key: key})
		got := drain()
		var want []keygate.QuotaThreshold
		switch i {
		case 8:
			want = []keygate.QuotaThreshold{{KeyID: k.ID, AccountID: k.AccountID, Counter: k.ID, Percent: 80, Used: 8, Limit: 10, Time: f.clock.Now()}}
		case 10:
			want = []keygate.QuotaThreshold{{KeyID: k.ID, AccountID: k.AccountID, Counter: k.ID, Percent: 100, Used: 10, Limit: 10, Time: f.clock.Now()}}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("request %d: reports (-want +got):\n%s", i, diff)
		}
	}
	f.clock.Add(24 * time.Hour)
	for range 8 {
		eng.Verify(t.Context(), keygate.VerifyRequest{Key: key})
	}
	if got := drain(); len(got) != 1 || got[0].Percent != 80 {
		t.Errorf("next day: got %+v, want one 80%% report", got)
	}
	if eng.ThresholdsDropped() != 0 {
		t.Errorf("ThresholdsDropped: got %d, want 0", eng.ThresholdsDropped())
	}
}

// With a quota of 3, 80% is reached at 3 too: both are reported.
func TestQuotaThresholdsSmallQuota(t *testing.T) {
	f := newFixture(t, false)
	ch := make(chan keygate.QuotaThreshold, 10)
	eng := engine.New(f.store, engine.Options{Limiter: quota.NewLocal(quota.Options{Now: f.clock.Now}), Now: f.clock.Now, Thresholds: ch})
	t.Cleanup(eng.Close)
	if err := eng.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, key := f.key(t, &keygate.Key{QuotaPerDay: ptr(int64(3)), RatePerSecond: ptr(1e6), Burst: ptr(int64(1e6))})
	for range 4 {
		eng.Verify(t.Context(), keygate.VerifyRequest{Key: key})
	}
	close(ch)
	var got []string
	for q := range ch {
		got = append(got, fmt.Sprintf("%d%% at %d", q.Percent, q.Used))
	}
	if diff := cmp.Diff([]string{"80% at 3", "100% at 3"}, got); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
}
