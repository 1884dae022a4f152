package quota

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// clock is a fake clock that tests advance by hand. It is safe for
// concurrent use, as Local's clock must be.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }

// noon is a Friday noon, UTC: 12h before the next quota reset.
var noon = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

// roomy limits never refuse in these tests unless a test means them to.
func roomy() keygate.Limits {
	return keygate.Limits{QuotaPerDay: 1 << 40, RatePerSecond: 1e9, Burst: 1 << 30}
}

// take and peek decide at the limiter's own clock.
func (l *Local) take(id string, lim keygate.Limits) keygate.LimitResult {
	return l.TakeAt(id, lim, l.now())
}

func (l *Local) peek(id string, lim keygate.Limits) keygate.LimitResult {
	return l.PeekAt(id, lim, l.now())
}

func newTest(t *testing.T, start time.Time) (*Local, *clock) {
	t.Helper()
	c := newClock(start)
	return NewLocal(Options{Now: c.Now}), c
}

// takeN takes n requests and fails the test unless all are allowed.
func takeN(t *testing.T, l *Local, id string, lim keygate.Limits, n int) keygate.LimitResult {
	t.Helper()
	var r keygate.LimitResult
	for i := range n {
		r = l.take(id, lim)
		if !r.Allowed() {
			t.Fatalf("Take %d of %d on %s: got %+v, want allowed", i+1, n, id, r)
		}
	}
	return r
}

func TestTakeFigures(t *testing.T) {
	l, _ := newTest(t, noon)
	lim := keygate.Limits{QuotaPerDay: 1000, RatePerSecond: 5, Burst: 10}
	got := l.take("key_a", lim)
	want := keygate.LimitResult{
		Outcome:        keygate.OutcomeValid,
		QuotaLimit:     1000,
		QuotaRemaining: 999,
		QuotaReset:     12 * time.Hour,
		RateLimit:      10,
		RateRemaining:  9,
		RateReset:      200 * time.Millisecond,
		RatePerSecond:  5,
	}
	if got != want {
		t.Errorf("Take:\ngot  %+v\nwant %+v", got, want)
	}
	// Peek reports the same figures without consuming: before the request
	// it describes, so one more of each is left than after a Take.
	want.QuotaRemaining, want.RateRemaining = 999, 9
	for range 3 {
		if got := l.peek("key_a", lim); got != want {
			t.Errorf("Peek:\ngot  %+v\nwant %+v", got, want)
		}
	}
}

func TestBurstThenRefill(t *testing.T) {
	tests := []struct {
		name      string
		rate      float64
		burst     int64
		interval  time.Duration // 1/rate, rounded up to whole nanoseconds
		wantRetry time.Duration
	}{
		{"free tier", 5, 10, 200 * time.Millisecond, time.Second},
		{"pro tier", 100, 200, 10 * time.Millisecond, time.Second},
		{"burst of one", 1, 1, time.Second, time.Second},
		{"slow", 0.5, 3, 2 * time.Second, 2 * time.Second},
		{"slow, rounded up", 0.3, 2, 3333333334 * time.Nanosecond, 4 * time.Second},
		{"third of a second", 3, 4, 333333334 * time.Nanosecond, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, c := newTest(t, noon)
			lim := keygate.Limits{QuotaPerDay: 1000, RatePerSecond: tt.rate, Burst: tt.burst}
			for i := range tt.burst {
				r := l.take("key_a", lim)
				if !r.Allowed() || r.RateRemaining != tt.burst-1-i {
					t.Fatalf("Take %d: got %s with %d tokens left, want VALID with %d", i+1, r.Outcome, r.RateRemaining, tt.burst-1-i)
				}
			}
			r := l.take("key_a", lim)
			if r.Outcome != keygate.OutcomeRateLimited || r.RetryAfter != tt.wantRetry {
				t.Fatalf("Take after the burst: got %s, RetryAfter %v; want RATE_LIMITED, %v", r.Outcome, r.RetryAfter, tt.wantRetry)
			}
			if want := time.Duration(tt.burst) * tt.interval; r.RateReset != want {
				t.Errorf("RateReset of an empty bucket: got %v, want %v", r.RateReset, want)
			}
			if r.RateRemaining != 0 || r.QuotaRemaining != 1000-tt.burst {
				t.Errorf("refused: got %d tokens, %d quota left; want 0, %d", r.RateRemaining, r.QuotaRemaining, 1000-tt.burst)
			}

			// One nanosecond short of a token is still no token.
			c.Advance(tt.interval - 1)
			if r := l.take("key_a", lim); r.Allowed() {
				t.Fatalf("1ns before the refill: got %+v, want refused", r)
			}
			c.Advance(1)
			takeN(t, l, "key_a", lim, 1)
			if r := l.take("key_a", lim); r.Allowed() {
				t.Fatalf("after the one refilled token: got %+v, want refused", r)
			}

			// A long pause fills the bucket to the burst and no further.
			c.Advance(time.Hour)
			if r := l.peek("key_a", lim); r.RateRemaining != tt.burst || r.RateReset != 0 {
				t.Errorf("after an hour: got %d tokens, RateReset %v; want %d, 0", r.RateRemaining, r.RateReset, tt.burst)
			}
			takeN(t, l, "key_a", lim, int(tt.burst))
			if r := l.take("key_a", lim); r.Allowed() {
				t.Fatalf("after the refilled burst: got %+v, want refused", r)
			}
		})
	}
}

// TestSustainedRate drives a key as hard as it will go, at irregular steps
// over a simulated span, and checks the token bucket's promise at every
// step: no more than burst + rate*elapsed requests, and no fewer than that
// less one (the interval is rounded up to a whole nanosecond). Steps stay
// shorter than (burst-1)/rate, so that no refill is lost to a full bucket.
func TestSustainedRate(t *testing.T) {
	tests := []struct {
		name     string
		num, den int64 // the rate, as the fraction num/den per second
		burst    int64
		maxStep  time.Duration
		span     time.Duration
		exact    bool // 1/rate is a whole number of nanoseconds
	}{
		{"5/s", 5, 1, 10, time.Second, time.Minute, true},
		{"100/s", 100, 1, 200, time.Second, time.Minute, true},
		{"3/s", 3, 1, 2, 300 * time.Millisecond, time.Minute, false},
		{"0.7/s", 7, 10, 2, time.Second, time.Minute, false},
		{"1e6/7 per s", 1_000_000, 7, 50, 300 * time.Microsecond, 2 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, c := newTest(t, noon)
			lim := keygate.Limits{QuotaPerDay: 1 << 40, RatePerSecond: float64(tt.num) / float64(tt.den), Burst: tt.burst}
			var allowed, elapsed int64
			// bound reports whether n requests fit in burst + rate*elapsed,
			// in integers so that the check itself cannot round.
			bound := func(n int64) bool {
				return n*tt.den*int64(time.Second) <= tt.burst*tt.den*int64(time.Second)+tt.num*elapsed
			}
			for i := int64(0); elapsed < int64(tt.span); i++ {
				for l.take("key_a", lim).Allowed() {
					allowed++
				}
				if !bound(allowed) {
					t.Fatalf("after %v: %d allowed, more than burst %d + rate %d/%d * elapsed", time.Duration(elapsed), allowed, tt.burst, tt.num, tt.den)
				}
				// Steps of 1/27 to 27/27 of maxStep, in no simple rhythm.
				step := int64(tt.maxStep) * (i*7919%27 + 1) / 27
				c.Advance(time.Duration(step))
				elapsed += step
			}
			for l.take("key_a", lim).Allowed() {
				allowed++
			}
			if !bound(allowed) {
				t.Fatalf("at the end: %d allowed, more than the bound", allowed)
			}
			floor := tt.burst + tt.num*elapsed/(tt.den*int64(time.Second))
			if allowed < floor-1 || (tt.exact && allowed != floor) {
				t.Errorf("over %v: got %d allowed, want %d (burst + rate*elapsed, rounded down)", time.Duration(elapsed), allowed, floor)
			}
		})
	}
}

func TestQuotaDay(t *testing.T) {
	tests := []struct {
		name      string
		start     time.Time
		wantReset time.Duration
		wantRetry time.Duration
	}{
		{"noon", noon, 12 * time.Hour, 12 * time.Hour},
		{"just after midnight", time.Date(2025, 3, 14, 0, 0, 0, 1, time.UTC), 24*time.Hour - 1, 24 * time.Hour},
		{"half a second to midnight", time.Date(2025, 3, 14, 23, 59, 59, 5e8, time.UTC), 5e8, time.Second},
		{"leap day", time.Date(2024, 2, 29, 18, 30, 0, 0, time.UTC), 5*time.Hour + 30*time.Minute, 5*time.Hour + 30*time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, c := newTest(t, tt.start)
			lim := keygate.Limits{QuotaPerDay: 5, RatePerSecond: 1e6, Burst: 100}
			for i := range int64(5) {
				r := l.take("key_a", lim)
				if !r.Allowed() || r.QuotaRemaining != 4-i || r.QuotaLimit != 5 || r.QuotaReset != tt.wantReset {
					t.Fatalf("Take %d: got %+v, want VALID with %d left, reset in %v", i+1, r, 4-i, tt.wantReset)
				}
			}
			for range 3 {
				r := l.take("key_a", lim)
				if r.Outcome != keygate.OutcomeQuotaExceeded || r.RetryAfter != tt.wantRetry || r.QuotaRemaining != 0 {
					t.Fatalf("Take over quota: got %+v, want QUOTA_EXCEEDED, RetryAfter %v", r, tt.wantRetry)
				}
				// A request refused for quota takes no token.
				if r.RateRemaining != 95 {
					t.Fatalf("tokens after a quota refusal: got %d, want 95", r.RateRemaining)
				}
			}

			// The last nanosecond of the day is still the same day.
			c.Advance(tt.wantReset - 1)
			if r := l.take("key_a", lim); r.Outcome != keygate.OutcomeQuotaExceeded || r.RetryAfter != time.Second {
				t.Fatalf("1ns before midnight: got %+v, want QUOTA_EXCEEDED, RetryAfter 1s", r)
			}
			c.Advance(1)
			r := takeN(t, l, "key_a", lim, 5)
			if r.QuotaRemaining != 0 || r.QuotaReset != 24*time.Hour {
				t.Errorf("new day: got %d left, reset in %v; want 0, 24h", r.QuotaRemaining, r.QuotaReset)
			}
			if r := l.take("key_a", lim); r.Outcome != keygate.OutcomeQuotaExceeded {
				t.Errorf("new day, over quota: got %s, want QUOTA_EXCEEDED", r.Outcome)
			}
		})
	}
}

// TestRefusedConsumesNothing checks that rate-limited requests do not eat
// quota and quota-refused ones do not eat tokens, and that the rate limit
// is judged first.
func TestRefusedConsumesNothing(t *testing.T) {
	l, c := newTest(t, noon)
	lim := keygate.Limits{QuotaPerDay: 3, RatePerSecond: 1, Burst: 2}
	takeN(t, l, "key_a", lim, 2)
	for range 50 {
		if r := l.take("key_a", lim); r.Outcome != keygate.OutcomeRateLimited || r.QuotaRemaining != 1 {
			t.Fatalf("over the rate: got %+v, want RATE_LIMITED with 1 quota left", r)
		}
	}
	c.Advance(time.Second)
	if r := takeN(t, l, "key_a", lim, 1); r.QuotaRemaining != 0 {
		t.Fatalf("third request: got %d quota left, want 0", r.QuotaRemaining)
	}
	// Both limits are hit now: the rate limit is reported, as it is checked first.
	if r := l.take("key_a", lim); r.Outcome != keygate.OutcomeRateLimited || r.RetryAfter != time.Second {
		t.Fatalf("both limits hit: got %+v, want RATE_LIMITED, RetryAfter 1s", r)
	}
	c.Advance(5 * time.Second)
	for range 50 {
		if r := l.take("key_a", lim); r.Outcome != keygate.OutcomeQuotaExceeded || r.RateRemaining != 2 {
			t.Fatalf("over quota: got %+v, want QUOTA_EXCEEDED with 2 tokens left", r)
		}
	}
}

func TestLimitChange(t *testing.T) {
	base := keygate.Limits{QuotaPerDay: 10, RatePerSecond: 1, Burst: 10}
	with := func(f func(*keygate.Limits)) keygate.Limits {
		lim := base
		f(&lim)
		return lim
	}
	type step struct {
		lim     keygate.Limits
		advance time.Duration
		take    int             // how many Takes must be allowed
		want    keygate.Outcome // then Peek's outcome, and a Take's if refused
		tokens  int64           // and Peek's RateRemaining
		left    int64           // and its QuotaRemaining
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"lower quota below use", []step{
			{lim: base, take: 5, want: keygate.OutcomeValid, tokens: 5, left: 5},
			{lim: with(func(l *keygate.Limits) { l.QuotaPerDay = 3 }), want: keygate.OutcomeQuotaExceeded, tokens: 5, left: 0},
		}},
		{"raise quota", []step{
			{lim: base, advance: time.Minute, take: 10, want: keygate.OutcomeRateLimited, tokens: 0, left: 0},
			{lim: with(func(l *keygate.Limits) { l.QuotaPerDay = 15 }), advance: time.Minute, take: 5, want: keygate.OutcomeQuotaExceeded, tokens: 5, left: 0},
		}},
		{"lower burst clamps tokens", []step{
			{lim: base, take: 2, want: keygate.OutcomeValid, tokens: 8, left: 8},
			{lim: with(func(l *keygate.Limits) { l.Burst = 3 }), take: 3, want: keygate.OutcomeRateLimited, tokens: 0, left: 5},
		}},
		{"lower burst above tokens keeps them", []step{
			{lim: base, take: 8, want: keygate.OutcomeValid, tokens: 2, left: 2},
			{lim: with(func(l *keygate.Limits) { l.Burst = 5; l.QuotaPerDay = 100 }), take: 2, want: keygate.OutcomeRateLimited, tokens: 0, left: 90},
		}},
		{"raise burst keeps tokens, fills to the new size", []step{
			{lim: base, take: 10, want: keygate.OutcomeRateLimited, tokens: 0, left: 0},
			{lim: with(func(l *keygate.Limits) { l.Burst = 20; l.QuotaPerDay = 100 }), want: keygate.OutcomeRateLimited, tokens: 0, left: 90},
			{lim: with(func(l *keygate.Limits) { l.Burst = 20; l.QuotaPerDay = 100 }), advance: time.Hour, take: 20, want: keygate.OutcomeRateLimited, tokens: 0, left: 70},
		}},
		{"raise rate keeps tokens, refills faster", []step{
			{lim: base, take: 4, want: keygate.OutcomeValid, tokens: 6, left: 6},
			{lim: with(func(l *keygate.Limits) { l.RatePerSecond = 10 }), take: 6, want: keygate.OutcomeRateLimited, tokens: 0, left: 0},
			{lim: with(func(l *keygate.Limits) { l.RatePerSecond = 10; l.QuotaPerDay = 100 }), advance: 300 * time.Millisecond, take: 3, want: keygate.OutcomeRateLimited, tokens: 0, left: 87},
		}},
		// The refused Take of each step is what the limiter learns the new
		// limits from; time before that accrued at the old rate.
		{"lower rate", []step{
			{lim: base, take: 10, want: keygate.OutcomeRateLimited, tokens: 0, left: 0},
			{lim: with(func(l *keygate.Limits) { l.RatePerSecond = 0.1; l.QuotaPerDay = 100 }), want: keygate.OutcomeRateLimited, tokens: 0, left: 90},
			{lim: with(func(l *keygate.Limits) { l.RatePerSecond = 0.1; l.QuotaPerDay = 100 }), advance: 9 * time.Second, want: keygate.OutcomeRateLimited, tokens: 0, left: 90},
			{lim: with(func(l *keygate.Limits) { l.RatePerSecond = 0.1; l.QuotaPerDay = 100 }), advance: time.Second, take: 1, want: keygate.OutcomeRateLimited, tokens: 0, left: 89},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, c := newTest(t, noon)
			for i, s := range tt.steps {
				c.Advance(s.advance)
				takeN(t, l, "key_a", s.lim, s.take)
				r := l.peek("key_a", s.lim)
				if r.Outcome != s.want || r.RateRemaining != s.tokens || r.QuotaRemaining != s.left ||
					r.RateLimit != s.lim.Burst || r.QuotaLimit != s.lim.QuotaPerDay || r.RatePerSecond != s.lim.RatePerSecond {
					t.Fatalf("step %d: got %+v; want %s with %d tokens and %d quota left under %+v", i+1, r, s.want, s.tokens, s.left, s.lim)
				}
				if s.want != keygate.OutcomeValid {
					if r2 := l.take("key_a", s.lim); r2.Outcome != s.want {
						t.Fatalf("step %d: Peek said %s but Take said %s", i+1, s.want, r2.Outcome)
					}
				}
			}
		})
	}
}

// TestRateChangeKeepsTokens checks the arithmetic of a rate change: the
// tokens held stay, and the time to full follows the new rate.
func TestRateChangeKeepsTokens(t *testing.T) {
	l, _ := newTest(t, noon)
	lim := keygate.Limits{QuotaPerDay: 100, RatePerSecond: 1, Burst: 10}
	takeN(t, l, "key_a", lim, 4)
	lim.RatePerSecond = 2
	r := l.peek("key_a", lim)
	if r.RateRemaining != 6 || r.RateReset != 2*time.Second {
		t.Errorf("after doubling the rate: got %d tokens, full in %v; want 6, 2s", r.RateRemaining, r.RateReset)
	}
	lim.RatePerSecond = 0.5
	r = l.peek("key_a", lim)
	if r.RateRemaining != 6 || r.RateReset != 8*time.Second {
		t.Errorf("after halving the rate: got %d tokens, full in %v; want 6, 8s", r.RateRemaining, r.RateReset)
	}
}

func TestIsolation(t *testing.T) {
	l, _ := newTest(t, noon)
	lim := keygate.Limits{QuotaPerDay: 3, RatePerSecond: 1, Burst: 3}
	takeN(t, l, "key_a", lim, 3)
	if r := l.take("key_a", lim); r.Allowed() {
		t.Fatalf("key_a after its limits: got %+v, want refused", r)
	}
	want := keygate.LimitResult{
		Outcome: keygate.OutcomeValid, QuotaLimit: 3, QuotaRemaining: 2, QuotaReset: 12 * time.Hour,
		RateLimit: 3, RateRemaining: 2, RateReset: time.Second, RatePerSecond: 1,
	}
	for _, id := range []string{"key_b", "key_a ", "KEY_A", ""} {
		if got := l.take(id, lim); got != want {
			t.Errorf("Take(%q) after key_a ran out:\ngot  %+v\nwant %+v", id, got, want)
		}
	}
}

// TestConcurrentQuota hammers one key from many goroutines: the quota must
// hold exactly. Run it with -race.
func TestConcurrentQuota(t *testing.T) {
	l, c := newTest(t, noon)
	lim := keygate.Limits{QuotaPerDay: 1000, RatePerSecond: 1e6, Burst: 1 << 20}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 100 {
				r := l.take("key_hot", lim)
				if r.Allowed() {
					allowed.Add(1)
				} else if r.Outcome != keygate.OutcomeQuotaExceeded {
					t.Errorf("goroutine %d: got %s, want QUOTA_EXCEEDED", g, r.Outcome)
				}
				if r.QuotaRemaining < 0 {
					t.Errorf("goroutine %d: QuotaRemaining %d", g, r.QuotaRemaining)
				}
				if i%10 == 0 {
					c.Advance(time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 1000 {
		t.Errorf("allowed: got %d, want exactly 1000", got)
	}
	if got, want := l.Dirty(), []keygate.Counter{{KeyID: "key_hot", Day: "2025-03-14", Count: 1000}}; !slices.Equal(got, want) {
		t.Errorf("Dirty: got %v, want %v", got, want)
	}
}

// TestConcurrentUpkeep runs Take, Peek, Dirty, Restore, Reclaim and Len at
// once, for -race, and checks that the flushed counts add up.
func TestConcurrentUpkeep(t *testing.T) {
	c := newClock(noon)
	l := NewLocal(Options{Now: c.Now, Shards: 4, IdleAfter: time.Millisecond})
	lim := keygate.Limits{QuotaPerDay: 1 << 40, RatePerSecond: 1e9, Burst: 1 << 30}
	var allowed atomic.Int64
	flushed := map[string]int64{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				id := "key_" + strconv.Itoa((g*31+i)%50)
				if l.take(id, lim).Allowed() {
					allowed.Add(1)
				}
				l.peek(id, lim)
			}
		})
	}
	done := make(chan struct{})
	upkeep := make(chan struct{})
	go func() {
		defer close(upkeep)
		for {
			for _, ct := range l.Dirty() {
				flushed[ct.KeyID] = max(flushed[ct.KeyID], ct.Count)
			}
			l.Reclaim()
			l.Len()
			l.Restore([]keygate.Counter{{KeyID: "key_restored", Day: "2025-03-14", Count: 1}})
			c.Advance(time.Microsecond)
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	wg.Wait()
	close(done)
	<-upkeep
	for _, ct := range l.Dirty() {
		flushed[ct.KeyID] = max(flushed[ct.KeyID], ct.Count)
	}
	var sum int64
	for _, n := range flushed {
		sum += n
	}
	if got := allowed.Load(); sum != got || got != 8*2000 {
		t.Errorf("flushed counts add up to %d, allowed %d; want both %d", sum, got, 8*2000)
	}
}

func TestDirtyRestore(t *testing.T) {
	l, c := newTest(t, noon)
	lim := keygate.Limits{QuotaPerDay: 1000, RatePerSecond: 1e6, Burst: 1 << 20}
	l.Restore([]keygate.Counter{
		{KeyID: "key_a", Day: "2025-03-14", Count: 900},
		{KeyID: "key_b", Day: "2025-03-13", Count: 500}, // yesterday: ignored
		{KeyID: "key_c", Day: "2025-03-15", Count: 500}, // tomorrow: ignored
		{KeyID: "key_d", Day: "2025-03-14", Count: 0},   // nothing to hold
	})
	if got := l.Len(); got != 1 {
		t.Errorf("Len after Restore: got %d, want 1", got)
	}
	if got := l.Dirty(); len(got) != 0 {
		t.Errorf("Dirty after Restore: got %v, want none (the store has them)", got)
	}
	if r := l.peek("key_b", lim); r.QuotaRemaining != 1000 {
		t.Errorf("key_b, restored from yesterday: got %d left, want 1000", r.QuotaRemaining)
	}

	takeN(t, l, "key_a", lim, 50)
	// Restore keeps the larger count, whichever side holds it.
	l.Restore([]keygate.Counter{{KeyID: "key_a", Day: "2025-03-14", Count: 920}})
	if r := l.peek("key_a", lim); r.QuotaRemaining != 50 {
		t.Errorf("after restoring a smaller count: got %d left, want 50", r.QuotaRemaining)
	}
	l.Restore([]keygate.Counter{{KeyID: "key_a", Day: "2025-03-14", Count: 960}})
	if r := l.peek("key_a", lim); r.QuotaRemaining != 40 {
		t.Errorf("after restoring a larger count: got %d left, want 40", r.QuotaRemaining)
	}
	takeN(t, l, "key_a", lim, 40)
	if r := l.take("key_a", lim); r.Outcome != keygate.OutcomeQuotaExceeded {
		t.Fatalf("key_a past 1000: got %s, want QUOTA_EXCEEDED", r.Outcome)
	}

	takeN(t, l, "key_b", lim, 2)
	want := []keygate.Counter{
		{KeyID: "key_a", Day: "2025-03-14", Count: 1000},
		{KeyID: "key_b", Day: "2025-03-14", Count: 2},
	}
	if got := sorted(l.Dirty()); !slices.Equal(got, want) {
		t.Errorf("Dirty:\ngot  %v\nwant %v", got, want)
	}
	// Nothing changed since, and refusals change nothing.
	l.take("key_a", lim)
	if got := l.Dirty(); len(got) != 0 {
		t.Errorf("Dirty with no new traffic: got %v, want none", got)
	}
	takeN(t, l, "key_b", lim, 1)
	want = []keygate.Counter{{KeyID: "key_b", Day: "2025-03-14", Count: 3}}
	if got := l.Dirty(); !slices.Equal(got, want) {
		t.Errorf("Dirty after one more on key_b: got %v, want %v", got, want)
	}

	// Counts of the last flush interval before midnight are still returned
	// after it: by the entry itself while untouched, or carried when a new
	// day's request replaced it.
	takeN(t, l, "key_b", lim, 2)
	takeN(t, l, "key_e", lim, 1)
	c.Set(time.Date(2025, 3, 15, 0, 0, 1, 0, time.UTC))
	takeN(t, l, "key_b", lim, 1)
	want = []keygate.Counter{
		{KeyID: "key_b", Day: "2025-03-14", Count: 5},
		{KeyID: "key_b", Day: "2025-03-15", Count: 1},
		{KeyID: "key_e", Day: "2025-03-14", Count: 1},
	}
	if got := sorted(l.Dirty()); !slices.Equal(got, want) {
		t.Errorf("Dirty after midnight:\ngot  %v\nwant %v", got, want)
	}
	if got := l.Dirty(); len(got) != 0 {
		t.Errorf("Dirty again: got %v, want none", got)
	}
	// The day is over: yesterday's counters are ignored.
	l.Restore([]keygate.Counter{{KeyID: "key_a", Day: "2025-03-14", Count: 1000}})
	if r := l.peek("key_a", lim); r.QuotaRemaining != 1000 {
		t.Errorf("key_a on a new day after restoring yesterday: got %d left, want 1000", r.QuotaRemaining)
	}
}

// TestClockStepsBack checks that a wall clock stepping back across midnight
// does not hand out a fresh quota.
func TestClockStepsBack(t *testing.T) {
	l, c := newTest(t, time.Date(2025, 3, 15, 0, 0, 1, 0, time.UTC))
	lim := keygate.Limits{QuotaPerDay: 3, RatePerSecond: 1, Burst: 10}
	takeN(t, l, "key_a", lim, 3)
	c.Advance(-2 * time.Second)
	if r := l.take("key_a", lim); r.Outcome != keygate.OutcomeQuotaExceeded {
		t.Errorf("after the clock stepped back to yesterday: got %+v, want QUOTA_EXCEEDED", r)
	}
}

func TestPeekCreatesNoState(t *testing.T) {
	l, _ := newTest(t, noon)
	lim := keygate.Limits{QuotaPerDay: 7, RatePerSecond: 2, Burst: 4}
	want := keygate.LimitResult{
		Outcome: keygate.OutcomeValid, QuotaLimit: 7, QuotaRemaining: 7, QuotaReset: 12 * time.Hour,
		RateLimit: 4, RateRemaining: 4, RatePerSecond: 2,
	}
	if got := l.peek("key_unknown", lim); got != want {
		t.Errorf("Peek of an unknown key:\ngot  %+v\nwant %+v", got, want)
	}
	if got := l.Len(); got != 0 {
		t.Errorf("Len after Peek: got %d, want 0", got)
	}
}

func TestReclaim(t *testing.T) {
	start := time.Date(2025, 3, 14, 23, 0, 0, 0, time.UTC)
	c := newClock(start)
	l := NewLocal(Options{Now: c.Now, IdleAfter: time.Minute})
	lim := keygate.Limits{QuotaPerDay: 100, RatePerSecond: 1, Burst: 10}
	slow := keygate.Limits{QuotaPerDay: 100, RatePerSecond: 1.0 / 60, Burst: 10}

	takeN(t, l, "key_used", lim, 1)
	l.take("key_none", keygate.Limits{QuotaPerDay: 0, RatePerSecond: 1, Burst: 1})
	l.Dirty()

	c.Advance(59 * time.Second)
	if n := l.Reclaim(); n != 0 {
		t.Errorf("Reclaim before IdleAfter: dropped %d, want 0", n)
	}
	c.Advance(time.Second)
	// key_none never counted anything; key_used has a count for today that
	// Dirty has returned, but dropping it would forget today's use.
	if n := l.Reclaim(); n != 1 || l.Len() != 1 {
		t.Errorf("Reclaim after IdleAfter: dropped %d, Len %d; want 1, 1", n, l.Len())
	}
	if r := l.peek("key_used", lim); r.QuotaRemaining != 99 {
		t.Errorf("key_used after Reclaim: got %d left, want 99", r.QuotaRemaining)
	}

	// After midnight, a count returned by Dirty is no longer needed, but a
	// bucket that is not yet full is: dropping it would refill it early.
	c.Set(time.Date(2025, 3, 14, 23, 55, 0, 0, time.UTC))
	takeN(t, l, "key_slow", slow, 10) // full again at 00:05
	l.Dirty()
	c.Set(time.Date(2025, 3, 15, 0, 4, 59, 0, time.UTC))
	if n := l.Reclaim(); n != 1 || l.Len() != 1 {
		t.Errorf("Reclaim after midnight: dropped %d, Len %d; want 1, 1", n, l.Len())
	}
	c.Advance(time.Second + 10*time.Nanosecond) // 1/60 is a shade less as a float64
	if n := l.Reclaim(); n != 1 || l.Len() != 0 {
		t.Errorf("Reclaim once the slow bucket is full: dropped %d, Len %d; want 1, 0", n, l.Len())
	}

	// A count not yet returned by Dirty keeps its entry, even past its day.
	takeN(t, l, "key_late", lim, 3)
	c.Set(time.Date(2025, 3, 16, 0, 5, 0, 0, time.UTC))
	if n := l.Reclaim(); n != 0 {
		t.Errorf("Reclaim before Dirty: dropped %d, want 0", n)
	}
	want := []keygate.Counter{{KeyID: "key_late", Day: "2025-03-15", Count: 3}}
	if got := l.Dirty(); !slices.Equal(got, want) {
		t.Errorf("Dirty: got %v, want %v", got, want)
	}
	if n := l.Reclaim(); n != 1 || l.Len() != 0 {
		t.Errorf("Reclaim after Dirty: dropped %d, Len %d; want 1, 0", n, l.Len())
	}
	// A reclaimed key starts afresh.
	if r := l.take("key_late", lim); !r.Allowed() || r.QuotaRemaining != 99 || r.RateRemaining != 9 {
		t.Errorf("Take after Reclaim: got %+v, want VALID with 99 quota, 9 tokens left", r)
	}
}

// TestReclaimMany checks that 100,000 keys' state goes once it is idle,
// its day is over and its counts are flushed.
func TestReclaimMany(t *testing.T) {
	l, c := newTest(t, time.Date(2025, 3, 14, 23, 0, 0, 0, time.UTC))
	lim := keygate.Limits{QuotaPerDay: 1000, RatePerSecond: 5, Burst: 10}
	const n = 100_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("key_%06d", i)
		if !l.take(ids[i], lim).Allowed() {
			t.Fatalf("Take(%s) refused", ids[i])
		}
	}
	if got := l.Len(); got != n {
		t.Fatalf("Len: got %d, want %d", got, n)
	}
	c.Advance(5 * time.Minute)
	if got := l.Reclaim(); got != 0 {
		t.Errorf("Reclaim of recently used keys: dropped %d, want 0", got)
	}
	c.Advance(66 * time.Minute) // 00:11 the next day: idle, and their day is over
	if got := l.Reclaim(); got != 0 {
		t.Errorf("Reclaim before their counts were flushed: dropped %d, want 0", got)
	}
	if got := l.Dirty(); len(got) != n {
		t.Errorf("Dirty: got %d counters, want %d", len(got), n)
	}
	if got := l.Reclaim(); got != n {
		t.Errorf("Reclaim: dropped %d, want %d", got, n)
	}
	if got := l.Len(); got != 0 {
		t.Errorf("Len after Reclaim: got %d, want 0", got)
	}
}

func TestNoAllocs(t *testing.T) {
	l := NewLocal(Options{})
	// Built at run time, so that nothing about the key is a constant.
	id := strings.Repeat("k", 4) + "_" + strconv.Itoa(12345)
	lim := roomy()
	l.take(id, lim)
	if n := testing.AllocsPerRun(1000, func() { l.take(id, lim) }); n != 0 {
		t.Errorf("Take of a known key: %v allocations per call, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { l.peek(id, lim) }); n != 0 {
		t.Errorf("Peek of a known key: %v allocations per call, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { l.peek("key_unknown", lim) }); n != 0 {
		t.Errorf("Peek of an unknown key: %v allocations per call, want 0", n)
	}
	// Flushing between calls is the steady state too.
	l.Dirty()
	if n := testing.AllocsPerRun(1000, func() { l.take(id, lim); l.Dirty() }); n > 2 {
		t.Errorf("Take then Dirty: %v allocations per round, want at most 2 (Dirty's result and its day)", n)
	}
}

func TestBucket(t *testing.T) {
	tests := []struct {
		rate         float64
		burst        int64
		wantBurst    int64
		wantInterval int64
	}{
		{5, 10, 10, 200_000_000},
		{3, 1, 1, 333_333_334},
		{1_000_000, 10, 10, 1000},
		{1e6 / 7, 10, 10, 7000},
		{1e12, 10, 10, 1},
		{0, 10, 10, maxWindow / 10},
		{math.NaN(), 10, 10, maxWindow / 10},
		{1e-12, 10, 10, maxWindow / 10},
		{5, 0, 0, 200_000_000},
		{5, -3, 0, 200_000_000},
		{1e9, math.MaxInt64, maxWindow, 1},
	}
	for _, tt := range tests {
		b, iv := bucket(tt.rate, tt.burst)
		if b != tt.wantBurst || iv != tt.wantInterval {
			t.Errorf("bucket(%v, %d): got %d, %d; want %d, %d", tt.rate, tt.burst, b, iv, tt.wantBurst, tt.wantInterval)
		}
		if tt.rate > 0 && iv < maxWindow/max(b, 1) && float64(iv)*tt.rate < 1e9 {
			t.Errorf("bucket(%v, %d): interval %dns is shorter than 1/rate", tt.rate, tt.burst, iv)
		}
	}
}

// TestAbsurdLimits checks that limits ValidateLimits would refuse do not
// panic or let requests through that should not pass.
func TestAbsurdLimits(t *testing.T) {
	l, _ := newTest(t, noon)
	for _, lim := range []keygate.Limits{
		{QuotaPerDay: 0, RatePerSecond: 1, Burst: 1},
		{QuotaPerDay: -5, RatePerSecond: 1, Burst: 1},
		{QuotaPerDay: 10, RatePerSecond: 1, Burst: 0},
		{QuotaPerDay: 10, RatePerSecond: 1, Burst: -1},
	} {
		if r := l.take("key_a", lim); r.Allowed() || r.RetryAfter < time.Second {
			t.Errorf("Take under %+v: got %+v, want refused with a RetryAfter", lim, r)
		}
	}
	for _, lim := range []keygate.Limits{
		{QuotaPerDay: 10, RatePerSecond: 0, Burst: 1},
		{QuotaPerDay: 10, RatePerSecond: math.NaN(), Burst: 1},
		{QuotaPerDay: 10, RatePerSecond: math.Inf(1), Burst: 1},
		{QuotaPerDay: math.MaxInt64, RatePerSecond: math.MaxFloat64, Burst: math.MaxInt64},
	} {
		l.take("key_b", lim)
		l.peek("key_b", lim)
	}
}

func sorted(cs []keygate.Counter) []keygate.Counter {
	slices.SortFunc(cs, func(a, b keygate.Counter) int {
		return strings.Compare(a.KeyID+" "+a.Day, b.KeyID+" "+b.Day)
	})
	return cs
}

func BenchmarkTake(b *testing.B) {
	l := NewLocal(Options{})
	lim := roomy()
	l.take("key_bench", lim)
	b.ReportAllocs()
	for b.Loop() {
		if !l.take("key_bench", lim).Allowed() {
			b.Fatal("Take refused under roomy limits")
		}
	}
}

// BenchmarkTakeFixedClock is BenchmarkTake without the cost of reading the
// clock, to show the limiter's own share: time.Now is most of a Take on
// machines whose clock is slow to read.
func BenchmarkTakeFixedClock(b *testing.B) {
	now := time.Now()
	l := NewLocal(Options{Now: func() time.Time { return now }})
	lim := roomy()
	l.take("key_bench", lim)
	b.ReportAllocs()
	for b.Loop() {
		l.take("key_bench", lim)
	}
}

func BenchmarkTakeParallel(b *testing.B) {
	l := NewLocal(Options{})
	lim := roomy()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("key_%04d", i)
		l.take(ids[i], lim)
	}
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := worker.Add(1) * 7919 // each goroutine starts somewhere else
		for pb.Next() {
			i++
			if !l.take(ids[i%int64(len(ids))], lim).Allowed() {
				b.Error("Take refused under roomy limits")
				return
			}
		}
	})
}

// BenchmarkTakeParallelOneKey is the worst case: every goroutine on one
// key, so one mutex.
func BenchmarkTakeParallelOneKey(b *testing.B) {
	l := NewLocal(Options{})
	lim := roomy()
	l.take("key_hot", lim)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.take("key_hot", lim)
		}
	})
}

func BenchmarkPeek(b *testing.B) {
	l := NewLocal(Options{})
	lim := roomy()
	l.take("key_bench", lim)
	b.ReportAllocs()
	for b.Loop() {
		if !l.peek("key_bench", lim).Allowed() {
			b.Fatal("Peek refused under roomy limits")
		}
	}
}
